//! Purpose: the encoders behind the forms of a secret that the encoding crates do not provide: JSON `\uXXXX`
//! escaping, shell quoting (`printf %q` and bash's `$'…'`), base32, percent-encoding with a chosen set of kept
//! bytes, and lower-case escapes.

/// Upper-cases the hex digits of `\uXXXX` escapes (`\u00e9` → `\u00E9`).
pub(super) trait UpperHexU {
    /// The text with the hex digits of its `\uXXXX` escapes in upper case.
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
pub(super) fn json_u_escaped(json_inner: &str, non_ascii: bool, html: bool) -> String {
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
pub(super) fn shell_backslashed(secret: &str) -> String {
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
pub(super) fn ansi_c_inner(secret: &str, octal_non_ascii: bool) -> String {
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
pub(super) fn base32(bytes: &[u8]) -> String {
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

/// `bytes` with every byte `keep` refuses as an upper-case `%XX` escape.
pub(super) fn percent(bytes: &[u8], keep: &dyn Fn(u8) -> bool) -> String {
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

/// The inside of `text` as a JSON string: escaped, without the quotes.
pub(super) fn json_inner(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_default()
        .to_string()
}

/// `%2F` → `%2f`.
pub(super) fn lower_hex_escapes(text: &str) -> String {
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
