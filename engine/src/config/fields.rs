//! Typed reading of DOM elements for the validators: which attributes and children an element
//! may have, required and optional attributes with defaults, and the value parsers they share.
//! Every error is placed at the attribute (or element) it is about.

use std::fmt::Display;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::duration::{TimeUnit, parse_duration};
use super::error::ConfigError;
use super::xml::{Attr, Element, Pos};

/// The file being validated, to place errors in it.
pub(super) struct Doc<'a> {
    pub file: &'a Path,
}

impl Doc<'_> {
    pub fn error(&self, pos: Pos, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file, pos, message)
    }

    /// Error about the value of `attr` of `el`.
    pub fn attr_error(&self, el: &Element, attr: &Attr, problem: impl Display) -> ConfigError {
        self.error(
            attr.pos,
            format!(
                "{}: attribute {}=\"{}\": {problem}",
                el.name, attr.name, attr.value
            ),
        )
    }

    /// Checks that `el` carries only the attributes in `attrs` and the children in `children`.
    pub fn expect(
        &self,
        el: &Element,
        attrs: &[&str],
        children: &[&str],
    ) -> Result<(), ConfigError> {
        if let Some(a) = el.attrs.iter().find(|a| !attrs.contains(&a.name.as_str())) {
            let allowed = match attrs {
                [] => format!("<{}> takes no attributes", el.name),
                _ => format!("allowed: {}", attrs.join(", ")),
            };
            return Err(self.error(
                a.pos,
                format!("{}: unknown attribute \"{}\" ({allowed})", el.name, a.name),
            ));
        }
        if let Some(c) = el
            .children
            .iter()
            .find(|c| !children.contains(&c.name.as_str()))
        {
            let allowed = match children {
                [] => format!("<{}> takes no child elements", el.name),
                _ => format!("allowed: {}", children.join(", ")),
            };
            return Err(self.error(
                c.pos,
                format!("{}: unknown element <{}> ({allowed})", el.name, c.name),
            ));
        }
        Ok(())
    }

    /// The only child of `parent` named `name`, if any.
    pub fn at_most_one<'e>(
        &self,
        parent: &'e Element,
        name: &str,
    ) -> Result<Option<&'e Element>, ConfigError> {
        let mut found = parent.children_named(name);
        let first = found.next();
        match (first, found.next()) {
            (Some(first), Some(second)) => Err(self.error(
                second.pos,
                format!(
                    "{}: a second <{name}> (the first is at {}:{}); merge them into one",
                    parent.name, first.pos.line, first.pos.column
                ),
            )),
            (first, _) => Ok(first),
        }
    }

    /// The attribute `name` of `el`, which must be present; `example` is shown in the error.
    pub fn required<'e>(
        &self,
        el: &'e Element,
        name: &str,
        example: &str,
    ) -> Result<&'e Attr, ConfigError> {
        el.attr(name).ok_or_else(|| {
            self.error(
                el.pos,
                format!(
                    "{}: attribute {name} is missing (add {name}=\"{example}\")",
                    el.name
                ),
            )
        })
    }

    /// Parses the value of `attr` of `el`.
    pub fn value<T>(
        &self,
        el: &Element,
        attr: &Attr,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        parse(&attr.value).map_err(|problem| self.attr_error(el, attr, problem))
    }

    /// Parses the required attribute `name` of `el`.
    pub fn req<T>(
        &self,
        el: &Element,
        name: &str,
        example: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let attr = self.required(el, name, example)?;
        self.value(el, attr, parse)
    }

    /// Parses the optional attribute `name` of `el`, or returns `default` if it is absent.
    pub fn opt<T>(
        &self,
        el: &Element,
        name: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match el.attr(name) {
            Some(attr) => self.value(el, attr, parse),
            None => Ok(default),
        }
    }
}

/// Where to report a problem about attribute `name` of `el`: the attribute if present, else
/// the element (whose default was used).
pub(super) fn pos_of(el: &Element, name: &str) -> Pos {
    el.attr(name).map_or(el.pos, |a| a.pos)
}

/// "expected a, b or c".
pub(super) fn expected(choices: &[&str]) -> String {
    match choices {
        [] => "no value is allowed".into(),
        [one] => format!("expected {one}"),
        [init @ .., last] => format!("expected {} or {last}", init.join(", ")),
    }
}

pub(super) fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(expected(&["on", "off"])),
    }
}

/// A non-negative whole number that fits `T`.
pub(super) fn whole<T: TryFrom<u64>>(s: &str) -> Result<T, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| "expected a whole number".to_string())?;
    T::try_from(n).map_err(|_| "number too large".to_string())
}

/// A whole number of at least 1.
pub(super) fn positive<T: TryFrom<u64>>(s: &str) -> Result<T, String> {
    match whole::<u64>(s)? {
        0 => Err("must be at least 1".into()),
        n => T::try_from(n).map_err(|_| "number too large".to_string()),
    }
}

