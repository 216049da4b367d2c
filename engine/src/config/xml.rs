//! A small position-aware DOM built from quick-xml events: elements with their attributes and
//! children, each with the 1-based line and column where it starts. Comments, processing
//! instructions and DOCTYPE are skipped; text other than white space is rejected, because
//! hakit configuration files carry everything in attributes.

use std::path::Path;

use quick_xml::Reader;
use quick_xml::escape::EscapeError;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};

use super::error::ConfigError;
use super::quotes::{find_typographic_quote, straight_for};

/// Far deeper than any hakit file; the limit keeps recursive walks (and drops) of the tree
/// from exhausting the stack on hostile input.
const MAX_DEPTH: usize = 32;

/// A 1-based line and column (in characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attr {
    pub name: String,
    pub value: String,
    /// Where the attribute's name starts.
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub name: String,
    /// Where the element's `<` is.
    pub pos: Pos,
    pub attrs: Vec<Attr>,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// The document text with its line starts, to turn byte offsets into [`Pos`].
struct Source<'a> {
    text: &'a str,
    file: &'a Path,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(text: &'a str, file: &'a Path) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            text,
            file,
            line_starts,
        }
    }

    fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        // Count characters, not bytes: a column is what an editor shows. Counting the bytes
        // that start a UTF-8 sequence works even if `offset` is not on a char boundary.
        let column = self
            .text
            .as_bytes()
            .get(start..offset)
            .map_or(0, |b| b.iter().filter(|&&b| (b & 0xC0) != 0x80).count());
        Pos {
            line,
            column: column + 1,
        }
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file, self.pos(offset), message)
    }
}

/// Parses `text` (the contents of `file`) into its root element.
pub(crate) fn parse(text: &str, file: &Path) -> Result<Element, ConfigError> {
    // Editors do not show a byte order mark, so columns are counted without it (quick-xml
    // would skip it and shift its positions).
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let src = Source::new(text, file);
    if let Some((offset, c)) = find_typographic_quote(text) {
        return Err(src.error(
            offset,
            format!(
                "typographic quote {c} (U+{:04X}) in markup: replace it with a straight quote ({})",
                u32::from(c),
                straight_for(c)
            ),
        ));
    }
    let mut reader = Reader::from_str(text);
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let start = offset(reader.buffer_position());
        let event = reader.read_event().map_err(|e| {
            src.error(
                offset(reader.error_position()),
                format!("malformed XML: {e}"),
            )
        })?;
        let done = match event {
            Event::Start(_) if open.len() >= MAX_DEPTH => {
                return Err(src.error(
                    start,
                    format!(
                        "elements nested more than {MAX_DEPTH} deep: this is not a hakit \
                         configuration file"
                    ),
                ));
            }
            Event::Start(tag) => {
                open.push(element(&src, &tag, start)?);
                None
            }
            Event::Empty(tag) => Some(element(&src, &tag, start)?),
            // quick-xml has checked that the end tag matches the open one.
            Event::End(_) => open.pop(),
            Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => None,
            Event::Text(_) | Event::GeneralRef(_) | Event::CData(_) => {
                let rest = text.get(start..).unwrap_or_default();
                let at = start.saturating_add(rest.len() - rest.trim_start().len());
                return Err(src.error(
                    at,
                    "unexpected text: hakit configuration files hold only elements and \
                     attributes (remove it, or make it a <!-- comment -->)",
                ));
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => None,
            Event::Eof => break,
        };
        if let Some(el) = done {
            match (open.last_mut(), &root) {
                (Some(parent), _) => parent.children.push(el),
                (None, None) => root = Some(el),
                (None, Some(first)) => {
                    return Err(src.error(
                        start,
                        format!(
                            "a second root element <{}> after <{}>: a file has exactly one root",
                            el.name, first.name
                        ),
                    ));
                }
            }
        }
    }
    if let Some(unclosed) = open.last() {
        return Err(ConfigError::at(
            file,
            unclosed.pos,
            format!(
                "<{0}> is never closed (add </{0}> or write <{0} .../>)",
                unclosed.name
            ),
        ));
    }
    root.ok_or_else(|| src.error(text.len(), "no root element: the file is empty"))
}

