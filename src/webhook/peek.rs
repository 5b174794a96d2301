//! Purpose: what the ingress reads of a delivery's body before it acknowledges it: the payload's `action`, the one
//! field routing needs (is the delivery one boomerang acts on?). GitHub puts `action` first in every payload that has
//! one, so [`action`] reads it in place from the body's first bytes, without walking the rest: parsing a 13 KB
//! payload whole cost about 5 µs, an eighth of the request's own work under load. A body that does not start that
//! way (a push has no action; a body that is not JSON) is parsed whole, as before, so a body without an action and a
//! body that is not JSON are told apart exactly (the latter is refused with a 400).
//!
//! A body that starts with an action and is broken after it is acknowledged: it carries GitHub's signature, so it
//! came from GitHub or from a holder of the webhook secret, and processing parses every delivery it acts on whole
//! and parks one it cannot read, with the parser's reason. Nor is the rest checked for a second `action` key (a
//! payload never repeats a key): the leading one is the one routing uses; a body GitHub never sends that repeated it
//! with another value would be routed by the first while processing reads the last.

use serde::Deserialize;

/// A leading action longer than this is read by the whole parse (GitHub's are single words).
const MAX_LEADING_ACTION: usize = 64;

/// The payload's `action` (`None`: it has none, or it is not a string). An error when the body had to be parsed
/// whole and is not JSON.
pub(super) fn action(body: &[u8]) -> Result<Option<String>, serde_json::Error> {
    if let Some(action) = leading_action(body) {
        return Ok(Some(action.to_string()));
    }
    let whole: WholeAction = serde_json::from_slice(body)?;
    Ok(whole.0)
}

/// The `action` of a body parsed whole: a JSON object is required; its other values are skipped unread, and of
/// repeated `action` keys the last counts, as in processing's parse.
struct WholeAction(Option<String>);

impl<'de> Deserialize<'de> for WholeAction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = WholeAction;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<WholeAction, A::Error> {
                let mut action = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "action" {
                        action = match map.next_value::<serde_json::Value>()? {
                            serde_json::Value::String(a) => Some(a),
                            _ => None,
                        };
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(WholeAction(action))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// The action when the body opens with it: `{`, the key `"action"`, `:` and a plain string (no escapes, no control
/// characters, at most [`MAX_LEADING_ACTION`] bytes) followed by `,` or `}`, with JSON's whitespace anywhere between.
fn leading_action(body: &[u8]) -> Option<&str> {
    let mut rest = skip_whitespace(body).strip_prefix(b"{")?;
    rest = skip_whitespace(rest).strip_prefix(b"\"action\"")?;
    rest = skip_whitespace(rest).strip_prefix(b":")?;
    rest = skip_whitespace(rest).strip_prefix(b"\"")?;
    let end = rest
        .iter()
        .take(MAX_LEADING_ACTION + 1)
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    if end > MAX_LEADING_ACTION || rest[end] != b'"' {
        return None;
    }
    let after = skip_whitespace(&rest[end + 1..]);
    if !matches!(after.first(), Some(b',' | b'}')) {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

/// `bytes` after its leading JSON whitespace.
fn skip_whitespace(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_leading_action_is_read_in_place_compact_or_pretty() {
        for body in [
            &br#"{"action":"created","comment":{"body":"/run"}}"#[..],
            b"{\n  \"action\": \"created\",\n  \"issue\": {}\n}",
            b" \r\n\t{ \"action\" :\t\"created\" }",
        ] {
            assert_eq!(leading_action(body), Some("created"));
            assert_eq!(action(body).expect("JSON"), Some("created".into()));
        }
    }

    #[test]
    fn anything_else_is_parsed_whole() {
        // Not first, escaped, too long, not a string, absent: the whole parse answers, exactly.
        let long = format!(r#"{{"action":"{}"}}"#, "a".repeat(MAX_LEADING_ACTION + 1));
        let cases: [(&[u8], Option<&str>); 6] = [
            (br#"{"zen":"x","action":"completed"}"#, Some("completed")),
            (br#"{"action":"cre\u0061ted"}"#, Some("created")),
            (long.as_bytes(), Some(&long[11..long.len() - 2])),
            (br#"{"action":null,"ref":"main"}"#, None),
            (br#"{"action":7}"#, None),
            (br#"{"ref":"refs/heads/main","before":"0"}"#, None),
        ];
        for (body, expected) in cases {
            assert_eq!(
                leading_action(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(action(body).expect("JSON").as_deref(), expected);
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_an_error_unless_it_opens_with_an_action() {
        for body in [
            &b"payload=%7B%7D"[..],
            b"Hello, World!",
            b"",
            b"{\"action\":\"x\"",
            b"[1]",
        ] {
            assert!(action(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        // The prefix is all that is read: processing parses it whole and parks it.
        assert_eq!(
            action(br#"{"action":"created", this is not JSON"#).expect("read in place"),
            Some("created".into())
        );
    }

    proptest! {
        /// Whatever GitHub's action and the rest of the payload, the action read in place is the one the whole
        /// parse finds, and one that cannot be read in place is still found.
        #[test]
        fn agrees_with_the_whole_parse(action_text in "\\PC{0,80}", other in "\\PC{0,40}", pretty in any::<bool>()) {
            let value = serde_json::json!({"action": action_text, "other": {"text": other, "action": "nested"}});
            let body = if pretty { serde_json::to_vec_pretty(&value) } else { serde_json::to_vec(&value) }.expect("serialise");
            if let Some(read) = leading_action(&body) {
                prop_assert_eq!(read, action_text.as_str());
            }
            prop_assert_eq!(action(&body).expect("JSON"), Some(action_text));
        }
    }
}
