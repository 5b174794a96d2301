//! Purpose: the trigram index kept beside each step log (`<step>.log.idx`), so a cross-job search reads only the
//! blocks of a log that can hold a match instead of every byte.
//!
//! A log's complete records are cut into blocks of about [`BLOCK`] bytes (a block ends at a record's end) and blocks
//! are grouped into segments of at most [`SEGMENT`] bytes. For each segment the index keeps its block boundaries and,
//! for every three-byte sequence (trigram) of its bytes, the set of blocks holding it (a bitmap). A search turns its
//! pattern into required literals ([`Required`]); a block is a candidate when it holds every trigram of a required
//! literal; only candidates, and the part of the log after the last segment, are scanned, and every hit is checked
//! against the log text as before. A block the index wrongly calls a candidate costs a scan, never a wrong answer.
//!
//! The file: a header (magic, [`VERSION`]), then segments, each with a header (the log byte range it covers, block
//! and trigram counts, a CRC-32 of its body, a CRC-32 of the log's last bytes in its range, a CRC-32 of the header)
//! and a body (block ends, sorted trigrams, bitmaps). A reader uses the segments from the start that are whole,
//! checksummed, contiguous and match the log's bytes, and scans the rest of the log: a missing, torn, corrupt, older
//! version or foreign index only costs time. Segments are appended under an exclusive lock on the index file (by the
//! log's writer as the log grows and when it closes, or by a search finding much of a log unindexed), after cutting
//! off anything invalid; the index is derived data, so it is not fsynced: a crash costs a rebuild, never a line.

use super::reader::complete_len;
use super::required::Required;
use rustc_hash::FxHashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Target size of a block, the unit a search reads.
pub(crate) const BLOCK: u64 = 64 * 1024;
/// Largest log range one segment covers (bounds the memory to build or read one).
pub(crate) const SEGMENT: u64 = 16 * 1024 * 1024;
/// Format version; an index of another version is rebuilt.
pub(crate) const VERSION: u32 = 1;

const MAGIC: &[u8; 8] = b"BLOGIDX\n";
const FILE_HEADER: usize = 12;
const SEGMENT_HEADER: usize = 44;
/// Log bytes at the end of a segment's range whose checksum ties the segment to the log.
const TAIL_CHECK: u64 = 256;
/// Most blocks in a segment: every block but the last is at least `BLOCK` long.
const MAX_BLOCKS: usize = (SEGMENT / BLOCK) as usize;
/// Bitmap words for `MAX_BLOCKS` blocks.
const WORDS: usize = MAX_BLOCKS.div_ceil(64);
/// Number of possible trigrams.
const TRIGRAMS: usize = 1 << 24;

/// The index file of the log at `log`.
pub(crate) fn index_path(log: &Path) -> PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_os_string();
    name.push(".idx");
    log.with_file_name(name)
}

/// What a search reads of one log: the byte ranges that may hold a match, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Ranges to scan, record-aligned, in order.
    pub(crate) ranges: Vec<Range<u64>>,
    /// Bytes from the start of the log the index covers.
    pub(crate) covered: u64,
}

/// The ranges of `log` (complete up to `end`) that may hold a line meeting `required`, from its index at `idx`.
pub(crate) fn plan(log: &File, idx: &Path, required: &Required, end: u64) -> io::Result<Plan> {
    let mut ranges = Vec::new();
    let mut covered = 0;
    if !required.is_anything() {
        let index = match File::open(idx) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(path = %idx.display(), error = %e, "a log index cannot be opened; scanning");
                None
            }
        };
        if let Some(index) = index {
            covered = each_segment(&index, log, end, |segment| {
                segment.candidates(required, &mut ranges);
            })
            .1;
        }
    }
    push_range(&mut ranges, covered..end);
    Ok(Plan { ranges, covered })
}

