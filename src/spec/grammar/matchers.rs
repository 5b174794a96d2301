//! Purpose: the grammar of a job's `problem_matchers:` list: each regex must compile and name only the groups
//! [`crate::annotations`] reads, and a `severity` must be a level it knows.

use crate::spec::ProblemMatcher;
use crate::spec::suggest::suggest;
use crate::spec::yaml::{Cx, Node, Shape, fields, shape, text, type_word};

/// `problem_matchers: [{regex: "...", severity: warning}]`: each regex must compile and use only the known groups.
pub(super) fn problem_matchers(cx: &mut Cx, node: &Node<'_>, ctx: &str) -> Vec<ProblemMatcher> {
    let what = format!("`problem_matchers` of {ctx}");
    let Shape::Seq(items) = shape(node) else {
        cx.at(
            node,
            format!("{what} must be a list, not {}", type_word(node)),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let what = format!("problem matcher {} of {ctx}", i + 1);
        let Some(f) = fields(cx, item, &what, &["regex", "severity"]) else {
            continue;
        };
        let severity = f.get("severity").and_then(|n| {
            let word = text(cx, n, &format!("`severity` of {what}"))?;
            if crate::annotations::Level::from_word(&word).is_none() {
                cx.at(
                    n,
                    format!(
                        "`severity` of {what} must be `error`, `warning` or `notice`, not `{word}`"
                    ),
                );
                return None;
            }
            Some(word)
        });
        let Some(n) = f.get("regex") else {
            cx.at(item, format!("missing key `regex` in {what}"));
            continue;
        };
        let Some(source) = text(cx, n, &format!("`regex` of {what}")) else {
            continue;
        };
        match regex::Regex::new(&source) {
            Err(e) => cx.at(
                n,
                format!(
                    "`regex` of {what} is not a valid regex: {}",
                    e.to_string().replace('\n', " ")
                ),
            ),
            Ok(re) => {
                let allowed = crate::annotations::MATCHER_GROUPS;
                let unknown: Vec<&str> = re
                    .capture_names()
                    .flatten()
                    .filter(|g| !allowed.contains(g))
                    .collect();
                if let Some(g) = unknown.first() {
                    let hint = suggest(g, allowed.iter().copied())
                        .map(|h| format!("; did you mean `{h}`?"))
                        .unwrap_or_else(|| format!("; expected one of: {}", allowed.join(", ")));
                    cx.at(n, format!("unknown group `{g}` in `regex` of {what}{hint}"));
                } else {
                    out.push(ProblemMatcher {
                        regex: source,
                        severity,
                    });
                }
            }
        }
    }
    out
}
