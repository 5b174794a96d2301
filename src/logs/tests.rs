//! Tests of the log store on a temporary directory.
#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use chrono::TimeZone;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};

use chrono::{DateTime, Utc};

use super::reader::{TAIL_BLOCK, tail_file};
use super::writer::TRUNCATED_PREFIX;
use super::*;
use crate::executor::{OutputLine, Stream};
use crate::redact::Redactor;

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_780_000_000_000 + ms).unwrap()
}

fn out(stream: Stream, ms: i64, text: &str) -> OutputLine {
    OutputLine {
        stream,
        at: at(ms),
        text: text.to_owned(),
    }
}

fn store(cap: u64) -> (tempfile::TempDir, LogStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(&dir.path().join("logs"), cap).unwrap();
    (dir, store)
}

fn texts(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

fn numbers(lines: &[LogLine]) -> Vec<u64> {
    lines.iter().map(|l| l.number).collect()
}

/// Lines come back exactly as written, escapes included, through both `read` and `tail`.
#[test]
fn append_read_tail_round_trip() {
    let (_dir, logs) = store(u64::MAX);
    let written = [
        out(Stream::Stdout, 1, "plain"),
        out(Stream::Stderr, 2, "tab\there"),
        out(Stream::Stdout, 3, "new\nline and \r"),
        out(Stream::Stdout, 4, "back\\slash \\n not a newline"),
        out(Stream::Stderr, 5, ""),
        out(Stream::Stdout, 6, "ünïcödé 🚀"),
    ];
    let mut w = logs.writer("job-1", 1, "build").unwrap();
    for (i, line) in written.iter().enumerate() {
        assert_eq!(w.append(line).unwrap(), Some(i as u64 + 1));
    }
    w.flush().unwrap();

    let expected: Vec<LogLine> = written
        .iter()
        .enumerate()
        .map(|(i, l)| LogLine {
            number: i as u64 + 1,
            stream: l.stream,
            at: l.at,
            text: l.text.clone(),
        })
        .collect();
    assert_eq!(logs.read("job-1", 1, "build", 1, 100).unwrap(), expected);
    assert_eq!(logs.tail("job-1", 1, "build", 100).unwrap(), expected);
    assert_eq!(logs.tail("job-1", 1, "build", 2).unwrap(), expected[4..]);
    assert_eq!(
        logs.read("job-1", 1, "build", 3, 2).unwrap(),
        expected[2..4]
    );
    assert_eq!(logs.read("job-1", 1, "build", 0, 1).unwrap(), expected[..1]);
    assert!(logs.read("job-1", 1, "build", 7, 10).unwrap().is_empty());
    assert!(logs.tail("job-1", 1, "build", 0).unwrap().is_empty());
    assert_eq!(logs.job_bytes("job-1"), logs.total_bytes().unwrap());
}

/// Unflushed lines are not visible; flushed ones are; `sync` also works.
#[test]
fn flush_makes_lines_visible() {
    let (_dir, logs) = store(u64::MAX);
    let mut w = logs.writer("j", 1, "s").unwrap();
    w.append(&out(Stream::Stdout, 0, "one")).unwrap();
    assert!(logs.tail("j", 1, "s", 10).unwrap().is_empty());
    w.sync().unwrap();
    assert_eq!(texts(&logs.tail("j", 1, "s", 10).unwrap()), ["one"]);
}

/// A reopened log continues its numbering; only one writer at a time.
#[test]
fn numbering_continues_after_reopen() {
    let (_dir, logs) = store(u64::MAX);
    let mut w = logs.writer("j", 2, "s").unwrap();
    for i in 0..3 {
        w.append(&out(Stream::Stdout, i, &format!("line {i}")))
            .unwrap();
    }
    let busy = logs.writer("j", 2, "s").unwrap_err();
    assert_eq!(busy.kind(), io::ErrorKind::ResourceBusy);
    drop(w);

    // A fresh store, as after a restart.
    let logs = LogStore::open(&logs.inner.root, u64::MAX).unwrap();
    let mut w = logs.writer("j", 2, "s").unwrap();
    assert_eq!(w.append(&out(Stream::Stdout, 9, "after")).unwrap(), Some(4));
    drop(w);
    assert_eq!(
        numbers(&logs.read("j", 2, "s", 1, 10).unwrap()),
        [1, 2, 3, 4]
    );
}

/// A record cut short by a crash is ignored by readers and removed when the log is reopened.
#[test]
fn torn_last_record() {
    let (_dir, logs) = store(u64::MAX);
    let mut w = logs.writer("j", 1, "s").unwrap();
    w.append(&out(Stream::Stdout, 0, "one")).unwrap();
    w.append(&out(Stream::Stdout, 1, "two")).unwrap();
    drop(w);
    let path = logs.inner.step_path("j", 1, "s").unwrap();
    let good_len = std::fs::metadata(&path).unwrap().len();
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(b"3\t2026-05-28T00:00:00.000Z\to\thalf a li")
        .unwrap();
    drop(file);

    assert_eq!(
        texts(&logs.read("j", 1, "s", 1, 10).unwrap()),
        ["one", "two"]
    );
    assert_eq!(texts(&logs.tail("j", 1, "s", 10).unwrap()), ["one", "two"]);
    assert_eq!(texts(&logs.tail("j", 1, "s", 1).unwrap()), ["two"]);

    // The job's size counts complete records only, also when computed from disk.
    assert_eq!(logs.job_bytes("j"), good_len);
    let reopened = LogStore::open(&logs.inner.root, u64::MAX).unwrap();
    assert_eq!(reopened.job_bytes("j"), good_len);
    let mut w = logs.writer("j", 1, "s").unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    assert_eq!(logs.job_bytes("j"), good_len);
    assert_eq!(w.append(&out(Stream::Stdout, 2, "three")).unwrap(), Some(3));
    drop(w);
    assert_eq!(
        texts(&logs.read("j", 1, "s", 1, 10).unwrap()),
        ["one", "two", "three"]
    );
}

/// A torn record that is the whole file leaves an empty log numbered from 1.
#[test]
fn torn_first_record() {
    let (_dir, logs) = store(u64::MAX);
    drop(logs.writer("j", 1, "s").unwrap());
    let path = logs.inner.step_path("j", 1, "s").unwrap();
    std::fs::write(&path, b"1\t2026-05-28T00:0").unwrap();
    assert!(logs.tail("j", 1, "s", 5).unwrap().is_empty());
    let mut w = logs.writer("j", 1, "s").unwrap();
    assert_eq!(w.append(&out(Stream::Stdout, 0, "first")).unwrap(), Some(1));
}

/// Past the job's cap, each step's log gets one marker line and drops the rest, also after a reopen.
#[test]
fn cap_writes_a_single_marker() {
    let (_dir, logs) = store(200);
    let mut w = logs.writer("j", 1, "a").unwrap();
    let mut kept = 0;
    let mut refused = 0;
    for i in 0..20 {
        match w.append(&out(Stream::Stdout, i, "0123456789")).unwrap() {
            Some(n) => {
                assert_eq!(refused, 0, "a line was kept after the cap");
                assert_eq!(n, kept + 1);
                kept += 1;
            }
            None => refused += 1,
        }
    }
    assert!(kept > 0 && refused > 0);
    drop(w);
    let lines = logs.read("j", 1, "a", 1, 100).unwrap();
    assert_eq!(lines.len() as u64, kept + 1);
    let markers: Vec<&LogLine> = lines
        .iter()
        .filter(|l| l.text.starts_with(TRUNCATED_PREFIX))
        .collect();
    assert_eq!(markers.len(), 1);
    assert_eq!(
        markers[0].text,
        "[boomerang] log truncated: the job's log reached 200 bytes"
    );
    assert_eq!(markers[0].number, kept + 1);

    // The cap is per job: another step of the job is refused too, with its own single marker.
    let mut other = logs.writer("j", 2, "b").unwrap();
    assert_eq!(other.append(&out(Stream::Stdout, 0, "x")).unwrap(), None);
    assert_eq!(other.append(&out(Stream::Stdout, 0, "y")).unwrap(), None);
    drop(other);
    assert_eq!(logs.read("j", 2, "b", 1, 10).unwrap().len(), 1);

    // After a restart the truncated log stays truncated, without a second marker.
    let logs = LogStore::open(&logs.inner.root, 200).unwrap();
    let mut w = logs.writer("j", 1, "a").unwrap();
    assert_eq!(w.append(&out(Stream::Stdout, 0, "late")).unwrap(), None);
    drop(w);
    assert_eq!(logs.read("j", 1, "a", 1, 100).unwrap(), lines);

    // Another job is not affected.
    let mut w = logs.writer("k", 1, "a").unwrap();
    assert_eq!(w.append(&out(Stream::Stdout, 0, "fine")).unwrap(), Some(1));
}

/// Tail and read work on files much larger than the blocks they read.
#[test]
fn large_files() {
    let (_dir, logs) = store(u64::MAX);
    let mut w = logs.writer("j", 1, "big").unwrap();
    let count = 5000u64;
    for i in 1..=count {
        let text = format!("line {i:05} {}", "x".repeat((i % 37) as usize));
        assert_eq!(
            w.append(&out(Stream::Stdout, i as i64, &text)).unwrap(),
            Some(i)
        );
    }
    drop(w);
    let path = logs.inner.step_path("j", 1, "big").unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(
        size > 2 * TAIL_BLOCK as u64,
        "file of {size} bytes is too small for the test"
    );

    let tail = logs.tail("j", 1, "big", 10).unwrap();
    assert_eq!(numbers(&tail), (count - 9..=count).collect::<Vec<_>>());
    let all = logs.tail("j", 1, "big", 1_000_000).unwrap();
    assert_eq!(all.len() as u64, count);

    // Tiny blocks exercise records spanning block boundaries.
    let file = File::open(&path).unwrap();
    for (n, block) in [(1, 7), (3, 16), (250, 100), (5000, 4096)] {
        let got = tail_file(&file, n, block).unwrap();
        assert_eq!(got, all[all.len() - n..], "tail {n} with block {block}");
    }

    for from in [1, 2, 1234, 2500, 4999, 5000] {
        let got = logs.read("j", 1, "big", from, 3).unwrap();
        let want: Vec<u64> = (from..=count).take(3).collect();
        assert_eq!(numbers(&got), want, "read from {from}");
        assert_eq!(got[0], all[(from - 1) as usize]);
    }
    assert!(logs.read("j", 1, "big", count + 1, 3).unwrap().is_empty());
}

/// Ids that could escape the root are refused everywhere, before touching the disk.
#[test]
fn path_traversal_is_rejected() {
    let (dir, logs) = store(u64::MAX);
    let bad = [
        "",
        ".",
        "..",
        "../x",
        "a/b",
        "/etc",
        "a\\b",
        "a\0b",
        "x..y",
        &"a".repeat(201),
    ];
    for id in bad {
        let is_invalid = |e: io::Error| {
            e.kind() == io::ErrorKind::InvalidInput
                && e.get_ref().is_some_and(|inner| inner.is::<InvalidId>())
        };
        assert!(
            is_invalid(logs.writer(id, 1, "s").unwrap_err()),
            "job {id:?}"
        );
        assert!(
            is_invalid(logs.writer("j", 1, id).unwrap_err()),
            "step {id:?}"
        );
        assert!(
            is_invalid(logs.tail(id, 1, "s", 1).unwrap_err()),
            "tail {id:?}"
        );
        assert!(
            is_invalid(logs.read("j", 1, id, 1, 1).unwrap_err()),
            "read {id:?}"
        );
        assert!(is_invalid(logs.steps(id).unwrap_err()), "steps {id:?}");
        assert!(
            is_invalid(logs.delete_job(id).unwrap_err()),
            "delete {id:?}"
        );
        assert_eq!(logs.job_bytes(id), 0);
    }
    // Nothing was created outside (or inside) the root.
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(logs.total_bytes().unwrap(), 0);
}

/// Listing, sizes and deletion of a job's logs.
#[test]
fn steps_sizes_and_delete() {
    let (_dir, logs) = store(u64::MAX);
    assert!(logs.steps("j").unwrap().is_empty());
    for (attempt, step) in [(2, "test"), (1, "build"), (1, "test")] {
        let mut w = logs.writer("j", attempt, step).unwrap();
        w.append(&out(Stream::Stdout, 0, step)).unwrap();
    }
    let mut w = logs.writer("other", 1, "x").unwrap();
    w.append(&out(Stream::Stdout, 0, "x")).unwrap();
    drop(w);
    assert_eq!(
        logs.steps("j").unwrap(),
        [
            (1, "build".to_owned()),
            (1, "test".to_owned()),
            (2, "test".to_owned())
        ]
    );
    let j = logs.job_bytes("j");
    let other = logs.job_bytes("other");
    assert!(j > 0 && other > 0);
    assert_eq!(logs.total_bytes().unwrap(), j + other);
    // A fresh store computes the same sizes from disk.
    let reopened = LogStore::open(&logs.inner.root, u64::MAX).unwrap();
    assert_eq!(reopened.job_bytes("j"), j);

    let w = logs.writer("j", 3, "running").unwrap();
    assert_eq!(
        logs.delete_job("j").unwrap_err().kind(),
        io::ErrorKind::ResourceBusy
    );
    drop(w);
    logs.delete_job("j").unwrap();
    logs.delete_job("j").unwrap();
    assert!(logs.steps("j").unwrap().is_empty());
    assert_eq!(logs.job_bytes("j"), 0);
    assert_eq!(logs.total_bytes().unwrap(), other);
    assert_eq!(
        logs.tail("j", 1, "build", 1).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

#[test]
fn log_line_serde() {
    let line = LogLine {
        number: 3,
        stream: Stream::Stdout,
        at: at(0),
        text: "hi".to_owned(),
    };
    let json = serde_json::to_value(&line).unwrap();
    assert_eq!(json["stream"], "stdout");
    assert_eq!(serde_json::from_value::<LogLine>(json).unwrap(), line);
}

/// Live subscribers get each appended line, redacted, with its attempt, step and number.
#[test]
fn subscribers_receive_redacted_lines() {
    let dir = tempfile::tempdir().unwrap();
    let redactor = Redactor::new(8);
    redactor.add("very-secret-value");
    let logs = LogStore::open_redacted(&dir.path().join("logs"), u64::MAX, redactor).unwrap();
    let mut rx = logs.subscribe("job-1");
    let mut w = logs.writer("job-1", 2, "deploy").unwrap();
    w.append(&out(Stream::Stdout, 0, "key=very-secret-value"))
        .unwrap();
    // A line is published when it is written: at the end of its batch at the latest.
    w.flush().unwrap();
    let got = rx.try_recv().unwrap();
    assert_eq!((got.attempt, got.step.as_str()), (2, "deploy"));
    assert_eq!(got.line.number, 1);
    assert_eq!(got.line.text, "key=***");
    assert_eq!(
        texts(&logs.tail("job-1", 2, "deploy", 1).unwrap()),
        ["key=***"]
    );
}

/// A line reaches live subscribers only once it is in the file: a subscriber that lags and re-reads the file finds
/// every line it missed, in one long batch as in short ones.
#[test]
fn a_published_line_is_already_readable() {
    let dir = tempfile::tempdir().unwrap();
    let logs = LogStore::open(&dir.path().join("logs"), u64::MAX).unwrap();
    let mut rx = logs.subscribe("job-1");
    let mut w = logs.writer("job-1", 1, "s").unwrap();
    let lines = super::store::LIVE_BUFFER as u64 + 3000;
    let (mut received, mut lagged) = (0, false);
    let mut check = |rx: &mut LiveSubscription| loop {
        match rx.try_recv() {
            Ok(l) => {
                // The file is appended in order: each line received is checked, the earlier ones with it.
                let stored = logs.read("job-1", 1, "s", l.line.number, 1).unwrap();
                assert_eq!(
                    stored.first().map(|s| s.number),
                    Some(l.line.number),
                    "a line was published before it was in the file"
                );
                received += 1;
            }
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
            Err(_) => return,
        }
    };
    // One batch far longer than the live channel holds: the subscriber lags within it.
    for i in 0..lines {
        w.append(&out(
            Stream::Stdout,
            0,
            &format!("line {i} of a long batch"),
        ))
        .unwrap();
        if i == lines - 1000 {
            check(&mut rx);
        }
    }
    w.flush().unwrap();
    check(&mut rx);
    assert!(lagged, "the subscriber never lagged");
    assert!(received > 0);
    assert_eq!(
        logs.read("job-1", 1, "s", 1, usize::MAX).unwrap().len() as u64,
        lines
    );
}

/// A secret split across two lines (as the 16 KiB cut or base64 wrapping leaves it) is masked in both lines,
/// whether both lines arrive in one batch or the first one ends a batch; a job's secret masks that job's lines
/// only; the cap still counts what is stored.
#[test]
fn secrets_across_line_joins_and_per_job() {
    let dir = tempfile::tempdir().unwrap();
    let redactor = Redactor::new(8);
    redactor.add("server-secret-1");
    let logs = LogStore::open_redacted(&dir.path().join("logs"), u64::MAX, redactor).unwrap();
    logs.redactors()
        .set_job("job-1", &["completed-token".to_string()]);
    let mut w = logs.writer("job-1", 1, "s").unwrap();
    w.append(&out(Stream::Stdout, 0, "xxxx completed-t"))
        .unwrap();
    w.append(&out(Stream::Stdout, 1, "oken yyyy")).unwrap();
    w.append(&out(Stream::Stdout, 2, "aaa server-se")).unwrap();
    w.flush().unwrap();
    w.append(&out(Stream::Stdout, 3, "cret-1 bbb")).unwrap();
    // base64 of the job's secret wrapped at 8 columns.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode("completed-token");
    for chunk in b64.as_bytes().chunks(8) {
        w.append(&out(Stream::Stdout, 4, std::str::from_utf8(chunk).unwrap()))
            .unwrap();
    }
    w.sync().unwrap();
    drop(w);
    let stored = logs.tail("job-1", 1, "s", 100).unwrap();
    let lines = texts(&stored);
    assert_eq!(lines[..4], ["xxxx ***", "*** yyyy", "aaa ***", "*** bbb"]);
    assert!(lines[4..].iter().all(|l| *l == "***"), "{lines:?}");
    assert_eq!(
        logs.job_bytes("job-1"),
        logs.total_bytes().unwrap(),
        "the cap counts the stored records"
    );
    // Another job: the first job's secret is nobody else's.
    let mut w = logs.writer("job-2", 1, "s").unwrap();
    w.append(&out(
        Stream::Stdout,
        0,
        "status completed-token server-secret-1",
    ))
    .unwrap();
    w.sync().unwrap();
    drop(w);
    assert_eq!(
        texts(&logs.tail("job-2", 1, "s", 1).unwrap()),
        ["status completed-token ***"]
    );
}

/// Retention deletes jobs whose logs were last written before the cutoff, keeps newer ones and ones being
/// written, and the store's size drops accordingly.
#[test]
fn purge_older_than_cutoff() {
    let (_dir, logs) = store(u64::MAX);
    for job in ["old", "new", "busy"] {
        let mut w = logs.writer(job, 1, "s").unwrap();
        w.append(&out(Stream::Stdout, 0, "line")).unwrap();
    }
    let _busy = logs.writer("busy", 1, "t").unwrap();
    let month_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(31 * 24 * 3600);
    for job in ["old", "busy"] {
        let f = File::options()
            .write(true)
            .open(logs.root().join(job).join("1").join("s.log"))
            .unwrap();
        f.set_modified(month_ago).unwrap();
    }
    std::fs::File::options()
        .write(true)
        .open(logs.root().join("busy").join("1").join("t.log"))
        .unwrap()
        .set_modified(month_ago)
        .unwrap();
    let before = logs.total_bytes().unwrap();
    let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 24 * 3600);
    assert_eq!(logs.purge_older_than(cutoff).unwrap(), ["old"]);
    assert!(logs.total_bytes().unwrap() < before);
    assert_eq!(logs.steps("old").unwrap(), []);
    assert_eq!(logs.steps("new").unwrap().len(), 1);
    assert_eq!(logs.steps("busy").unwrap().len(), 2);
}

/// Search finds lines by regex in text only (not in the number or time fields), anchored or not, newest
/// first across jobs, within the limit and the `since` bound.
#[test]
fn search_table() {
    use super::search::{Keep, Pattern};
    let (_dir, logs) = store(u64::MAX);
    for (job, base) in [("j1", 0), ("j2", 1000)] {
        let mut w = logs.writer(job, 1, "s").unwrap();
        for (i, t) in ["error: one", "fine 2026", "ERROR two", "tab\there error"]
            .iter()
            .enumerate()
        {
            w.append(&out(Stream::Stdout, base + i as i64, t)).unwrap();
        }
    }
    let jobs = ["j2".to_string(), "j1".to_string()];
    type Case<'a> = (&'a str, usize, Vec<(&'a str, u64)>);
    let cases: &[Case<'_>] = &[
        (
            "error",
            10,
            vec![("j2", 4), ("j2", 1), ("j1", 4), ("j1", 1)],
        ),
        (
            "(?i)^error",
            10,
            vec![("j2", 3), ("j2", 1), ("j1", 3), ("j1", 1)],
        ),
        ("T0", 10, vec![]),
        ("2026", 10, vec![("j2", 2), ("j1", 2)]),
        ("error", 1, vec![("j2", 4)]),
    ];
    for (q, limit, expected) in cases {
        let p = Pattern::new(q).unwrap();
        let got: Vec<(String, u64)> = logs
            .search(&jobs, &p, None, *limit)
            .unwrap()
            .into_iter()
            .map(|h| (h.job, h.line.number))
            .collect();
        let expected: Vec<(String, u64)> =
            expected.iter().map(|(j, n)| (j.to_string(), *n)).collect();
        assert_eq!(got, expected, "{q}");
    }
    let p = Pattern::new("error").unwrap();
    let recent = logs.search(&jobs, &p, Some(at(500)), 10).unwrap();
    assert!(
        recent.iter().all(|h| h.job == "j2"),
        "since keeps only j2's lines"
    );
    let first = logs.grep_job("j1", &p, None, 1, Keep::First).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].line.number, 1);
    assert!(Pattern::new("(unclosed").is_err());
}

/// A job's live channel lives while a writer of the job is open or a viewer receives from it, and goes with the
/// last of them: a viewer of an ended job (no writer will ever close it) leaves nothing behind, and a viewer that
/// subscribes again before its old subscription goes keeps the channel.
#[test]
fn a_jobs_live_channel_goes_with_its_last_writer_or_viewer() {
    let dir = tempfile::tempdir().unwrap();
    let logs = LogStore::open(&dir.path().join("logs"), u64::MAX).unwrap();
    let channels = |logs: &LogStore| {
        let mut jobs: Vec<String> = logs.inner.state().live.keys().cloned().collect();
        jobs.sort();
        jobs
    };
    {
        let mut w = logs.writer("ended", 1, "s").unwrap();
        w.append(&out(Stream::Stdout, 0, "done")).unwrap();
    }
    assert!(channels(&logs).is_empty(), "a writer nobody watched");
    let viewer = logs.subscribe("ended");
    assert_eq!(channels(&logs), ["ended"]);
    drop(viewer);
    assert!(channels(&logs).is_empty(), "the ended job's viewer went");

    let w = logs.writer("running", 1, "s").unwrap();
    let first = logs.subscribe("running");
    let second = logs.subscribe("running");
    drop(first);
    drop(w);
    assert_eq!(channels(&logs), ["running"], "a viewer still receives");
    // Subscribed again before the old subscription goes: the channel is kept.
    let mut again = logs.subscribe("running");
    drop(second);
    assert_eq!(channels(&logs), ["running"]);
    let mut w = logs.writer("running", 1, "t").unwrap();
    w.append(&out(Stream::Stdout, 0, "live")).unwrap();
    w.flush().unwrap();
    assert_eq!(again.try_recv().unwrap().line.text, "live");
    drop(w);
    drop(again);
    assert!(channels(&logs).is_empty(), "the last viewer went");
}

/// Two viewers leaving at once, or a viewer leaving while the last writer closes, still leave no channel behind:
/// whichever goes last counts nobody left.
#[test]
fn viewers_and_writers_that_leave_at_once_leave_no_channel_behind() {
    let dir = tempfile::tempdir().unwrap();
    let logs = LogStore::open(&dir.path().join("logs"), u64::MAX).unwrap();
    for round in 0..500 {
        let job = format!("job-{round}");
        let a = logs.subscribe(&job);
        let writer_or_viewer: Box<dyn Send> = if round % 2 == 0 {
            Box::new(logs.subscribe(&job))
        } else {
            Box::new(logs.writer(&job, 1, "s").unwrap())
        };
        let both = std::sync::Arc::new(std::sync::Barrier::new(2));
        let other = {
            let both = both.clone();
            std::thread::spawn(move || {
                both.wait();
                drop(writer_or_viewer);
            })
        };
        both.wait();
        drop(a);
        other.join().unwrap();
        assert!(
            logs.inner.state().live.is_empty(),
            "round {round}: a channel was left behind"
        );
    }
}
