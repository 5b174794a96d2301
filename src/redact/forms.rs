//! Purpose: the forms a secret is searched in: the raw text and each encoding a step or a payload may re-encode it
//! with (base64 at every alignment, hex, URL-encodings, JSON escapings, the Actions command escaping, shell quoting,
//! base32, UTF-16). The encoders themselves are in `encode.rs`.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use super::encode::{
    UpperHexU, ansi_c_inner, base32, json_inner, json_u_escaped, lower_hex_escapes, percent,
    shell_backslashed,
};

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

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};

    use super::forms;
    use crate::redact::encode::{
        ansi_c_inner, base32, json_inner, json_u_escaped, lower_hex_escapes, percent,
        shell_backslashed,
    };
    use crate::redact::{MASK, Redactor};

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
