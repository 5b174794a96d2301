//! Purpose: what a search pattern requires of a matching line's stored bytes, as a tree of literals (all of, any
//! of), so the log index can rule out the blocks of a file that cannot hold a match.
//!
//! Found by walking the pattern's syntax tree (regex-syntax's `Hir`, parsed as the `regex` crate parses it):
//! a literal is required as it is; a concatenation requires what each part requires (adjacent literals joined); an
//! alternation requires one of its branches' requirements; a repetition requires its body's when it runs at least
//! once; classes, anchors and optional parts require nothing. regex-syntax's prefix/suffix `Extractor` was weighed:
//! it gives the literals a match starts (or ends) with, so `.*ECONNRESET` or `error: .* timed out` would yield
//! nothing usable from one side, where this walk finds the literal wherever it sits.
//!
//! A line's text is stored with `\`, newline, tab and carriage return escaped (see `record`), so a literal is cut at
//! those characters and each piece is required instead: a piece of the text free of them is stored unchanged.

use regex_syntax::hir::{Hir, HirKind};

/// What a match needs in a line's stored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Required {
    /// Nothing known: any line may match.
    Anything,
    /// These bytes (at least three long).
    Literal(Vec<u8>),
    /// Every one of these.
    All(Vec<Required>),
    /// At least one of these.
    Any(Vec<Required>),
}

/// Shortest literal worth requiring: the index holds the three-byte sequences of the text.
const SHORTEST: usize = 3;

impl Required {
    /// What `pattern` requires; [`Required::Anything`] when it does not parse (the caller compiled it already, so
    /// that only means no help from the index).
    pub(crate) fn of_pattern(pattern: &str) -> Required {
        match regex_syntax::ParserBuilder::new().build().parse(pattern) {
            Ok(hir) => of(&hir),
            Err(_) => Required::Anything,
        }
    }

    /// Whether this requires nothing (a search with it reads every byte).
    pub(crate) fn is_anything(&self) -> bool {
        matches!(self, Required::Anything)
    }

    /// Whether `text` (stored bytes) holds what this requires: the plain check the index must agree with.
    #[cfg(test)]
    pub(crate) fn holds_in(&self, text: &[u8]) -> bool {
        match self {
            Required::Anything => true,
            Required::Literal(lit) => text.windows(lit.len()).any(|w| w == lit.as_slice()),
            Required::All(parts) => parts.iter().all(|p| p.holds_in(text)),
            Required::Any(parts) => parts.iter().any(|p| p.holds_in(text)),
        }
    }
}

fn of(hir: &Hir) -> Required {
    match hir.kind() {
        HirKind::Empty | HirKind::Class(_) | HirKind::Look(_) => Required::Anything,
        HirKind::Literal(lit) => literal(&lit.0),
        HirKind::Capture(cap) => of(&cap.sub),
        HirKind::Repetition(rep) if rep.min >= 1 => of(&rep.sub),
        HirKind::Repetition(_) => Required::Anything,
        HirKind::Concat(parts) => {
            let mut all = Vec::new();
            let mut run: Vec<u8> = Vec::new();
            for part in parts {
                if let HirKind::Literal(lit) = part.kind() {
                    run.extend_from_slice(&lit.0);
                    continue;
                }
                all.push(literal(&run));
                run.clear();
                all.push(of(part));
            }
            all.push(literal(&run));
            all_of(all)
        }
        HirKind::Alternation(branches) => any_of(branches.iter().map(of).collect()),
    }
}

/// What a literal in the pattern requires of stored bytes: its pieces between escaped characters.
fn literal(bytes: &[u8]) -> Required {
    let pieces = bytes
        .split(|&b| matches!(b, b'\\' | b'\n' | b'\t' | b'\r'))
        .filter(|p| p.len() >= SHORTEST)
        .map(|p| Required::Literal(p.to_vec()))
        .collect();
    all_of(pieces)
}

fn all_of(parts: Vec<Required>) -> Required {
    let mut flat = Vec::new();
    for part in parts {
        match part {
            Required::Anything => {}
            Required::All(inner) => flat.extend(inner),
            other => flat.push(other),
        }
    }
    match flat.len() {
        0 => Required::Anything,
        1 => flat.pop().unwrap_or(Required::Anything),
        _ => Required::All(flat),
    }
}

fn any_of(parts: Vec<Required>) -> Required {
    let mut flat = Vec::new();
    for part in parts {
        match part {
            Required::Anything => return Required::Anything,
            Required::Any(inner) => flat.extend(inner),
            other => flat.push(other),
        }
    }
    match flat.len() {
        0 => Required::Anything,
        1 => flat.pop().unwrap_or(Required::Anything),
        _ => Required::Any(flat),
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    fn lit(s: &str) -> Required {
        Required::Literal(s.as_bytes().to_vec())
    }

    #[test]
    fn literals_a_pattern_requires() {
        use Required::*;
        let cases = [
            ("ECONNRESET", lit("ECONNRESET")),
            ("timeout after [0-9]+ms", lit("timeout after ")),
            (".*ECONNRESET", lit("ECONNRESET")),
            (
                "error: .* timed out",
                All(vec![lit("error: "), lit(" timed out")]),
            ),
            (
                "connection (refused|reset) by peer",
                All(vec![
                    lit("connection "),
                    Any(vec![lit("refused"), lit("reset")]),
                    lit(" by peer"),
                ]),
            ),
            ("ERR[0-9]{4}: disk", All(vec![lit("ERR"), lit(": disk")])),
            ("(abc)+def", All(vec![lit("abc"), lit("def")])),
            ("(abc)?def", lit("def")),
            ("a|bcd", Anything),
            ("[0-9]+", Anything),
            ("(?i)econnreset", Anything),
            ("ab", Anything),
            ("^fatal:", lit("fatal:")),
            ("tab\there", All(vec![lit("tab"), lit("here")])),
            ("back\\\\slash", All(vec![lit("back"), lit("slash")])),
            ("x\\ty", Anything),
            ("", Anything),
            ("ünï", lit("ünï")),
        ];
        for (pattern, want) in cases {
            assert_eq!(Required::of_pattern(pattern), want, "{pattern:?}");
        }
    }

    proptest::proptest! {
        /// A line the pattern matches holds what the pattern requires, in its stored (escaped) form.
        #[test]
        fn a_matching_line_holds_the_required_literals(
            text in r"[abc\\\t\n ]{0,30}",
            parts in proptest::collection::vec(
                proptest::prop_oneof!["[abc]{1,4}", r"[abc\\\t]{1,4}", proptest::strategy::Just("[ab]+".to_string()),
                    proptest::strategy::Just(".*".to_string()), proptest::strategy::Just("(ab|ca)".to_string()),
                    proptest::strategy::Just("(abc)?".to_string())],
                1..5,
            ),
        ) {
            let pattern: String = parts
                .iter()
                .map(|p| if p.contains(['[', '(', '.']) { p.clone() } else { regex::escape(p) })
                .collect();
            let required = Required::of_pattern(&pattern);
            if regex::Regex::new(&pattern).unwrap().is_match(&text) {
                let mut stored = String::new();
                crate::logs::record::encode(1, crate::executor::Stream::Stdout, chrono::Utc::now(), &text, &mut stored);
                proptest::prop_assert!(required.holds_in(stored.as_bytes()), "{:?} in {:?}: {:?}", pattern, text, required);
            }
        }
    }
}
