//! `<macro name="X" value="..."/>` under `<safe>`: `%X%` in any attribute value is replaced by
//! the macro's value. A macro's own value may use macros defined before it. A `%` that does
//! not start a `%NAME%` reference (NAME made of letters, digits and `_`) is kept as is, so
//! values such as `arg="-q 50%"` need no escaping.

use super::error::ConfigError;
use super::fields::{Doc, name};
use super::xml::Element;

pub(super) const MACRO: &str = "macro";

/// Substitutes the macros defined by `<macro>` children of `root` in every attribute value of
/// the document (the macro elements' names excepted).
pub(super) fn expand(root: &mut Element, doc: &Doc) -> Result<(), ConfigError> {
    let mut macros: Vec<(String, String)> = Vec::new();
    for el in root.children.iter_mut().filter(|c| c.name == MACRO) {
        doc.expect(el, &["name", "value"], &[])?;
        let macro_name = doc.req(el, "name", "NAME", macro_name)?;
        if macros.iter().any(|(n, _)| *n == macro_name) {
            let attr = doc.required(el, "name", "NAME")?;
            return Err(doc.attr_error(el, attr, "this macro is already defined; keep one"));
        }
        doc.required(el, "value", "...")?;
        let value = substitute_in(el, "value", &macros, doc)?;
        macros.push((macro_name, value));
    }
    for el in root.children.iter_mut().filter(|c| c.name != MACRO) {
        expand_all(el, &macros, doc)?;
    }
    Ok(())
}

fn macro_name(s: &str) -> Result<String, String> {
    let s = name(s)?;
    if s.chars().all(is_name_char) {
        Ok(s)
    } else {
        Err("a macro name is made of letters, digits and _".into())
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn expand_all(el: &mut Element, macros: &[(String, String)], doc: &Doc) -> Result<(), ConfigError> {
    let names: Vec<String> = el.attrs.iter().map(|a| a.name.clone()).collect();
    for name in names {
        substitute_in(el, &name, macros, doc)?;
    }
    for child in &mut el.children {
        expand_all(child, macros, doc)?;
    }
    Ok(())
}

/// Substitutes macros in attribute `name` of `el` and returns the new value (empty if the
/// attribute is absent).
fn substitute_in(
    el: &mut Element,
    name: &str,
    macros: &[(String, String)],
    doc: &Doc,
) -> Result<String, ConfigError> {
    let Some(attr) = el.attr(name) else {
        return Ok(String::new());
    };
    let value = substitute(&attr.value, macros).map_err(|p| doc.attr_error(el, attr, p))?;
    if let Some(attr) = el.attrs.iter_mut().find(|a| a.name == name) {
        attr.value.clone_from(&value);
    }
    Ok(value)
}

/// `text` with every `%NAME%` replaced by the value of macro NAME.
fn substitute(text: &str, macros: &[(String, String)]) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(percent) = rest.find('%') {
        let (before, from_percent) = rest.split_at(percent);
        out.push_str(before);
        let after = from_percent.get(1..).unwrap_or_default();
        let name_len = after.find(|c| !is_name_char(c)).unwrap_or(after.len());
        let (name, tail) = after.split_at(name_len);
        match tail.strip_prefix('%') {
            Some(tail) if !name.is_empty() => {
                let value = macros
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v)
                    .ok_or_else(|| {
                        format!(
                            "macro %{name}% is not defined (define it under <safe> with \
                             <macro name=\"{name}\" value=\"...\"/>)"
                        )
                    })?;
                out.push_str(value);
                rest = tail;
            }
            _ => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::xml::parse;
    use std::path::Path;

    fn expanded(text: &str) -> Result<Element, String> {
        let doc = Doc {
            file: Path::new("/u.xml"),
        };
        let mut root = parse(text, doc.file).map_err(|e| e.to_string())?;
        expand(&mut root, &doc).map_err(|e| e.to_string())?;
        Ok(root)
    }

    fn macros(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitutes_references_and_keeps_lone_percents() {
        let m = macros(&[("A", "1"), ("B_2", "two")]);
        assert_eq!(substitute("%A%", &m).unwrap(), "1");
        assert_eq!(substitute("x%A%y%B_2%z", &m).unwrap(), "x1ytwoz");
        assert_eq!(substitute("50%", &m).unwrap(), "50%");
        assert_eq!(substitute("%d %s %%", &m).unwrap(), "%d %s %%");
        assert_eq!(substitute("%%A%", &m).unwrap(), "%1");
        assert_eq!(
            substitute("%Z%", &m).unwrap_err(),
            "macro %Z% is not defined (define it under <safe> with <macro name=\"Z\" value=\"...\"/>)"
        );
    }

    #[test]
    fn expands_every_attribute_of_the_document() {
        let root = expanded(
            "<safe><macro name=\"IP\" value=\"10.0.0.9\"/><macro name=\"TO\" value=\"%IP%:80\"/>\
             <service><a x=\"%IP%\" y=\"%TO%\"/></service></safe>",
        )
        .unwrap();
        let a = &root.children[2].children[0];
        assert_eq!(a.attr("x").unwrap().value, "10.0.0.9");
        assert_eq!(a.attr("y").unwrap().value, "10.0.0.9:80");
    }

    #[test]
    fn undefined_macro_is_reported_at_its_attribute() {
        assert_eq!(
            expanded("<safe>\n<service>\n  <heart pulse=\"%P%\"/></service></safe>").unwrap_err(),
            "/u.xml:3:10: heart: attribute pulse=\"%P%\": macro %P% is not defined (define it \
             under <safe> with <macro name=\"P\" value=\"...\"/>)"
        );
    }

    #[test]
    fn a_macro_cannot_use_a_later_one() {
        let err = expanded(
            "<safe><macro name=\"A\" value=\"%B%\"/><macro name=\"B\" value=\"1\"/></safe>",
        )
        .unwrap_err();
        assert!(
            err.starts_with("/u.xml:1:23: macro: attribute value=\"%B%\""),
            "{err}"
        );
    }

    #[test]
    fn bad_macros() {
        assert_eq!(
            expanded(
                "<safe><macro name=\"A\" value=\"1\"/>\n<macro name=\"A\" value=\"2\"/></safe>"
            )
            .unwrap_err(),
            "/u.xml:2:8: macro: attribute name=\"A\": this macro is already defined; keep one"
        );
        assert_eq!(
            expanded("<safe><macro name=\"a b\" value=\"1\"/></safe>").unwrap_err(),
            "/u.xml:1:14: macro: attribute name=\"a b\": a macro name is made of letters, digits \
             and _"
        );
        assert_eq!(
            expanded("<safe><macro name=\"A\" value=\"1\" x=\"\"/></safe>").unwrap_err(),
            "/u.xml:1:33: macro: unknown attribute \"x\" (allowed: name, value)"
        );
        assert_eq!(
            expanded("<safe><macro value=\"1\"/></safe>").unwrap_err(),
            "/u.xml:1:7: macro: attribute name is missing (add name=\"NAME\")"
        );
    }
}
