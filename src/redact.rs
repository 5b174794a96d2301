//! Purpose: secret redaction. One [`Redactor`] holds the server's secrets and the secret parameters of the jobs
//! it has seen, and replaces each of them, and the forms a secret takes when a step or a payload re-encodes it,
//! by `***`: the raw text, base64 (standard and URL-safe, padded or not, and at each of the three alignments a
//! secret can have inside a longer base64 text), URL-encoded (`+` or `%20` for spaces, upper- or lower-case hex)
//! and JSON-escaped (once and twice). Matching is one Aho-Corasick pass over the text, leftmost-longest.
//!
//! It is applied where text leaves boomerang's hands: each step log line before it is stored, every request body
//! sent to GitHub (check runs, comments, dispatch payloads), and the API's answers.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError, RwLock};

/// What a secret is replaced by.
pub const MASK: &str = "***";

/// Default shortest secret accepted (`REDACT_MIN_LENGTH`).
pub const DEFAULT_MIN_LENGTH: usize = 8;

/// Replaces secrets and their derived forms by [`MASK`]. Cheap to clone; clones share the secrets.
#[derive(Clone, Debug)]
pub struct Redactor {
    inner: Arc<RwLock<Inner>>,
    min_length: usize,
}

#[derive(Debug, Default)]
struct Inner {
    secrets: BTreeSet<String>,
    patterns: Vec<String>,
    matcher: Option<AhoCorasick>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(DEFAULT_MIN_LENGTH)
    }
}

impl Redactor {
    /// A redactor without secrets that ignores secrets shorter than `min_length` bytes (they would mask common
    /// words; the settings refuse such server secrets at start-up).
    pub fn new(min_length: usize) -> Redactor {
        Redactor {
            inner: Arc::new(RwLock::new(Inner::default())),
            min_length: min_length.max(1),
        }
    }

    /// Starts redacting `secret` and its derived forms. Returns false (and redacts nothing new) when it is
    /// shorter than the minimum length.
    pub fn add(&self, secret: &str) -> bool {
        if secret.len() < self.min_length {
            return false;
        }
        if self
            .inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .secrets
            .contains(secret)
        {
            return true;
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if !inner.secrets.insert(secret.to_string()) {
            return true;
        }
        let mut patterns: BTreeSet<String> = inner.patterns.drain(..).collect();
        patterns.extend(forms(secret));
        inner.patterns = patterns.into_iter().collect();
        inner.matcher = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&inner.patterns)
            .map_err(|e| tracing::error!(error = %e, "cannot build the redaction matcher"))
            .ok();
        true
    }

    /// The shortest secret it redacts (`REDACT_MIN_LENGTH`).
    pub fn min_length(&self) -> usize {
        self.min_length
    }

