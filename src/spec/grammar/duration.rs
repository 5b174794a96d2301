//! Purpose: the grammar of durations (timeouts and retry delays): `90s`, `10m`, `1h 30m` or a number of seconds,
//! more than zero and at most a week.

use std::time::Duration;

use crate::spec::yaml::{Cx, Node, Sc, Shape, shape, type_word};

/// Longest timeout or delay accepted anywhere.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// A duration: `90s`, `10m`, `1h 30m`, or an integer number of seconds; `0 < d ≤ 7 days`.
pub(super) fn duration(cx: &mut Cx, node: &Node<'_>, what: &str) -> Option<Duration> {
    let d = match shape(node) {
        Shape::Scalar(Sc::Int(i), _) => match u64::try_from(i) {
            Ok(s) => Duration::from_secs(s),
            Err(_) => {
                cx.at(node, format!("{what} must not be negative"));
                return None;
            }
        },
        Shape::Scalar(Sc::Str, t) => match humantime::parse_duration(t.trim()) {
            Ok(d) => d,
            Err(e) => {
                cx.at(
                    node,
                    format!("{what}: `{t}` is not a duration ({e}); write e.g. `90s`, `10m`, `1h 30m` or a number of seconds"),
                );
                return None;
            }
        },
        _ => {
            cx.at(
                node,
                format!(
                    "{what} must be a duration like `10m` or a number of seconds, not {}",
                    type_word(node)
                ),
            );
            return None;
        }
    };
    if d.is_zero() {
        cx.at(node, format!("{what} must be greater than zero"));
        return None;
    }
    if d > MAX_DURATION {
        cx.at(node, format!("{what} must be at most 7 days"));
        return None;
    }
    Some(d)
}
