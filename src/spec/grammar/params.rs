//! Purpose: the grammar of a job's `params:` mapping: each parameter's name, type, constraints and default, and
//! the rules between them (a `required` or `secret` parameter has no default, a default must fit the type).

use std::collections::BTreeMap;

use crate::spec::params::env_var_name;
use crate::spec::suggest::suggest;
use crate::spec::validate;
use crate::spec::yaml::{
    Cx, Node, boolean, entries, fields, integer, keyword, nonempty_list, text,
};
use crate::spec::{ParamKind, ParamSpec};

const PARAM_KEYS: &[&str] = &[
    "type",
    "description",
    "required",
    "secret",
    "default",
    "values",
    "min",
    "max",
];

/// `params` of job `ctx`, in file order; two names that map to the same environment variable are refused.
pub(super) fn params(cx: &mut Cx, node: &Node<'_>, ctx: &str) -> Vec<ParamSpec> {
    let mut out: Vec<ParamSpec> = Vec::new();
    let Some(e) = entries(cx, node, &format!("`params` of {ctx}")) else {
        return out;
    };
    let mut env_names: BTreeMap<String, String> = BTreeMap::new();
    for (name, k, v) in &e.items {
        if !validate::is_param_name(name) {
            cx.at(
                k,
                format!("invalid parameter name `{name}`: use 1 to 64 characters a-z, 0-9, `_` or `-`, starting with a letter"),
            );
        } else if let Some(other) = env_names.insert(env_var_name(name), name.clone()) {
            cx.at(
                k,
                format!(
                    "parameters `{other}` and `{name}` would both be passed as {}",
                    env_var_name(name)
                ),
            );
        }
        if let Some(p) = param(cx, name, v, ctx) {
            out.push(p);
        }
    }
    out
}

/// One parameter declaration; `None` when its type cannot be known.
fn param(cx: &mut Cx, name: &str, node: &Node<'_>, ctx: &str) -> Option<ParamSpec> {
    let what = format!("parameter `{name}` of {ctx}");
    let f = fields(cx, node, &what, PARAM_KEYS)?;
    let Some(type_node) = f.get("type") else {
        cx.at(
            node,
            format!("missing key `type` in {what}; use string, bool, int or enum"),
        );
        return None;
    };
    #[derive(Clone, Copy, PartialEq)]
    enum T {
        S,
        B,
        I,
        E,
    }
    let ty = keyword(
        cx,
        type_node,
        &format!("`type` of {what}"),
        &[
            ("string", T::S),
            ("bool", T::B),
            ("int", T::I),
            ("enum", T::E),
        ],
    )?;
    let description = f
        .get("description")
        .and_then(|n| text(cx, n, &format!("`description` of {what}")));
    let required = f
        .get("required")
        .and_then(|n| boolean(cx, n, &format!("`required` of {what}")))
        .unwrap_or(false);
    let secret = f
        .get("secret")
        .and_then(|n| boolean(cx, n, &format!("`secret` of {what}")))
        .unwrap_or(false);
    let default_node = f.get("default");
    if let Some(d) = default_node {
        if required {
            cx.at(
                d,
                format!("{what} is `required` and has a `default`; keep one of them"),
            );
        }
        if secret {
            cx.at(
                d,
                format!("{what} is `secret` and must not have a `default` in the file"),
            );
        }
    }
    for (key, only) in [("values", T::E), ("min", T::I), ("max", T::I)] {
        if let Some(n) = f.get(key)
            && ty != only
        {
            let needed = if only == T::E { "enum" } else { "int" };
            cx.at(
                n,
                format!("`{key}` only applies to `type: {needed}` ({what})"),
            );
        }
    }
    let dw = format!("`default` of {what}");
    let kind = match ty {
        T::S => ParamKind::String {
            default: default_node.and_then(|n| text(cx, n, &dw)),
        },
        T::B => ParamKind::Bool {
            default: default_node.and_then(|n| boolean(cx, n, &dw)),
        },
        T::I => {
            let min = f
                .get("min")
                .and_then(|n| integer(cx, n, &format!("`min` of {what}")));
            let max = f
                .get("max")
                .and_then(|n| integer(cx, n, &format!("`max` of {what}")));
            if let (Some(a), Some(b), Some(n)) = (min, max, f.get("max"))
                && a > b
            {
                cx.at(n, format!("`max` ({b}) of {what} is less than `min` ({a})"));
            }
            let default = default_node.and_then(|n| integer(cx, n, &dw));
            if let (Some(d), Some(n)) = (default, default_node)
                && (min.is_some_and(|m| d < m) || max.is_some_and(|m| d > m))
            {
                let range = format!(
                    "{}..{}",
                    min.map(|m| m.to_string()).unwrap_or_default(),
                    max.map(|m| m.to_string()).unwrap_or_default()
                );
                cx.at(
                    n,
                    format!("`default` {d} of {what} is outside `min`..`max` ({range})"),
                );
            }
            ParamKind::Int { default, min, max }
        }
        T::E => {
            let values = match f.get("values") {
                Some(n) => nonempty_list(cx, n, &format!("`values` of {what}"))
                    .map(|l| l.into_iter().map(|(s, _)| s).collect::<Vec<_>>())
                    .unwrap_or_default(),
                None => {
                    cx.at(
                        node,
                        format!("missing key `values` in {what} (an enum needs its values)"),
                    );
                    Vec::new()
                }
            };
            let default = default_node.and_then(|n| text(cx, n, &dw));
            if let (Some(d), Some(n)) = (&default, default_node)
                && !values.is_empty()
                && !values.contains(d)
            {
                let hint = suggest(d, values.iter().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                cx.at(
                    n,
                    format!(
                        "`default` `{d}` of {what} is not one of its `values` ({}){hint}",
                        values.join(", ")
                    ),
                );
            }
            ParamKind::Enum { values, default }
        }
    };
    Some(ParamSpec {
        name: name.to_owned(),
        description,
        required,
        secret,
        kind,
    })
}

/// Checks a `${{ params.* }}` template from the config: a syntax error is reported `(in {parse_in})`, and each
/// parameter it names that the job does not declare as `{subject} uses undeclared parameter …`, with the nearest
/// declared name as a hint.
pub(super) fn check_template(
    cx: &mut Cx,
    node: &Node<'_>,
    value: &str,
    parse_in: &str,
    subject: &str,
    params: &[ParamSpec],
) {
    match validate::parse_template(value) {
        Err(e) => cx.at(node, format!("{e} (in {parse_in})")),
        Ok(parts) => {
            for p in parts {
                if let validate::TemplatePart::Param(name) = p
                    && !params.iter().any(|q| q.name == name)
                {
                    let hint = suggest(name, params.iter().map(|q| q.name.as_str()))
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    cx.at(
                        node,
                        format!("{subject} uses undeclared parameter `{name}`{hint}"),
                    );
                }
            }
        }
    }
}
