//! Purpose: the on-disk record format of a step log: one text line per output line,
//! `<number>\t<rfc3339 millis>\t<o|e>\t<text>\n`, where the text has `\`, newline, tab and carriage
//! return escaped so a record never contains a raw newline or a field separator.

use chrono::{DateTime, SecondsFormat, Utc};

use super::LogLine;
use crate::executor::Stream;

/// Appends the record for one line to `out`.
pub(crate) fn encode(number: u64, stream: Stream, at: DateTime<Utc>, text: &str, out: &mut String) {
    use std::fmt::Write as _;
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{number}\t{}\t{}\t",
        at.to_rfc3339_opts(SecondsFormat::Millis, true),
        match stream {
            Stream::Stdout => 'o',
            Stream::Stderr => 'e',
        }
    );
    escape(text, out);
    out.push('\n');
}

/// The length of the record [`encode`] writes for a line numbered `number` with `text` (a time in years 0 to 9999).
pub(crate) fn encoded_len(number: u64, text: &str) -> u64 {
    let digits = number.checked_ilog10().unwrap_or(0) as u64 + 1;
    // Non-short-circuit `|` so the count vectorizes: this runs for every line.
    let escapes = text
        .bytes()
        .filter(|&b| (b == b'\\') | (b == b'\n') | (b == b'\t') | (b == b'\r'))
        .count() as u64;
    // number, tab, `YYYY-MM-DDTHH:MM:SS.mmmZ`, tab, stream, tab, text, newline.
    digits + 1 + 24 + 1 + 1 + 1 + text.len() as u64 + escapes + 1
}

/// Parses one record (without its trailing newline); `None` when it is malformed.
pub(crate) fn decode(record: &[u8]) -> Option<LogLine> {
    let record = std::str::from_utf8(record).ok()?;
    let mut fields = record.splitn(4, '\t');
    let number = fields.next()?.parse().ok()?;
    let at = DateTime::parse_from_rfc3339(fields.next()?)
        .ok()?
        .with_timezone(&Utc);
    let stream = match fields.next()? {
        "o" => Stream::Stdout,
        "e" => Stream::Stderr,
        _ => return None,
    };
    let text = unescape(fields.next()?)?;
    Some(LogLine {
        number,
        stream,
        at,
        text,
    })
}

/// The number of a record, read without decoding the rest (used to search a file).
pub(crate) fn number_of(record: &[u8]) -> Option<u64> {
    let end = record.iter().position(|&b| b == b'\t')?;
    std::str::from_utf8(&record[..end]).ok()?.parse().ok()
}

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    #[test]
    fn escaping_table() {
        let cases = [
            ("plain", "plain"),
            ("a\tb", "a\\tb"),
            ("a\nb", "a\\nb"),
            ("a\r\n", "a\\r\\n"),
            ("back\\slash", "back\\\\slash"),
            ("literal \\n", "literal \\\\n"),
            ("", ""),
            ("ünï 🚀", "ünï 🚀"),
        ];
        for (text, escaped) in cases {
            let mut out = String::new();
            escape(text, &mut out);
            assert_eq!(out, escaped, "escape {text:?}");
            for number in [1, 9, 10, 99_999, u64::MAX] {
                let mut record = String::new();
                encode(number, Stream::Stdout, Utc::now(), text, &mut record);
                assert_eq!(encoded_len(number, text), record.len() as u64, "{text:?}");
            }
            assert_eq!(
                unescape(escaped).as_deref(),
                Some(text),
                "unescape {escaped:?}"
            );
        }
    }

    #[test]
    fn record_round_trip_and_format() {
        let at = DateTime::parse_from_rfc3339("2026-03-04T05:06:07.089Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut out = String::new();
        encode(12, Stream::Stderr, at, "x\ty", &mut out);
        assert_eq!(out, "12\t2026-03-04T05:06:07.089Z\te\tx\\ty\n");
        let line = decode(out.trim_end_matches('\n').as_bytes()).unwrap();
        assert_eq!(line.number, 12);
        assert_eq!(line.stream, Stream::Stderr);
        assert_eq!(line.at, at);
        assert_eq!(line.text, "x\ty");
        assert_eq!(number_of(out.as_bytes()), Some(12));
    }

    #[test]
    fn malformed_records_are_rejected() {
        let cases: [&[u8]; 7] = [
            b"",
            b"x\t2026-03-04T05:06:07.089Z\to\ttext",
            b"1\tyesterday\to\ttext",
            b"1\t2026-03-04T05:06:07.089Z\tq\ttext",
            b"1\t2026-03-04T05:06:07.089Z\to",
            b"1\t2026-03-04T05:06:07.089Z\to\tbad\\escape",
            b"1\t2026-03-04T05:06:07.089Z\to\t\xff",
        ];
        for record in cases {
            assert!(
                decode(record).is_none(),
                "{:?}",
                String::from_utf8_lossy(record)
            );
        }
    }
}
