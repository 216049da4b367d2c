//! Detection of typographic quotes in markup. Files pasted from web pages or word processors
//! often carry `name=”default”`; an XML parser would only say "attribute value must be
//! quoted", so this scan names the character and the fix first.

/// Quote-like characters that are never valid XML attribute delimiters.
const TYPOGRAPHIC: [char; 6] = [
    '\u{201C}', '\u{201D}', '\u{2018}', '\u{2019}', '\u{00AB}', '\u{00BB}',
];

/// Where the scan is: text and comments may hold any character, markup may not.
enum State {
    Text,
    Comment,
    CData,
    /// Inside `<...>`; `quote` is the straight quote of the attribute value being read, if
    /// any, so that a `>` in a value does not end the tag.
    Markup {
        quote: Option<char>,
    },
}

/// Byte offset and character of the first typographic quote inside markup (a tag, a
/// declaration or a processing instruction), skipping text, comments and CDATA.
pub(super) fn find_typographic_quote(text: &str) -> Option<(usize, char)> {
    let mut state = State::Text;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        let rest = text.get(i..).unwrap_or_default();
        let skip = |prefix: &str| prefix.chars().count().saturating_sub(1);
        match state {
            State::Text if rest.starts_with("<!--") => {
                state = State::Comment;
                chars.nth(skip("<!--"));
            }
            State::Text if rest.starts_with("<![CDATA[") => {
                state = State::CData;
                chars.nth(skip("<![CDATA["));
            }
            State::Text if c == '<' => state = State::Markup { quote: None },
            State::Comment if rest.starts_with("-->") => {
                state = State::Text;
                chars.nth(skip("-->"));
            }
            State::CData if rest.starts_with("]]>") => {
                state = State::Text;
                chars.nth(skip("]]>"));
            }
            State::Text | State::Comment | State::CData => {}
            State::Markup { .. } if TYPOGRAPHIC.contains(&c) => return Some((i, c)),
            State::Markup { quote: None } if c == '>' => state = State::Text,
            State::Markup { quote: None } if c == '"' || c == '\'' => {
                state = State::Markup { quote: Some(c) }
            }
            State::Markup { quote: Some(q) } if c == q => state = State::Markup { quote: None },
            State::Markup { .. } => {}
        }
    }
    None
}

/// The straight quote to type instead of `c`.
pub(super) fn straight_for(c: char) -> char {
    if c == '\u{2018}' || c == '\u{2019}' {
        '\''
    } else {
        '"'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_quotes_in_attributes() {
        let text = "<a>\n  <b name=\u{201D}x\u{201D}/></a>";
        let (at, c) = find_typographic_quote(text).unwrap();
        assert_eq!(c, '\u{201D}');
        assert_eq!(text.get(at..).unwrap().chars().next(), Some('\u{201D}'));
        assert_eq!(at, "<a>\n  <b name=".len());
    }

    #[test]
    fn ignores_text_comments_and_cdata() {
        let text = "<a>\u{201C}t\u{201D}<!-- \u{201C}c\u{201D} --><![CDATA[\u{AB}]]>\u{BB}<b x=\"1\"/></a>";
        assert_eq!(find_typographic_quote(text), None);
    }

    #[test]
    fn a_greater_than_in_a_value_does_not_end_the_tag() {
        let text = "<a x=\"1>2\" y=\u{2018}v\u{2019}/>";
        assert_eq!(
            find_typographic_quote(text).map(|(_, c)| c),
            Some('\u{2018}')
        );
        assert_eq!(straight_for('\u{2018}'), '\'');
        assert_eq!(straight_for('\u{AB}'), '"');
    }

    #[test]
    fn quotes_inside_a_straight_quoted_value_are_reported_too() {
        assert!(find_typographic_quote("<a x=\"\u{201C}\"/>").is_some());
    }

    #[test]
    fn unterminated_comment_hides_the_rest() {
        assert_eq!(find_typographic_quote("<!-- <a x=\u{201D}/>"), None);
    }
}
