//! Purpose: the grammar of a step's `retry:`: a number of tries, or a mapping with the tries, the backoff, jitter
//! and the exit codes that are retried.

use super::duration::duration;
use crate::spec::RetryPolicy;
use crate::spec::yaml::{Cx, Node, Shape, boolean, fields, integer, number, shape, type_word};

/// A number of tries, 1 to 20.
fn attempts(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<u32> {
    let a = integer(cx, node, what)?;
    match u32::try_from(a) {
        Ok(a) if (1..=20).contains(&a) => Some(a),
        _ => {
            cx.at(
                node,
                format!("{what} must be between 1 and 20 (the total number of tries), not {a}"),
            );
            None
        }
    }
}

/// `retry` of the step `label`.
pub(super) fn retry(cx: &mut Cx, node: &Node<'_>, label: &str) -> Option<RetryPolicy> {
    let what = format!("`retry` of {label}");
    if let Shape::Scalar(..) = shape(node) {
        return attempts(cx, node, &what).map(RetryPolicy::with_attempts);
    }
    let f = fields(
        cx,
        node,
        &what,
        &["attempts", "backoff", "jitter", "exit_codes"],
    )?;
    let Some(a) = f.get("attempts") else {
        cx.at(node, format!("missing key `attempts` in {what}"));
        return None;
    };
    let mut policy = RetryPolicy::with_attempts(attempts(cx, a, &format!("`attempts` in {what}"))?);
    if let Some(b) = f.get("backoff") {
        let bw = format!("`backoff` in {what}");
        if let Some(g) = fields(cx, b, &bw, &["initial", "max", "factor"]) {
            if let Some(n) = g.get("initial") {
                policy.initial =
                    duration(cx, n, &format!("`initial` of {bw}")).unwrap_or(policy.initial);
            }
            if let Some(n) = g.get("max") {
                policy.max = duration(cx, n, &format!("`max` of {bw}")).unwrap_or(policy.max);
            }
            if policy.max < policy.initial {
                let at = g.get("max").or(g.get("initial")).unwrap_or(b);
                cx.at(at, format!("`max` of {bw} must not be less than `initial`"));
            }
            if let Some(n) = g.get("factor")
                && let Some(x) = number(cx, n, &format!("`factor` of {bw}"))
            {
                if x < 1.0 {
                    cx.at(n, format!("`factor` of {bw} must be at least 1, not {x}"));
                } else {
                    policy.factor = x;
                }
            }
        }
    }
    if let Some(j) = f.get("jitter") {
        policy.jitter = boolean(cx, j, &format!("`jitter` in {what}")).unwrap_or(true);
    }
    if let Some(e) = f.get("exit_codes") {
        let ew = format!("`exit_codes` in {what}");
        match shape(e) {
            Shape::Seq(items) => {
                for item in items {
                    if let Some(code) = integer(cx, item, &format!("each entry of {ew}")) {
                        match i32::try_from(code) {
                            Ok(c) if (1..=255).contains(&c) => {
                                if policy.exit_codes.contains(&c) {
                                    cx.at(item, format!("exit code {c} is listed twice in {ew}"));
                                } else {
                                    policy.exit_codes.push(c);
                                }
                            }
                            _ => cx.at(
                                item,
                                format!("exit codes in {ew} must be between 1 and 255, not {code}"),
                            ),
                        }
                    }
                }
            }
            _ => cx.at(
                e,
                format!("{ew} must be a list of integers, not {}", type_word(e)),
            ),
        }
    }
    Some(policy)
}