    /// How many secrets it redacts.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .secrets
            .len()
    }

    /// Whether it redacts nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `text` with every secret form replaced by [`MASK`] (borrowed when nothing matched).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let Some(matcher) = &inner.matcher else {
            return Cow::Borrowed(text);
        };
        if !matcher.is_match(text) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        matcher.replace_all_with(text, &mut out, |_, _, dst| {
            dst.push_str(MASK);
            true
        });
        Cow::Owned(out)
    }

    /// A JSON value with every string (and key) redacted; the structure is kept.
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
                    .map(|(k, v)| (self.redact(k).into_owned(), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Every form of `secret` the redactor looks for.
pub fn forms(secret: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = secret.as_bytes();
    out.insert(secret.to_string());
    // base64: the whole encoding, and the part of the encoding that depends only on the secret at each of the
    // three alignments it can have inside a longer encoded text.
    for engine in [&STANDARD, &URL_SAFE] {
        out.insert(engine.encode(bytes));
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for k in 0..3usize {
            let mut padded = vec![0u8; k];
            padded.extend_from_slice(bytes);
            let encoded = engine.encode(&padded);
            let start = (8 * k).div_ceil(6);
            let end = (8 * (k + bytes.len())) / 6;
            if let Some(core) = encoded.get(start..end)
                && core.len() >= 4
            {
                out.insert(core.to_string());
            }
        }
    }
    // URL-encoded.
    let plus: String = url::form_urlencoded::byte_serialize(bytes).collect();
    out.insert(plus.replace('+', "%20"));
    out.insert(lower_hex_escapes(&plus.replace('+', "%20")));
    out.insert(lower_hex_escapes(&plus));
    out.insert(plus);
    // RFC 3986 (Python's `quote`, curl) and JavaScript's `encodeURIComponent` keep more characters.
    let rfc3986 = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    let js = |b: u8| rfc3986(b) || b"!'()*".contains(&b);
    for keep in [&rfc3986 as &dyn Fn(u8) -> bool, &js] {
        let encoded = percent(bytes, keep);
        out.insert(lower_hex_escapes(&encoded));
        out.insert(encoded);
    }
    // JSON-escaped, once (a string in a JSON body) and twice (JSON inside a JSON string).
    let once = json_inner(secret);
    out.insert(json_inner(&once));
    out.insert(once);
    out.retain(|f| !f.is_empty());
    out
}

fn percent(bytes: &[u8], keep: &dyn Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn json_inner(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_default()
        .to_string()
}

/// `%2F` → `%2f`.
fn lower_hex_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3).unwrap_or(&rest[i..]);
        out.push_str(&esc.to_ascii_lowercase());
        rest = &rest[i + esc.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2-Sup3r/Secret+Value~ \"quoted\"\\";

    /// Each derived form, alone or embedded in longer text, is masked; unrelated text is kept.
    #[test]
    fn every_form_is_masked_table() {
        let r = Redactor::new(8);
        assert!(r.add(SECRET));
        let b64 = |prefix: &[u8], e: &base64::engine::GeneralPurpose| {
            let mut v = prefix.to_vec();
            v.extend_from_slice(SECRET.as_bytes());
            v.extend_from_slice(b"tail!");
            e.encode(v)
        };
        let url_plus: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
        let cases: Vec<(&str, String)> = vec![
            ("raw", format!("token={SECRET};")),
            ("base64 std", STANDARD.encode(SECRET)),
            ("base64 url", URL_SAFE.encode(SECRET)),
            ("base64 inside, offset 0", b64(b"", &STANDARD)),
            ("base64 inside, offset 1", b64(b"A", &STANDARD)),
            ("base64 inside, offset 2", b64(b"AB", &STANDARD)),
            ("base64url inside, offset 1", b64(b"x", &URL_SAFE_NO_PAD)),
            ("base64url inside, offset 2", b64(b"xy", &URL_SAFE_NO_PAD)),
            ("url-encoded +", format!("q={url_plus}&x=1")),
            (
                "url-encoded %20",
                format!("q={}", url_plus.replace('+', "%20")),
            ),
            ("url-encoded lower", lower_hex_escapes(&url_plus)),
            (
                "url-encoded rfc 3986",
                percent(SECRET.as_bytes(), &|b| {
                    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
                }),
            ),
            ("json", serde_json::json!({ "t": SECRET }).to_string()),
            (
                "json twice",
                serde_json::json!({ "t": serde_json::json!({ "u": SECRET }).to_string() })
                    .to_string(),
            ),
        ];
        for (name, text) in cases {
            let out = r.redact(&text);
            assert!(out.contains(MASK), "{name}: nothing masked in {text}");
            for form in forms(SECRET) {
                assert!(!out.contains(&form), "{name}: {form} left in {out}");
            }
        }
        assert_eq!(r.redact("nothing to see"), "nothing to see");
    }

    /// Short secrets are refused; several secrets are masked together; overlapping ones mask the longest.
    #[test]
    fn short_refused_and_several_secrets() {
        let r = Redactor::new(8);
        assert!(!r.add("short"));
        assert!(r.is_empty());
        assert_eq!(r.redact("short words stay"), "short words stay");
        assert!(r.add("first-secret"));
        assert!(r.add("first-secret-longer"));
        assert!(r.add("second-secret"));
        assert_eq!(r.len(), 3);
        assert_eq!(
            r.redact("a first-secret-longer b second-secret c first-secret"),
            "a *** b *** c ***"
        );
    }

    /// JSON values keep their structure; strings and keys are redacted.
    #[test]
    fn json_values() {
        let r = Redactor::new(8);
        r.add("p4ssw0rd-xyz");
        let v = serde_json::json!({"a": ["x p4ssw0rd-xyz y", 1], "p4ssw0rd-xyz": true});
        assert_eq!(
            r.redact_json(&v),
            serde_json::json!({"a": ["x *** y", 1], "***": true})
        );
    }
}
