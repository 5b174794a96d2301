//! Purpose: the default branch's config is read at every trigger and rarely changes, while parsing and checking it
//! costs about half a millisecond per 20-step job (`boomerang bench config`), more than the rest of a comment's
//! own work. [`parse_remembered`] keeps the results of the last [`MEMO_ENTRIES`] texts parsed, keyed by the whole
//! text (a hash finds the entry, the text itself confirms it), so an unchanged config is parsed once. Parsing is a
//! pure function of the text, so a remembered result is the result. Bounded: texts over [`MEMO_MAX_TEXT`] are
//! parsed every time, and the oldest entry goes first.

use super::{ConfigErrors, RepoConfig};
use crate::bounded_map::BoundedMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, OnceLock};

/// Texts remembered at most.
pub(super) const MEMO_ENTRIES: usize = 64;
/// A longer text is not remembered (it is parsed every time).
pub(super) const MEMO_MAX_TEXT: usize = 64 * 1024;

type Parsed = Result<RepoConfig, ConfigErrors>;

/// The remembered texts and their results, by the text's hash.
type Memo = BoundedMap<u64, (String, Parsed)>;

fn memo() -> &'static Mutex<Memo> {
    static MEMO: OnceLock<Mutex<Memo>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(BoundedMap::new(MEMO_ENTRIES)))
}

fn hash_of(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// [`super::parse`], remembered: the same text answers the same result without being parsed again.
pub fn parse_remembered(text: &str) -> Parsed {
    if text.len() > MEMO_MAX_TEXT {
        return super::parse(text);
    }
    let key = hash_of(text);
    {
        let memo = memo().lock().unwrap_or_else(|e| e.into_inner());
        if let Some((kept, parsed)) = memo.get(&key)
            && kept == text
        {
            return parsed.clone();
        }
    }
    // Parsed outside the lock: another trigger's config is not held up by this one.
    let parsed = super::parse(text);
    memo()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, (text.to_string(), parsed.clone()));
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(step: &str) -> String {
        format!("jobs:\n  build:\n    steps:\n      - id: {step}\n        run: make\n")
    }

    /// A remembered text answers what parsing it answers, valid or not; another text answers its own result.
    #[test]
    fn a_remembered_text_answers_its_own_parse() {
        for text in [
            config("memo-one"),
            config("memo-two"),
            "jobs: [".to_string(),
        ] {
            assert_eq!(parse_remembered(&text), super::super::parse(&text));
            assert_eq!(parse_remembered(&text), super::super::parse(&text));
        }
        let one = parse_remembered(&config("memo-one")).expect("valid");
        let two = parse_remembered(&config("memo-two")).expect("valid");
        assert_ne!(one, two);
    }

    /// The memo keeps at most MEMO_ENTRIES texts, and a text pushed out is parsed again, to the same result.
    #[test]
    fn the_memo_is_bounded() {
        let first = config("bounded-0");
        let expected = super::super::parse(&first);
        for i in 0..MEMO_ENTRIES + 8 {
            let _ = parse_remembered(&config(&format!("bounded-{i}")));
        }
        assert!(memo().lock().unwrap_or_else(|e| e.into_inner()).len() <= MEMO_ENTRIES);
        assert_eq!(parse_remembered(&first), expected);
    }
}
