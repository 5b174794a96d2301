//! Purpose: secret redaction. A [`Redactor`] holds a set of secrets and replaces each of them, and the forms a
//! secret takes when a step or a payload re-encodes it, by `***`. Matching is one Aho-Corasick pass over the text,
//! leftmost-longest. The forms (see [`forms`]): the raw text; base64 (standard and URL-safe, padded or not, and at
//! each of the three alignments a secret can have inside a longer base64 text); hex (lower and upper case);
//! URL-encoding (`+` or `%20` for spaces, upper- or lower-case escapes, keeping `/` or not, RFC 3986 and
//! `encodeURIComponent` sets); JSON escaping (once, twice, with `\/`, with `\uXXXX` for non-ASCII and for `<>&`);
//! the Actions command escaping (`%25`, `%0D`, `%0A`, and `%3A`/`%2C` in properties); shell quoting (`printf %q`'s
//! backslashes, its `$'…'` form, and `'\''` inside single quotes); base32 (RFC 4648, from the start of the
//! encoding) and UTF-16 (little and big endian).
//!
//! Scope: the server's secrets (`SECRETS`) mask everything; a job's secret parameters mask only that job's output
//! and requests. [`Redactors`] holds the server's redactor and one per job (server secrets plus the job's), built
//! when the engine loads the job.
//!
//! Redaction is applied where text leaves boomerang's hands: each step log line before it is stored (across line
//! joins, see [`crate::logs`]), the free-text fields of requests sent to GitHub ([`Redactor::redact_fields`]: never
//! keys, enums, ids or URLs), and the API's answers.

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
    /// Bytes of the longest pattern: a match crossing a line join starts at most this many bytes minus one before it.
    longest: usize,
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
        inner.longest = inner.patterns.iter().map(String::len).max().unwrap_or(0);
        inner.matcher = matcher(&inner.patterns);
        true
    }

    /// A new redactor with this one's secrets and `more` (a job's secret parameters on top of the server's).
    pub fn with_more(&self, more: &[String]) -> Redactor {
        let out = Redactor::new(self.min_length);
        let secrets: Vec<String> = self
            .inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .secrets
            .iter()
            .cloned()
            .collect();
        let all: BTreeSet<&str> = secrets
            .iter()
            .map(String::as_str)
            .chain(more.iter().map(String::as_str))
            .filter(|s| s.len() >= self.min_length)
            .collect();
        if all.is_empty() {
            return out;
        }
        let mut inner = out.inner.write().unwrap_or_else(PoisonError::into_inner);
        let mut patterns = BTreeSet::new();
        for s in all {
            inner.secrets.insert(s.to_string());
            patterns.extend(forms(s));
        }
        inner.patterns = patterns.into_iter().collect();
        inner.longest = inner.patterns.iter().map(String::len).max().unwrap_or(0);
        inner.matcher = matcher(&inner.patterns);
        drop(inner);
        out
    }

    /// Bytes of the longest form it looks for (0 without secrets): how far back a match crossing a line join
    /// can start.
    pub fn longest_form(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .longest
    }

    /// Whether `text` ends with the first `min` or more bytes (but not all) of a secret form: the form may go on in
    /// the text that follows.
    pub fn ends_with_partial_form(&self, text: &[u8], min: usize) -> bool {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let longest = inner.longest.min(text.len() + 1);
        (min.max(1)..longest).any(|k| {
            let suffix = &text[text.len() - k..];
            let i = inner.patterns.partition_point(|p| p.as_bytes() < suffix);
            inner
                .patterns
                .get(i)
                .is_some_and(|p| p.len() > k && p.as_bytes().starts_with(suffix))
        })
    }

    /// Puts into `out` (emptied first) the byte ranges of `haystack` holding a secret form (leftmost-longest, not
    /// overlapping), in order.
    pub fn find_ranges(&self, haystack: &[u8], out: &mut Vec<std::ops::Range<usize>>) {
        out.clear();
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(matcher) = &inner.matcher {
            out.extend(matcher.find_iter(haystack).map(|m| m.range()));
        }
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

/// The server's redactor and one per job (server secrets plus the job's secret parameters), so that a job's
/// secrets mask only that job's output and requests. Cheap to clone; clones share the cache.
#[derive(Clone, Debug)]
pub struct Redactors {
    server: Redactor,
    jobs: Arc<RwLock<std::collections::HashMap<String, Redactor>>>,
}

/// Jobs whose redactor is kept; past it the cache is emptied (each job's redactor is rebuilt when it is loaded).
const JOB_CACHE: usize = 4096;

impl Redactors {
    /// Redactors around the server's one.
    pub fn new(server: Redactor) -> Redactors {
        Redactors {
            server,
            jobs: Arc::default(),
        }
    }

    /// The server's redactor (server secrets only).
    pub fn server(&self) -> &Redactor {
        &self.server
    }

    /// Records job `job`'s secret values (a no-op when already known) and returns its redactor.
    pub fn set_job(&self, job: &str, secrets: &[String]) -> Redactor {
        if let Some(r) = self
            .jobs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(job)
        {
            return r.clone();
        }
        let r = if secrets.is_empty() {
            self.server.clone()
        } else {
            self.server.with_more(secrets)
        };
        let mut jobs = self.jobs.write().unwrap_or_else(PoisonError::into_inner);
        if jobs.len() >= JOB_CACHE {
            jobs.clear();
        }
        jobs.insert(job.to_string(), r.clone());
        r
    }

    /// The redactor of job `job` if it is known, else `None`.
    pub fn job(&self, job: &str) -> Option<Redactor> {
        self.jobs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(job)
            .cloned()
    }

    /// Forgets job `job`'s secrets (the job is deleted).
    pub fn forget(&self, job: &str) {
        self.jobs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(job);
    }
}

/// The matcher for `patterns`: a full DFA (every line of every step is scanned, and the forms of a few secrets are
/// too many patterns for the automatic choice to pick one), or the default kind if the DFA is too large.
fn matcher(patterns: &[String]) -> Option<AhoCorasick> {
    let mut builder = AhoCorasickBuilder::new();
    builder.match_kind(MatchKind::LeftmostLongest);
    builder
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(patterns)
        .or_else(|_| builder.kind(None).build(patterns))
        .map_err(|e| tracing::error!(error = %e, "cannot build the redaction matcher"))
        .ok()
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
    // Python's `quote` keeps `/` by default.
    let keep_slash = |b: u8| rfc3986(b) || b == b'/';
    let encoded = percent(bytes, &keep_slash);
    out.insert(lower_hex_escapes(&encoded));
    out.insert(encoded);
    // JSON-escaped, once (a string in a JSON body) and twice (JSON inside a JSON string), and the variants other
    // encoders write: `\/` for `/` (PHP), `\uXXXX` for non-ASCII (Python's `ensure_ascii`) and for `<>&` (Go).
    let once = json_inner(secret);
    out.insert(json_inner(&once));
    let slashed = once.replace('/', "\\/");
    for variant in [
        json_u_escaped(&once, true, false),
        json_u_escaped(&once, false, true),
        json_u_escaped(&once, true, true),
        json_u_escaped(&slashed, true, false),
        slashed,
    ] {
        out.insert(variant.to_ascii_uppercase_hex_u());
        out.insert(variant);
    }
    out.insert(once);
    // Hex, both cases.
    out.insert(hex::encode(bytes));
    out.insert(hex::encode_upper(bytes));
    // The Actions workflow-command escaping: data, then properties.
    let data = secret
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    out.insert(data.replace(':', "%3A").replace(',', "%2C"));
    out.insert(data);
    // Shell quoting: `printf %q` (backslashes, or `$'…'` when there are control characters) and `'\''`.
    out.insert(shell_backslashed(secret));
    out.insert(ansi_c_inner(secret, false));
    out.insert(ansi_c_inner(secret, true));
    out.insert(secret.replace('\'', "'\\''"));
    out.insert(secret.replace('\'', "'\"'\"'"));
    // base32 (RFC 4648) from the start of the encoding: whole, and the characters that depend on whole 5-byte
    // groups (the secret followed by more text).
    let b32 = base32(bytes);
    let whole = bytes.len() / 5 * 8;
    if let Some(core) = b32.get(..whole) {
        out.insert(core.to_string());
    }
    out.insert(b32);
    // UTF-16 (a step decoding with the wrong charset shows NULs between ASCII bytes).
    let (le, be): (String, String) =
        secret
            .encode_utf16()
            .fold((String::new(), String::new()), |(mut le, mut be), unit| {
                let [hi, lo] = unit.to_be_bytes();
                for (out, pair) in [(&mut le, [lo, hi]), (&mut be, [hi, lo])] {
                    out.push_str(&String::from_utf8_lossy(&pair));
                }
                (le, be)
            });
    if secret.is_ascii() {
        out.insert(le);
        out.insert(be);
    }
    out.retain(|f| !f.is_empty());
    out
}

/// Upper-cases the hex digits of `\uXXXX` escapes (`\u00e9` → `\u00E9`).
trait UpperHexU {
    fn to_ascii_uppercase_hex_u(&self) -> String;
}

impl UpperHexU for String {
    fn to_ascii_uppercase_hex_u(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut rest = self.as_str();
        while let Some(i) = rest.find("\\u") {
            out.push_str(&rest[..i]);
            let esc = rest.get(i..i + 6).unwrap_or(&rest[i..]);
            out.push_str(&esc[..2.min(esc.len())]);
            out.push_str(&esc.get(2..).unwrap_or_default().to_ascii_uppercase());
            rest = &rest[i + esc.len()..];
        }
        out.push_str(rest);
        out
    }
}

/// A JSON string's inside with characters as `\uXXXX` (UTF-16 units, lower-case hex): the non-ASCII ones when
/// `non_ascii` (Python's `ensure_ascii`), `<`, `>`, `&` when `html` (Go's encoder).
fn json_u_escaped(json_inner: &str, non_ascii: bool, html: bool) -> String {
    let mut out = String::with_capacity(json_inner.len());
    for c in json_inner.chars() {
        if (non_ascii && !c.is_ascii())
            || (html && matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}'))
        {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `printf %q` of a string without control characters: a backslash before each character the shell treats
/// specially.
fn shell_backslashed(secret: &str) -> String {
    let mut out = String::with_capacity(secret.len() * 2);
    for (i, c) in secret.chars().enumerate() {
        let special = matches!(
            c,
            ' ' | '\t'
                | '\n'
                | '\''
                | '"'
                | '\\'
                | '|'
                | '&'
                | ';'
                | '('
                | ')'
                | '<'
                | '>'
                | '!'
                | '{'
                | '}'
                | '*'
                | '['
                | '?'
                | ']'
                | '^'
                | '$'
                | '`'
                | ','
        ) || (i == 0 && matches!(c, '~' | '#'));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The inside of bash's `$'…'` quoting (what `printf %q` writes for a string with control characters, or with
/// non-ASCII characters outside a UTF-8 locale: then as octal bytes, when `octal_non_ascii`).
fn ansi_c_inner(secret: &str, octal_non_ascii: bool) -> String {
    let mut out = String::with_capacity(secret.len() * 2);
    for c in secret.chars() {
        match c {
            c if octal_non_ascii && !c.is_ascii() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:03o}"));
                }
            }
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x1b' => out.push_str("\\E"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_ascii_control() => out.push_str(&format!("\\{:03o}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// RFC 4648 base32 without padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
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

    /// The encodings added for issue 9, alone and inside text, are masked.
    #[test]
    fn more_encodings_are_masked() {
        let secret = "s3cr\"et/val:ue,%\u{fc}<&>\tx";
        let r = Redactor::new(8);
        assert!(r.add(secret));
        let cases = [
            ("hex", hex::encode(secret)),
            ("HEX", hex::encode_upper(secret)),
            (
                "url keeping /",
                percent(secret.as_bytes(), &|b| {
                    b.is_ascii_alphanumeric() || b"-._~/".contains(&b)
                }),
            ),
            ("json \\/", json_inner(secret).replace('/', "\\/")),
            (
                "json ascii",
                json_u_escaped(&json_inner(secret), true, false),
            ),
            ("json go", json_u_escaped(&json_inner(secret), false, true)),
            ("actions", secret.replace('%', "%25")),
            (
                "actions property",
                secret
                    .replace('%', "%25")
                    .replace(':', "%3A")
                    .replace(',', "%2C"),
            ),
            ("shell $''", ansi_c_inner(secret, false)),
            ("shell $'' octal", ansi_c_inner(secret, true)),
        ];
        for (name, form) in cases {
            let text = format!("before {form} after");
            assert_eq!(r.redact(&text), "before *** after", "{name}: {form}");
        }
        let plain = "plain-Secret_value/x y";
        assert!(r.add(plain));
        let shell = shell_backslashed(plain);
        assert_eq!(shell, "plain-Secret_value/x\\ y");
        assert_eq!(r.redact(&shell), "***");
        assert_eq!(r.redact(&base32(plain.as_bytes())), "***");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }
}
