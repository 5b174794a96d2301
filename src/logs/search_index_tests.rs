//! Tests that a search through the index answers as a scan of every byte does, on random logs and patterns, with
//! part of each log indexed and part just written.
#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use super::LogStore;
use super::search::Pattern;
use crate::executor::{OutputLine, Stream};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

/// Words the random lines and patterns are made of; `\t` and `\` are stored escaped.
const WORDS: [&str; 10] = [
    "alpha",
    "beta",
    "gamma",
    "ECONNRESET",
    "timeout",
    "after",
    "ms",
    "a\tb",
    "back\\slash",
    "42",
];

fn line() -> impl Strategy<Value = String> {
    prop::collection::vec((0..WORDS.len(), 0u32..2000), 0..8).prop_map(|parts| {
        parts
            .iter()
            .map(|(w, n)| {
                if n % 3 == 0 {
                    format!("{}{n}", WORDS[*w])
                } else {
                    WORDS[*w].to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn pattern() -> impl Strategy<Value = String> {
    let word = (0..WORDS.len()).prop_map(|w| regex::escape(WORDS[w]));
    prop_oneof![
        word.clone(),
        word.clone().prop_map(|w| format!("{w} [0-9]+")),
        word.clone().prop_map(|w| format!("{w}[0-9]+ms")),
        (word.clone(), word.clone()).prop_map(|(a, b)| format!("({a}|{b}) after")),
        (word.clone(), word.clone()).prop_map(|(a, b)| format!("{a}.*{b}")),
        word.clone().prop_map(|w| format!("^{w}")),
        word.clone().prop_map(|w| format!("{w}$")),
        word.prop_map(|w| format!("(?i){w}")),
        Just("[0-9]{3}".to_string()),
        Just(r"a\tb".to_string()),
    ]
}

fn write(store: &LogStore, job: &str, lines: &[String]) {
    let mut w = store.writer(job, 1, "step").unwrap();
    for (i, text) in lines.iter().enumerate() {
        w.append(&OutputLine {
            stream: Stream::Stdout,
            at: Utc
                .timestamp_millis_opt(1_780_000_000_000 + i as i64)
                .unwrap(),
            text: text.clone(),
        })
        .unwrap();
    }
    w.sync().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn indexed_search_answers_as_the_scan(
        lines in prop::collection::vec(line(), 3000..4000),
        fresh in prop::collection::vec(line(), 0..50),
        patterns in prop::collection::vec(pattern(), 6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(&dir.path().join("logs"), u64::MAX).unwrap();
        // Two jobs: each indexed when its writer closes (over 64 KiB), then a few lines no index covers yet.
        let (a, b) = lines.split_at(lines.len() / 3);
        write(&store, "job-a", a);
        write(&store, "job-b", b);
        let mut w = store.writer("job-b", 1, "step").unwrap();
        for text in &fresh {
            w.append(&OutputLine { stream: Stream::Stderr, at: Utc::now(), text: text.clone() }).unwrap();
        }
        w.flush().unwrap();
        let log = dir.path().join("logs/job-b/1/step.log");
        if std::fs::metadata(&log).unwrap().len() > 2 * super::index::BLOCK {
            prop_assert!(log.with_extension("log.idx").exists());
        }
        let jobs = ["job-b".to_string(), "job-a".to_string()];
        for p in &patterns {
            let pattern = Pattern::new(p).unwrap();
            let indexed = store.search(&jobs, &pattern, None, 100_000).unwrap();
            let scanned = store.search(&jobs, &pattern.clone().scanning(), None, 100_000).unwrap();
            let key = |h: &super::search::Hit| (h.job.clone(), h.line.number, h.line.text.clone());
            prop_assert_eq!(
                indexed.iter().map(key).collect::<Vec<_>>(),
                scanned.iter().map(key).collect::<Vec<_>>(),
                "pattern {:?}", p
            );
        }
        drop(w);
    }
}