/// Brings the index of the log at `log_path` up to the log's complete part when at least `min_new` bytes of it are
/// not indexed; returns the bytes covered, or `None` when `wait` is false and another process or thread is extending
/// it.
pub(crate) fn extend(log_path: &Path, min_new: u64, wait: bool) -> io::Result<Option<u64>> {
    let log = File::open(log_path)?;
    let idx = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(index_path(log_path))?;
    if wait {
        idx.lock()?;
    } else if idx.try_lock().is_err() {
        return Ok(None);
    }
    let end = complete_len(&log, log.metadata()?.len(), 4096)?;
    let (mut valid_len, covered) = each_segment(&idx, &log, end, |_| {});
    if end.saturating_sub(covered) < min_new {
        return Ok(Some(covered));
    }
    if valid_len < FILE_HEADER as u64 {
        let mut header = Vec::with_capacity(FILE_HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        idx.set_len(0)?;
        idx.write_all_at(&header, 0)?;
        valid_len = FILE_HEADER as u64;
    } else {
        idx.set_len(valid_len)?;
    }
    let mut builder = Builder::new();
    let mut at = covered;
    while at < end {
        let Some((bytes, stop)) = read_segment_range(&log, at, end)? else {
            break;
        };
        let segment = builder.segment(&bytes, at);
        idx.write_all_at(&segment, valid_len)?;
        valid_len += segment.len() as u64;
        at = stop;
    }
    Ok(Some(at))
}

/// The log bytes of the next segment from `start` (at most `SEGMENT`, ending at a record's end) and where they stop.
fn read_segment_range(log: &File, start: u64, end: u64) -> io::Result<Option<(Vec<u8>, u64)>> {
    let len = (end - start).min(SEGMENT);
    let size = usize::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "segment too large"))?;
    let mut bytes = vec![0u8; size];
    log.read_exact_at(&mut bytes, start)?;
    if start + len < end {
        match bytes.iter().rposition(|&b| b == b'\n') {
            Some(i) => bytes.truncate(i + 1),
            // One record longer than a segment: leave it and the rest to the scan.
            None => return Ok(None),
        }
    }
    let stop = start + bytes.len() as u64;
    Ok(Some((bytes, stop)))
}

/// Calls `visit` on each usable segment of `index` in order; returns the index bytes they span (with the file
/// header; 0 when the header itself is unusable) and the log bytes they cover.
fn each_segment(
    index: &File,
    log: &File,
    log_end: u64,
    mut visit: impl FnMut(&Segment),
) -> (u64, u64) {
    let mut header = [0u8; FILE_HEADER];
    if index.read_exact_at(&mut header, 0).is_err()
        || &header[..8] != MAGIC
        || header[8..] != VERSION.to_le_bytes()
    {
        return (0, 0);
    }
    let mut pos = FILE_HEADER as u64;
    let mut covered = 0;
    while let Some(segment) = Segment::read(index, pos, log, covered, log_end) {
        visit(&segment);
        covered = segment.end;
        pos += (SEGMENT_HEADER + segment.body.len()) as u64;
    }
    (pos, covered)
}

/// One segment read from an index file and checked.
struct Segment {
    start: u64,
    end: u64,
    blocks: usize,
    keys: usize,
    words: usize,
    body: Vec<u8>,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn body_len(blocks: usize, keys: usize) -> usize {
    blocks * 8 + keys * 4 + keys * blocks.div_ceil(64) * 8
}

impl Segment {
    /// The segment at `pos`, if it is whole, checksummed, starts at `start` and matches the log's bytes.
    fn read(index: &File, pos: u64, log: &File, start: u64, log_end: u64) -> Option<Segment> {
        let mut header = [0u8; SEGMENT_HEADER];
        index.read_exact_at(&mut header, pos).ok()?;
        if crc32fast::hash(&header[..40]) != u32_at(&header, 40)? {
            return None;
        }
        let seg_start = u64_at(&header, 0)?;
        let end = u64_at(&header, 8)?;
        let blocks = usize::try_from(u32_at(&header, 16)?).ok()?;
        let keys = usize::try_from(u32_at(&header, 20)?).ok()?;
        let len = usize::try_from(u64_at(&header, 24)?).ok()?;
        if seg_start != start
            || end <= start
            || end > log_end
            || end - start > SEGMENT
            || blocks == 0
            || blocks > MAX_BLOCKS
            || keys > TRIGRAMS
            || len != body_len(blocks, keys)
        {
            return None;
        }
        let mut body = vec![0u8; len];
        index
            .read_exact_at(&mut body, pos + SEGMENT_HEADER as u64)
            .ok()?;
        if crc32fast::hash(&body) != u32_at(&header, 32)? {
            return None;
        }
        let check_from = end - (end - start).min(TAIL_CHECK);
        let mut tail = vec![0u8; usize::try_from(end - check_from).ok()?];
        log.read_exact_at(&mut tail, check_from).ok()?;
        if crc32fast::hash(&tail) != u32_at(&header, 36)? {
            return None;
        }
        let segment = Segment {
            start,
            end,
            blocks,
            keys,
            words: blocks.div_ceil(64),
            body,
        };
        // Block ends rise strictly and the last is the segment's end.
        let mut prev = start;
        for i in 0..blocks {
            let e = segment.block_end(i)?;
            if e <= prev {
                return None;
            }
            prev = e;
        }
        (prev == end).then_some(segment)
    }