/// A reader position as an index into the text (saturating: positions past the end are
/// clamped when turned into a [`Pos`]).
fn offset(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

/// Builds an element (without children) from a start or empty tag whose `<` is at `start`.
fn element(src: &Source, tag: &BytesStart, start: usize) -> Result<Element, ConfigError> {
    // The tag's bytes are the text between `<` and `>`; attribute keys and quick-xml's
    // attribute error positions are relative to them.
    let content_start = start.saturating_add(1);
    let raw: &[u8] = tag;
    let name = String::from_utf8_lossy(tag.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in tag.attributes() {
        let attr = attr.map_err(|e| attr_error(src, content_start, &name, &e))?;
        let key = attr.key.as_ref();
        // The key is a slice of `raw`; its distance from `raw`'s start is its offset.
        let rel = key.as_ptr().addr().saturating_sub(raw.as_ptr().addr());
        let at = content_start.saturating_add(rel);
        let attr_name = String::from_utf8_lossy(key).into_owned();
        let value = attr.unescape_value().map_err(|e| {
            src.error(
                at,
                format!(
                    "{name}: attribute {attr_name}: {} (write & as &amp;, < as &lt;, \" as &quot;)",
                    escape_problem(&e)
                ),
            )
        })?;
        attrs.push(Attr {
            name: attr_name,
            value: value.into_owned(),
            pos: src.pos(at),
        });
    }
    Ok(Element {
        name,
        pos: src.pos(start),
        attrs,
        children: Vec::new(),
    })
}

fn attr_error(src: &Source, content_start: usize, element: &str, e: &AttrError) -> ConfigError {
    let (rel, problem) = match *e {
        AttrError::ExpectedEq(p) => (p, "an attribute name must be followed by =".to_string()),
        AttrError::ExpectedValue(p) => (p, "= must be followed by a quoted value".to_string()),
        AttrError::UnquotedValue(p) => (
            p,
            "attribute value is not quoted (write name=\"value\")".to_string(),
        ),
        AttrError::ExpectedQuote(p, q) => (
            p,
            format!("attribute value has no closing {} quote", char::from(q)),
        ),
        AttrError::Duplicated(p, first) => (
            p,
            format!(
                "attribute appears twice (first at {}); keep one",
                fmt_pos(src.pos(content_start.saturating_add(first)))
            ),
        ),
    };
    src.error(
        content_start.saturating_add(rel),
        format!("{element}: {problem}"),
    )
}

fn escape_problem(e: &quick_xml::Error) -> String {
    match e {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            format!("unknown entity &{name};")
        }
        quick_xml::Error::Escape(EscapeError::UnterminatedEntity(_)) => "& without ;".into(),
        other => other.to_string(),
    }
}

fn fmt_pos(pos: Pos) -> String {
    format!("{}:{}", pos.line, pos.column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> &'static Path {
        Path::new("/etc/hakit/test.xml")
    }

    fn err(text: &str) -> String {
        match parse(text, file()) {
            Ok(el) => panic!("parsed: {el:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn builds_elements_with_positions() {
        let text = "<?xml version=\"1.0\"?>\n<!DOCTYPE safe>\n<a x=\"1\">\n  <!-- c -->\n  <b y='2' z=\"&lt;3\"/>\n  <c>\n  </c>\n</a>\n";
        let root = parse(text, file()).unwrap();
        assert_eq!(root.name, "a");
        assert_eq!(root.pos, Pos { line: 3, column: 1 });
        assert_eq!(root.attrs.len(), 1);
        assert_eq!(root.attrs[0].pos, Pos { line: 3, column: 4 });
        assert_eq!(root.children.len(), 2);
        let b = &root.children[0];
        assert_eq!(b.pos, Pos { line: 5, column: 3 });
        assert_eq!(b.attr("z").unwrap().value, "<3");
        assert_eq!(
            b.attr("z").unwrap().pos,
            Pos {
                line: 5,
                column: 12
            }
        );
        assert_eq!(b.attr("y").unwrap().pos, Pos { line: 5, column: 6 });
        assert_eq!(root.children_named("c").count(), 1);
    }

    #[test]
    fn columns_count_characters() {
        let root = parse("<a é=\"é\" b=\"1\"/>", file()).unwrap();
        assert_eq!(
            root.attr("b").unwrap().pos,
            Pos {
                line: 1,
                column: 10
            }
        );
    }

    #[test]
    fn typographic_quote() {
        assert_eq!(
            err("<a>\n  <b name=\u{201D}default\u{201D}/>\n</a>"),
            "/etc/hakit/test.xml:2:11: typographic quote \u{201D} (U+201D) in markup: \
             replace it with a straight quote (\")"
        );
    }

    #[test]
    fn mismatched_end_tag() {
        let e = err("<a>\n <b>\n </a>");
        assert!(
            e.starts_with("/etc/hakit/test.xml:3:2: malformed XML: "),
            "{e}"
        );
    }

    #[test]
    fn unclosed_element() {
        assert_eq!(
            err("<a>\n <b>\n"),
            "/etc/hakit/test.xml:2:2: <b> is never closed (add </b> or write <b .../>)"
        );
    }

    #[test]
    fn unquoted_attribute() {
        assert_eq!(
            err("<a>\n <b x=1/></a>"),
            "/etc/hakit/test.xml:2:7: b: attribute value is not quoted (write name=\"value\")"
        );
    }

    #[test]
    fn duplicated_attribute() {
        assert_eq!(
            err("<a x=\"1\" x=\"2\"/>"),
            "/etc/hakit/test.xml:1:10: a: attribute appears twice (first at 1:4); keep one"
        );
    }

    #[test]
    fn bad_entity() {
        assert_eq!(
            err("<a x=\"&nope;\"/>"),
            "/etc/hakit/test.xml:1:4: a: attribute x: unknown entity &nope; (write & as &amp;, \
             < as &lt;, \" as &quot;)"
        );
    }

    #[test]
    fn text_is_rejected() {
        assert_eq!(
            err("<a>\n  hello</a>"),
            "/etc/hakit/test.xml:2:3: unexpected text: hakit configuration files hold only \
             elements and attributes (remove it, or make it a <!-- comment -->)"
        );
    }

    #[test]
    fn two_roots() {
        assert_eq!(
            err("<a/>\n<b/>"),
            "/etc/hakit/test.xml:2:1: a second root element <b> after <a>: a file has exactly one root"
        );
    }

    #[test]
    fn bom_and_crlf() {
        let root = parse("<a>\n  <b x=\"1\"/>\r\n</a>\r\n", file()).unwrap();
        assert_eq!(root.children[0].attrs[0].pos, Pos { line: 2, column: 6 });
        let root = parse("\u{FEFF}<a>\n  <b x=\"1\"/>\r\n</a>\r\n", file()).unwrap();
        assert_eq!(root.children[0].attrs[0].pos, Pos { line: 2, column: 6 });
        let root = parse("\u{FEFF}<a x=\"1\"/>", file()).unwrap();
        assert_eq!(root.attrs[0].pos, Pos { line: 1, column: 4 });
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "<a>".repeat(100_000);
        assert_eq!(
            err(&deep),
            "/etc/hakit/test.xml:1:97: elements nested more than 32 deep: this is not a hakit \
             configuration file"
        );
        assert!(
            parse(
                &format!("{}{}", "<a>".repeat(32), "</a>".repeat(32)),
                file()
            )
            .is_ok()
        );
    }

    #[test]
    fn empty_file() {
        assert_eq!(
            err("\n<!-- nothing -->\n"),
            "/etc/hakit/test.xml:3:1: no root element: the file is empty"
        );
    }
}
