//! Purpose: the grammar of a job's `on_complete:`: whether the consumer `repository_dispatch` is sent when the
//! job ends, its `event_type`, and the extra `payload` values (which must not shadow a parameter).

use std::collections::BTreeSet;

use crate::spec::yaml::{Cx, Node, Sc, Shape, boolean, entries, fields, shape, text, type_word};
use crate::spec::{DispatchSpec, ParamSpec};

/// `on_complete` of job `ctx`; `None` when the dispatch is turned off.
pub(super) fn on_complete(
    cx: &mut Cx,
    node: &Node<'_>,
    ctx: &str,
    params: &[ParamSpec],
) -> Option<DispatchSpec> {
    let what = format!("`on_complete` of {ctx}");
    let default = Some(DispatchSpec::default());
    let Some(f) = fields(cx, node, &what, &["dispatch"]) else {
        return default;
    };
    let Some(d) = f.get("dispatch") else {
        return default;
    };
    let dw = format!("`dispatch` in {what}");
    if let Shape::Scalar(..) = shape(d) {
        return match boolean(cx, d, &dw) {
            Some(false) => None,
            _ => default,
        };
    }
    let Some(g) = fields(cx, d, &dw, &["event_type", "payload"]) else {
        return default;
    };
    let mut spec = DispatchSpec::default();
    if let Some(e) = g.get("event_type")
        && let Some(t) = text(cx, e, &format!("`event_type` in {dw}"))
    {
        let len = t.chars().count();
        if !(1..=100).contains(&len) {
            cx.at(
                e,
                format!("`event_type` in {dw} must be 1 to 100 characters, not {len}"),
            );
        }
        spec.event_type = t;
    }
    if let Some(p) = g.get("payload") {
        let pw = format!("`payload` in {dw}");
        let param_names: BTreeSet<&str> = params.iter().map(|q| q.name.as_str()).collect();
        if let Some(e) = entries(cx, p, &pw) {
            for (key, k, v) in &e.items {
                if param_names.contains(key.as_str()) {
                    cx.at(
                        k,
                        format!("key `{key}` in {pw} collides with the parameter of the same name"),
                    );
                    continue;
                }
                if let Some(value) = json_value(cx, v, &format!("`{key}` in {pw}"), 0) {
                    spec.payload.insert(key.clone(), value);
                }
            }
        }
    }
    Some(spec)
}

/// A payload value: string, number, bool, or an object of those.
fn json_value(cx: &mut Cx, node: &Node<'_>, what: &str, depth: usize) -> Option<serde_json::Value> {
    use serde_json::Value;
    match shape(node) {
        Shape::Scalar(Sc::Str, t) => Some(Value::String(t.to_owned())),
        Shape::Scalar(Sc::Bool(b), _) => Some(Value::Bool(b)),
        Shape::Scalar(Sc::Int(i), _) => Some(Value::from(i)),
        Shape::Scalar(Sc::Float(f), _) => match serde_json::Number::from_f64(f) {
            Some(n) => Some(Value::Number(n)),
            None => {
                cx.at(node, format!("{what} must be a finite number"));
                None
            }
        },
        Shape::Map(_) if depth < 16 => {
            let e = entries(cx, node, what)?;
            let mut out = serde_json::Map::new();
            for (key, _, v) in &e.items {
                if let Some(value) = json_value(cx, v, &format!("`{key}` in {what}"), depth + 1) {
                    out.insert(key.clone(), value);
                }
            }
            Some(Value::Object(out))
        }
        Shape::Map(_) => {
            cx.at(node, format!("{what} is nested too deeply"));
            None
        }
        _ => {
            cx.at(
                node,
                format!(
                    "{what} must be a string, number, boolean or mapping, not {}",
                    type_word(node)
                ),
            );
            None
        }
    }
}
