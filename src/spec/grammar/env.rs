//! Purpose: the `env` mapping of a job or a step: names checked (letters, digits and `_`; `BOOMERANG_` is
//! reserved), values as text.

use std::collections::BTreeMap;

use crate::spec::validate;
use crate::spec::yaml::{Cx, Node, entries, text};

/// An `env` mapping of a job or step (`ctx` names it in messages).
pub(super) fn env(cx: &mut Cx, node: &Node<'_>, ctx: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let what = format!("`env` of {ctx}");
    let Some(e) = entries(cx, node, &what) else {
        return out;
    };
    for (name, k, v) in &e.items {
        if !validate::is_env_name(name) {
            cx.at(k, format!("invalid environment variable name `{name}` in {what}: use letters, digits and `_`, not starting with a digit"));
        } else if name.to_ascii_uppercase().starts_with("BOOMERANG_") {
            cx.at(
                k,
                format!("`{name}` in {what}: names starting with BOOMERANG_ are reserved"),
            );
        }
        if let Some(value) = text(cx, v, &format!("`{name}` in {what}")) {
            out.insert(name.clone(), value);
        }
    }
    out
}