/// An IP address literal; host names are not resolved, so that a configuration does not
/// depend on DNS at failover time.
pub(super) fn ip(s: &str) -> Result<IpAddr, String> {
    s.trim().parse().map_err(|_| {
        "not an IP address (write it as digits, e.g. 10.0.0.1 or fd00::1; host names are not \
         resolved)"
            .to_string()
    })
}

/// A duration where a bare number is in `bare` units.
pub(super) fn time(bare: TimeUnit) -> impl Fn(&str) -> Result<Duration, String> {
    move |s| parse_duration(s, bare).map_err(|e| e.to_string())
}

/// A duration that must not be zero (a period or a timeout of zero makes no sense).
pub(super) fn nonzero_time(bare: TimeUnit) -> impl Fn(&str) -> Result<Duration, String> {
    move |s| match time(bare)(s)? {
        Duration::ZERO => Err("must be greater than zero".into()),
        d => Ok(d),
    }
}

/// A non-empty value, trimmed.
pub(super) fn name(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => Err("must not be empty".into()),
        t => Ok(t.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::xml::parse;

    fn doc() -> Doc<'static> {
        Doc {
            file: Path::new("/f.xml"),
        }
    }

    fn el(text: &str) -> Element {
        parse(text, Path::new("/f.xml")).unwrap()
    }

    #[test]
    fn unknown_attribute_lists_the_allowed_ones() {
        let e = el("<a x=\"1\" y=\"2\"/>");
        let err = doc().expect(&e, &["x", "z"], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/f.xml:1:10: a: unknown attribute \"y\" (allowed: x, z)"
        );
        let err = doc().expect(&e, &[], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/f.xml:1:4: a: unknown attribute \"x\" (<a> takes no attributes)"
        );
    }

    #[test]
    fn unknown_element_lists_the_allowed_ones() {
        let e = el("<a>\n <b/>\n <c/>\n</a>");
        let err = doc().expect(&e, &[], &["b"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/f.xml:3:2: a: unknown element <c> (allowed: b)"
        );
        let err = doc().expect(&e, &[], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/f.xml:2:2: a: unknown element <b> (<a> takes no child elements)"
        );
    }

    #[test]
    fn at_most_one_child() {
        let e = el("<a><b/>\n<b/></a>");
        assert_eq!(
            doc().at_most_one(&e, "b").unwrap_err().to_string(),
            "/f.xml:2:1: a: a second <b> (the first is at 1:4); merge them into one"
        );
        assert!(doc().at_most_one(&e, "c").unwrap().is_none());
    }

    #[test]
    fn required_and_optional() {
        let e = el("<a n=\"7\"/>");
        assert_eq!(doc().req(&e, "n", "1", whole::<u32>).unwrap(), 7);
        assert_eq!(doc().opt(&e, "m", 3u32, whole).unwrap(), 3);
        assert_eq!(
            doc()
                .req(&e, "m", "1", whole::<u32>)
                .unwrap_err()
                .to_string(),
            "/f.xml:1:1: a: attribute m is missing (add m=\"1\")"
        );
        assert_eq!(pos_of(&e, "n"), Pos { line: 1, column: 4 });
        assert_eq!(pos_of(&e, "m"), Pos { line: 1, column: 1 });
    }

    #[test]
    fn value_parsers() {
        assert_eq!(on_off("on"), Ok(true));
        assert_eq!(on_off("off"), Ok(false));
        assert_eq!(on_off("yes"), Err("expected on or off".into()));
        assert_eq!(whole::<u16>("65536"), Err("number too large".into()));
        assert_eq!(whole::<u16>("-1"), Err("expected a whole number".into()));
        assert_eq!(positive::<u32>("0"), Err("must be at least 1".into()));
        assert_eq!(positive::<u32>("2"), Ok(2));
        assert!(ip("10.0.0.1").is_ok());
        assert!(ip("fd00::1").is_ok());
        assert!(ip("node1").unwrap_err().starts_with("not an IP address"));
        assert_eq!(time(TimeUnit::Seconds)("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(
            nonzero_time(TimeUnit::Seconds)("0ms"),
            Err("must be greater than zero".into())
        );
        assert_eq!(name("  "), Err("must not be empty".into()));
        assert_eq!(expected(&["a", "b", "c"]), "expected a, b or c");
        assert_eq!(expected(&["a"]), "expected a");
    }

    #[test]
    fn attribute_errors_show_the_value() {
        let e = el("<heart timeout=\"3x\"/>");
        let err = doc()
            .opt(&e, "timeout", Duration::ZERO, time(TimeUnit::Millis))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/f.xml:1:8: heart: attribute timeout=\"3x\": unknown time unit \"x\" (use d, h, m, \
             s, ms or us, e.g. \"30s\")"
        );
    }
}
