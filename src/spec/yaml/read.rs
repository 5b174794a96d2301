//! Purpose: typed values read out of YAML nodes, each problem reported at the node that has it: mappings with
//! free-form keys or a fixed set of keys (unknown ones get a "did you mean"), text, booleans, integers, numbers,
//! lists of text and keywords. [`Cx`] collects the problems.

use std::collections::BTreeSet;

use super::Node;
use super::node::{Sc, Shape, pos, shape, type_word};
use crate::spec::ConfigError;
use crate::spec::suggest::suggest;

/// The problems found while reading one document, each at the node that has it.
#[derive(Default)]
pub(crate) struct Cx {
    /// The problems found so far, in the order found.
    pub(crate) errors: Vec<ConfigError>,
}

impl Cx {
    /// Reports `message` at the position of `node`.
    pub(crate) fn at(&mut self, node: &Node<'_>, message: impl Into<String>) {
        let (line, column) = pos(node);
        self.errors.push(ConfigError {
            line,
            column,
            message: message.into(),
        });
    }
}

/// The entries of a mapping, keys as text.
pub(crate) struct Entries<'a, 'i> {
    /// Key text, key node and value node, in file order.
    pub(crate) items: Vec<(String, &'a Node<'i>, &'a Node<'i>)>,
}

impl<'a, 'i> Entries<'a, 'i> {
    /// The value under `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Node<'i>> {
        self.items
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, v)| *v)
    }
}

/// Reads a mapping with free-form keys (job names, env, params, payload).
pub(crate) fn entries<'a, 'i>(
    cx: &mut Cx,
    node: &'a Node<'i>,
    what: &str,
) -> Option<Entries<'a, 'i>> {
    let Shape::Map(map) = shape(node) else {
        cx.at(
            node,
            format!("{what} must be a mapping, not {}", type_word(node)),
        );
        return None;
    };
    let mut items: Vec<(String, &'a Node<'i>, &'a Node<'i>)> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (k, v) in map.iter() {
        let key = match shape(k) {
            Shape::Scalar(Sc::Null, _) => {
                cx.at(k, format!("empty key in {what}"));
                continue;
            }
            Shape::Scalar(_, text) => text.to_owned(),
            _ => {
                cx.at(
                    k,
                    format!("keys in {what} must be plain text, not {}", type_word(k)),
                );
                continue;
            }
        };
        if !seen.insert(key.clone()) {
            cx.at(k, format!("duplicate key `{key}` in {what}"));
            continue;
        }
        items.push((key, k, v));
    }
    Some(Entries { items })
}

/// Reads a mapping with a fixed set of keys; unknown keys are reported with suggestions.
pub(crate) fn fields<'a, 'i>(
    cx: &mut Cx,
    node: &'a Node<'i>,
    what: &str,
    allowed: &[&str],
) -> Option<Entries<'a, 'i>> {
    let mut e = entries(cx, node, what)?;
    e.items.retain(|(key, k, _)| {
        if allowed.contains(&key.as_str()) {
            return true;
        }
        let hint = match suggest(key, allowed.iter().copied()) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!("; expected one of: {}", allowed.join(", ")),
        };
        let place = if what == "the top level" {
            format!("at {what}")
        } else {
            format!("in {what}")
        };
        cx.at(k, format!("unknown key `{key}` {place}{hint}"));
        false
    });
    Some(e)
}

/// A text value: any non-empty scalar, as written (numbers and booleans keep their spelling).
pub(crate) fn text(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<String> {
    match shape(node) {
        Shape::Scalar(Sc::Null, _) => {
            cx.at(node, format!("{what} must be a string, not empty"));
            None
        }
        Shape::Scalar(_, t) => Some(t.to_owned()),
        _ => {
            cx.at(
                node,
                format!("{what} must be a string, not {}", type_word(node)),
            );
            None
        }
    }
}

/// A boolean value (`true` or `false`).
pub(crate) fn boolean(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<bool> {
    match shape(node) {
        Shape::Scalar(Sc::Bool(b), _) => Some(b),
        _ => {
            cx.at(
                node,
                format!("{what} must be true or false, not {}", type_word(node)),
            );
            None
        }
    }
}

/// An integer value.
pub(crate) fn integer(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<i64> {
    match shape(node) {
        Shape::Scalar(Sc::Int(i), _) => Some(i),
        _ => {
            cx.at(
                node,
                format!("{what} must be an integer, not {}", type_word(node)),
            );
            None
        }
    }
}

/// A finite number, integer or not.
pub(crate) fn number(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<f64> {
    match shape(node) {
        Shape::Scalar(Sc::Int(i), _) => Some(i as f64),
        Shape::Scalar(Sc::Float(f), _) if f.is_finite() => Some(f),
        _ => {
            cx.at(
                node,
                format!("{what} must be a number, not {}", type_word(node)),
            );
            None
        }
    }
}

/// A list of text values; a single scalar counts as a list of one.
pub(crate) fn text_list<'a, 'i>(
    cx: &mut Cx,
    node: &'a Node<'i>,
    what: &str,
) -> Option<Vec<(String, &'a Node<'i>)>> {
    match shape(node) {
        Shape::Seq(items) => {
            let mut out = Vec::new();
            let mut ok = true;
            for item in items {
                match text(cx, item, &format!("each entry of {what}")) {
                    Some(t) => out.push((t, item)),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
        Shape::Scalar(s, _) if s != Sc::Null => text(cx, node, what).map(|t| vec![(t, node)]),
        _ => {
            cx.at(
                node,
                format!("{what} must be a list, not {}", type_word(node)),
            );
            None
        }
    }
}

/// A non-empty list of distinct text values.
pub(crate) fn nonempty_list<'a, 'i>(
    cx: &mut Cx,
    node: &'a Node<'i>,
    what: &str,
) -> Option<Vec<(String, &'a Node<'i>)>> {
    let list = text_list(cx, node, what)?;
    if list.is_empty() {
        cx.at(node, format!("{what} must list at least one value"));
        return None;
    }
    let mut seen = BTreeSet::new();
    for (t, n) in &list {
        if !seen.insert(t.as_str()) {
            cx.at(n, format!("`{t}` is listed twice in {what}"));
        }
    }
    Some(list)
}

/// A value out of a fixed set of words.
pub(crate) fn keyword<T: Copy>(
    cx: &mut Cx,
    node: &Node<'_>,
    what: &str,
    choices: &[(&str, T)],
) -> Option<T> {
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let t = text(cx, node, what)?;
    if let Some((_, v)) = choices.iter().find(|(n, _)| *n == t) {
        return Some(*v);
    }
    let hint = suggest(&t, names.iter().copied())
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    cx.at(
        node,
        format!(
            "{what} must be one of {}, not `{t}`{hint}",
            names.join(", ")
        ),
    );
    None
}
