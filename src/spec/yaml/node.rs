//! Purpose: what a YAML node is, seen through its tags: a scalar resolved by the YAML 1.2 core schema together
//! with its text as written, a list, a mapping, or a value the reader does not support; and where it starts.

use std::borrow::Cow;

use saphyr::{Scalar, ScalarStyle, YamlData};

use super::Node;

/// 1-based line and column of the start of `node`.
pub(crate) fn pos(node: &Node<'_>) -> (usize, usize) {
    (node.span.start.line().max(1), node.span.start.col() + 1)
}

/// A scalar's resolved value (YAML 1.2 core schema).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Sc {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number that is not an integer (also `.inf` and `.nan`).
    Float(f64),
    /// Anything else, or a quoted scalar; its text is in [`Shape::Scalar`].
    Str,
}

/// What a node is, seen through tags.
pub(crate) enum Shape<'a, 'i> {
    /// A scalar: its value and its text as written (unquoted).
    Scalar(Sc, &'a str),
    /// A list.
    Seq(&'a [Node<'i>]),
    /// A mapping.
    Map(&'a saphyr::AnnotatedMapping<'i, Node<'i>>),
    /// An empty document, an unresolved alias or a value its tag rejects.
    Bad,
}

/// What `node` is, looking through tags; a tag that rejects its value makes it [`Shape::Bad`].
pub(crate) fn shape<'a, 'i>(node: &'a Node<'i>) -> Shape<'a, 'i> {
    match &node.data {
        YamlData::Representation(v, style, tag) => {
            let text: &'a str = v.as_ref();
            match Scalar::parse_from_cow_and_metadata(Cow::Borrowed(text), *style, tag.as_ref()) {
                Some(s) => Shape::Scalar(classify(&s, *style), text),
                None => Shape::Bad,
            }
        }
        YamlData::Value(s) => Shape::Scalar(classify(s, ScalarStyle::Plain), ""),
        YamlData::Sequence(s) => Shape::Seq(s.as_slice()),
        YamlData::Mapping(m) => Shape::Map(m),
        YamlData::Tagged(_, inner) => shape(inner),
        YamlData::Alias(_) | YamlData::BadValue => Shape::Bad,
    }
}

/// The [`Sc`] of a resolved scalar.
fn classify(s: &Scalar<'_>, _style: ScalarStyle) -> Sc {
    match s {
        Scalar::Null => Sc::Null,
        Scalar::Boolean(b) => Sc::Bool(*b),
        Scalar::Integer(i) => Sc::Int(*i),
        Scalar::FloatingPoint(f) => Sc::Float(f.into_inner()),
        Scalar::String(_) => Sc::Str,
    }
}

/// How an error message names what `node` is ("a string", "a list", …).
pub(crate) fn type_word(node: &Node<'_>) -> &'static str {
    match shape(node) {
        Shape::Scalar(Sc::Null, _) => "empty",
        Shape::Scalar(Sc::Bool(_), _) => "a boolean",
        Shape::Scalar(Sc::Int(_), _) => "an integer",
        Shape::Scalar(Sc::Float(_), _) => "a number",
        Shape::Scalar(Sc::Str, _) => "a string",
        Shape::Seq(_) => "a list",
        Shape::Map(_) => "a mapping",
        Shape::Bad => "an unsupported value",
    }
}

/// The value under `key` in a mapping node, without reporting anything.
pub(crate) fn child<'a, 'i>(node: &'a Node<'i>, key: &str) -> Option<&'a Node<'i>> {
    let Shape::Map(map) = shape(node) else {
        return None;
    };
    map.iter()
        .find(|(k, _)| matches!(shape(k), Shape::Scalar(_, t) if t == key))
        .map(|(_, v)| v)
}