    fn block_end(&self, i: usize) -> Option<u64> {
        u64_at(&self.body, i * 8)
    }

    fn key(&self, i: usize) -> Option<u32> {
        u32_at(&self.body, self.blocks * 8 + i * 4)
    }

    /// The blocks holding `trigram`.
    fn blocks_with(&self, trigram: u32) -> [u64; WORDS] {
        let mut out = [0u64; WORDS];
        let (mut lo, mut hi) = (0, self.keys);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let Some(key) = self.key(mid) else { break };
            if key < trigram {
                lo = mid + 1;
            } else if key > trigram {
                hi = mid;
            } else {
                let base = self.blocks * 8 + self.keys * 4 + mid * self.words * 8;
                for (w, slot) in out.iter_mut().enumerate().take(self.words) {
                    *slot = u64_at(&self.body, base + w * 8).unwrap_or(0);
                }
                return out;
            }
        }
        out
    }

    fn all_blocks(&self) -> [u64; WORDS] {
        let mut out = [0u64; WORDS];
        for (w, slot) in out.iter_mut().enumerate() {
            let from = w * 64;
            *slot = match self.blocks.saturating_sub(from) {
                0 => 0,
                n if n >= 64 => u64::MAX,
                n => (1u64 << n) - 1,
            };
        }
        out
    }

    /// The blocks that may hold a line meeting `required`.
    fn matching(&self, required: &Required) -> [u64; WORDS] {
        match required {
            Required::Anything => self.all_blocks(),
            Required::Literal(lit) => {
                let mut out = self.all_blocks();
                for w in lit.windows(3) {
                    let with = self.blocks_with(trigram(w[0], w[1], w[2]));
                    for (o, b) in out.iter_mut().zip(with) {
                        *o &= b;
                    }
                    if out.iter().all(|&o| o == 0) {
                        break;
                    }
                }
                out
            }
            Required::All(parts) => {
                let mut out = self.all_blocks();
                for part in parts {
                    for (o, b) in out.iter_mut().zip(self.matching(part)) {
                        *o &= b;
                    }
                }
                out
            }
            Required::Any(parts) => {
                let mut out = [0u64; WORDS];
                for part in parts {
                    for (o, b) in out.iter_mut().zip(self.matching(part)) {
                        *o |= b;
                    }
                }
                out
            }
        }
    }

    /// Appends the byte ranges of the candidate blocks for `required` to `ranges`.
    fn candidates(&self, required: &Required, ranges: &mut Vec<Range<u64>>) {
        let hits = self.matching(required);
        let mut from = self.start;
        for i in 0..self.blocks {
            let to = self.block_end(i).unwrap_or(self.end);
            if hits[i / 64] & (1 << (i % 64)) != 0 {
                push_range(ranges, from..to);
            }
            from = to;
        }
    }
}

