//! Purpose: redaction inside JSON: every string value of a value ([`Redactor::redact_json`]), or only the
//! free-text fields of a request body sent to GitHub ([`Redactor::redact_fields`]), so that a secret equal to a
//! JSON word never touches keys, enums, ids or URLs; and the lists of those fields per request.

use std::borrow::Cow;

use super::Redactor;

impl Redactor {
    /// A JSON value with every string value redacted; keys and the structure are kept (they are ours).
    pub fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        if self.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.redact(s).into_owned()),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.redact_json(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Redacts, in place, the string values at `paths` of a request body, and nothing else: the free-text fields
    /// that can carry step output or user content. A path is dot-separated keys; `[]` walks every item of an
    /// array and `*` every value of an object (`output.annotations.[].message`, `client_payload.params.*`).
    pub fn redact_fields(&self, body: &mut serde_json::Value, paths: &[&str]) {
        if self.is_empty() {
            return;
        }
        for path in paths {
            let segments: Vec<&str> = path.split('.').collect();
            self.redact_at(body, &segments);
        }
    }

    fn redact_at(&self, value: &mut serde_json::Value, path: &[&str]) {
        use serde_json::Value;
        let Some((first, rest)) = path.split_first() else {
            if let Value::String(s) = value
                && let Cow::Owned(masked) = self.redact(s)
            {
                *s = masked;
            }
            return;
        };
        match (*first, value) {
            ("[]", Value::Array(items)) => {
                for item in items {
                    self.redact_at(item, rest);
                }
            }
            ("*", Value::Object(map)) => {
                for item in map.values_mut() {
                    self.redact_at(item, rest);
                }
            }
            (key, Value::Object(map)) => {
                if let Some(item) = map.get_mut(key) {
                    self.redact_at(item, rest);
                }
            }
            _ => {}
        }
    }
}

/// The free-text fields of a check run body (create or update): its output and its annotations' texts.
pub const CHECK_RUN_FIELDS: &[&str] = &[
    "output.title",
    "output.summary",
    "output.text",
    "output.annotations.[].message",
    "output.annotations.[].title",
    "output.annotations.[].raw_details",
];

/// The free-text fields of a `repository_dispatch`'s `client_payload`: the string values of its parameters.
pub const DISPATCH_FIELDS: &[&str] = &["params.*"];

#[cfg(test)]
mod tests {
    use super::{CHECK_RUN_FIELDS, DISPATCH_FIELDS};
    use crate::redact::Redactor;

    /// JSON values keep their structure and keys; string values are redacted.
    #[test]
    fn json_values() {
        let r = Redactor::new(8);
        r.add("p4ssw0rd-xyz");
        let v = serde_json::json!({"a": ["x p4ssw0rd-xyz y", 1], "p4ssw0rd-xyz": true});
        assert_eq!(
            r.redact_json(&v),
            serde_json::json!({"a": ["x *** y", 1], "p4ssw0rd-xyz": true})
        );
    }

    /// Only the named free-text fields of a body are redacted: a secret equal to a JSON word leaves keys, enums
    /// and other fields alone.
    #[test]
    fn fields_only() {
        let r = Redactor::new(8);
        r.add("completed");
        let mut body = serde_json::json!({
            "status": "completed",
            "completed": true,
            "output": {"title": "completed", "summary": "all completed", "annotations": [
                {"message": "completed here", "annotation_level": "completed"}
            ]},
        });
        r.redact_fields(&mut body, CHECK_RUN_FIELDS);
        assert_eq!(
            body,
            serde_json::json!({
                "status": "completed",
                "completed": true,
                "output": {"title": "***", "summary": "all ***", "annotations": [
                    {"message": "*** here", "annotation_level": "completed"}
                ]},
            })
        );
        let mut payload =
            serde_json::json!({"params": {"a": "completed", "n": 3}, "conclusion": "completed"});
        r.redact_fields(&mut payload, DISPATCH_FIELDS);
        assert_eq!(
            payload,
            serde_json::json!({"params": {"a": "***", "n": 3}, "conclusion": "completed"})
        );
    }
}