/// Appends `range` to `ranges`, joined to the last one when they touch; empty ranges are dropped.
fn push_range(ranges: &mut Vec<Range<u64>>, range: Range<u64>) {
    if range.is_empty() {
        return;
    }
    match ranges.last_mut() {
        Some(last) if last.end == range.start => last.end = range.end,
        _ => ranges.push(range),
    }
}

fn trigram(a: u8, b: u8, c: u8) -> u32 {
    (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c)
}

/// Scratch space to build segments: which trigrams one block holds, and each trigram's blocks in the segment.
struct Builder {
    seen: Vec<u64>,
    distinct: Vec<u32>,
    blocks_of: FxHashMap<u32, [u64; WORDS]>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            seen: vec![0; TRIGRAMS / 64],
            distinct: Vec::new(),
            blocks_of: FxHashMap::default(),
        }
    }

    /// The encoded segment for `bytes` (whole records, at most `SEGMENT` long) found at `start` in the log.
    fn segment(&mut self, bytes: &[u8], start: u64) -> Vec<u8> {
        self.blocks_of.clear();
        let mut ends = Vec::new();
        let mut from = 0usize;
        while from < bytes.len() && ends.len() < MAX_BLOCKS {
            let target = (from + BLOCK as usize).min(bytes.len());
            let to = if ends.len() + 1 == MAX_BLOCKS || target == bytes.len() {
                bytes.len()
            } else {
                bytes[target - 1..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |i| target + i)
            };
            self.add_block(&bytes[from..to], ends.len());
            ends.push(start + to as u64);
            from = to;
        }
        let mut keys: Vec<u32> = self.blocks_of.keys().copied().collect();
        keys.sort_unstable();
        let words = ends.len().div_ceil(64);
        let mut body = Vec::with_capacity(body_len(ends.len(), keys.len()));
        for e in &ends {
            body.extend_from_slice(&e.to_le_bytes());
        }
        for k in &keys {
            body.extend_from_slice(&k.to_le_bytes());
        }
        for k in &keys {
            if let Some(bits) = self.blocks_of.get(k) {
                for w in &bits[..words] {
                    body.extend_from_slice(&w.to_le_bytes());
                }
            }
        }
        let end = start + bytes.len() as u64;
        let tail = &bytes[bytes.len() - (bytes.len() as u64).min(TAIL_CHECK) as usize..];
        let mut out = Vec::with_capacity(SEGMENT_HEADER + body.len());
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&end.to_le_bytes());
        out.extend_from_slice(&(ends.len() as u32).to_le_bytes());
        out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(tail).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&out[..40]).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Records the trigrams of one block as held by block `block`.
    fn add_block(&mut self, bytes: &[u8], block: usize) {
        self.distinct.clear();
        for w in bytes.windows(3) {
            let t = trigram(w[0], w[1], w[2]) as usize;
            let (word, bit) = (t / 64, 1u64 << (t % 64));
            if let Some(slot) = self.seen.get_mut(word)
                && *slot & bit == 0
            {
                *slot |= bit;
                self.distinct.push(t as u32);
            }
        }
        for &t in &self.distinct {
            if let Some(slot) = self.seen.get_mut(t as usize / 64) {
                *slot = 0;
            }
            let bits = self.blocks_of.entry(t).or_insert([0; WORDS]);
            bits[block / 64] |= 1 << (block % 64);
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
#[expect(
    clippy::single_range_in_vec_init,
    reason = "the expected plans are lists of one byte range"
)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn log_with(lines: &[String]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("step.log");
        let mut f = File::create(&path).unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
        (dir, path)
    }

    fn plan_for(path: &Path, literal: &str) -> Plan {
        let log = File::open(path).unwrap();
        let end = log.metadata().unwrap().len();
        let req = Required::Literal(literal.as_bytes().to_vec());
        plan(&log, &index_path(path), &req, end).unwrap()
    }

    fn bytes_in(path: &Path, ranges: &[Range<u64>]) -> Vec<u8> {
        let all = std::fs::read(path).unwrap();
        ranges
            .iter()
            .flat_map(|r| all[r.start as usize..r.end as usize].to_vec())
            .collect()
    }

    #[test]
    fn only_blocks_holding_the_literal_are_read() {
        let lines: Vec<String> = (0..40_000)
            .map(|i| {
                if i == 31_234 {
                    "read tcp: ECONNRESET".to_string()
                } else {
                    format!("{i}\tcompiling module number {i}")
                }
            })
            .collect();
        let (_dir, path) = log_with(&lines);
        let size = std::fs::metadata(&path).unwrap().len();
        // No index yet: the whole log is scanned.
        assert_eq!(plan_for(&path, "ECONNRESET").ranges, [0..size]);
        assert_eq!(extend(&path, BLOCK, true).unwrap(), Some(size));
        let plan = plan_for(&path, "ECONNRESET");
        assert_eq!(plan.covered, size);
        let read: u64 = plan.ranges.iter().map(|r| r.end - r.start).sum();
        assert!(read < 2 * BLOCK, "read {read} of {size}");
        assert!(
            String::from_utf8(bytes_in(&path, &plan.ranges))
                .unwrap()
                .contains("read tcp: ECONNRESET")
        );
        assert!(plan_for(&path, "EPIPE!").ranges.is_empty());

        // Lines appended after the index are read whole.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        writeln!(f, "again ECONNRESET").unwrap();
        let plan = plan_for(&path, "ECONNRESET");
        assert_eq!(plan.ranges.last().unwrap().end, size + 17);
        assert_eq!(plan_for(&path, "EPIPE!").ranges, [size..size + 17]);
    }

    #[test]
    fn a_damaged_or_foreign_index_is_ignored_and_rebuilt() {
        let lines: Vec<String> = (0..30_000).map(|i| format!("line {i} ok")).collect();
        let (_dir, path) = log_with(&lines);
        let size = std::fs::metadata(&path).unwrap().len();
        let idx = index_path(&path);
        extend(&path, 0, true).unwrap();
        let good = std::fs::read(&idx).unwrap();
        let whole = |p: &Plan| p.ranges == [0..size] && p.covered == 0;

        // Every single flipped byte either leaves the answer right or makes the index unused.
        for at in (0..good.len()).step_by(good.len() / 97 + 1) {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            std::fs::write(&idx, &bad).unwrap();
            let p = plan_for(&path, "line 29999 ok");
            let text = String::from_utf8(bytes_in(&path, &p.ranges)).unwrap();
            assert!(text.contains("line 29999 ok"), "flipped byte {at}");
        }
        // Truncated, older version, garbage: all read as no index.
        for bad in [
            good[..good.len() / 2].to_vec(),
            [&good[..8], &0u32.to_le_bytes()[..], &good[12..]].concat(),
            b"not an index at all".to_vec(),
        ] {
            std::fs::write(&idx, &bad).unwrap();
            assert!(whole(&plan_for(&path, "line 29999 ok")));
        }
        // Another log's index (same length, other bytes) is not used.
        let other: Vec<String> = (0..30_000).map(|i| format!("line {i} OK")).collect();
        let (_d2, other_path) = log_with(&other);
        extend(&other_path, 0, true).unwrap();
        std::fs::copy(index_path(&other_path), &idx).unwrap();
        assert!(whole(&plan_for(&path, "line 29999 ok")));
        // Extending rebuilds it.
        std::fs::remove_file(&idx).unwrap();
        assert_eq!(extend(&path, 0, true).unwrap(), Some(size));
        assert_eq!(std::fs::read(&idx).unwrap(), good);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// The blocks the index keeps hold every line holding the literal.
        #[test]
        fn candidate_ranges_hold_every_line_with_the_literal(
            lines in proptest::collection::vec("[abc ]{0,40}", 1..3000),
            literal in "[abc ]{3,6}",
        ) {
            let (_dir, path) = log_with(&lines);
            extend(&path, 0, true).unwrap();
            let p = plan_for(&path, &literal);
            let read = String::from_utf8(bytes_in(&path, &p.ranges)).unwrap();
            for l in lines.iter().filter(|l| l.contains(literal.as_str())) {
                proptest::prop_assert!(read.contains(l.as_str()));
            }
        }
    }
}
