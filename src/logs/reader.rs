//! Purpose: reading a step log file without reading all of it: the complete part (a torn last record left by a crash
//! is ignored), its last `n` records by reading backwards in blocks, the records from a line number on by bisecting
//! the file, and its last record (where a reopened log continues its numbering).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use super::{LogLine, record};

/// Block size for reading a log backwards.
pub(super) const TAIL_BLOCK: usize = 64 * 1024;

/// Below this many bytes, finding a line number scans forward instead of bisecting.
const SCAN_SPAN: u64 = 64 * 1024;

/// Length of the file up to and including its last newline: the part made of complete records.
pub(super) fn complete_len(file: &File, len: u64, block: usize) -> io::Result<u64> {
    let mut buf = vec![0u8; block];
    let mut hi = len;
    while hi > 0 {
        let lo = hi.saturating_sub(block as u64);
        let chunk = &mut buf[..usize::try_from(hi - lo).unwrap_or(block)];
        file.read_exact_at(chunk, lo)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(lo + i as u64 + 1);
        }
        hi = lo;
    }
    Ok(0)
}

/// Offset where the last `n` records of the complete part `..end` begin.
fn records_start(file: &File, end: u64, n: usize, block: usize) -> io::Result<u64> {
    if n == 0 || end == 0 {
        return Ok(end);
    }
    let mut buf = vec![0u8; block];
    let mut seen = 0;
    // The byte at `end - 1` is the newline ending the last record; count the ones before it.
    let mut hi = end - 1;
    while hi > 0 {
        let lo = hi.saturating_sub(block as u64);
        let chunk = &mut buf[..usize::try_from(hi - lo).unwrap_or(block)];
        file.read_exact_at(chunk, lo)?;
        for (i, _) in chunk.iter().enumerate().rev().filter(|(_, b)| **b == b'\n') {
            seen += 1;
            if seen == n {
                return Ok(lo + i as u64 + 1);
            }
        }
        hi = lo;
    }
    Ok(0)
}

/// Decodes the records in `start..end`, skipping malformed ones.
fn decode_range(file: &File, start: u64, end: u64) -> io::Result<Vec<LogLine>> {
    let size = usize::try_from(end - start)
        .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "log range too large"))?;
    let mut buf = vec![0u8; size];
    file.read_exact_at(&mut buf, start)?;
    Ok(buf
        .split(|&b| b == b'\n')
        .filter(|r| !r.is_empty())
        .filter_map(decode_logged)
        .collect())
}

/// Decodes one record, logging a malformed one.
pub(super) fn decode_logged(record: &[u8]) -> Option<LogLine> {
    let line = record::decode(record);
    if line.is_none() {
        tracing::warn!(
            record = %String::from_utf8_lossy(record),
            "skipped a malformed step log record"
        );
    }
    line
}

/// The last decodable record of the complete part `..end`.
pub(super) fn last_record(file: &File, end: u64) -> io::Result<Option<LogLine>> {
    // Usually the last record; look a little further back if it is damaged.
    for n in [1, 16] {
        let start = records_start(file, end, n, TAIL_BLOCK)?;
        if let Some(line) = decode_range(file, start, end)?.pop() {
            return Ok(Some(line));
        }
        if start == 0 {
            break;
        }
    }
    // Nothing decodable near the end: fall back to the whole file.
    Ok(decode_range(file, 0, end)?.pop())
}

/// The last `n` decodable records of a log file, read backwards `block` bytes at a time.
pub(super) fn tail_file(file: &File, n: usize, block: usize) -> io::Result<Vec<LogLine>> {
    let end = complete_len(file, file.metadata()?.len(), block)?;
    let start = records_start(file, end, n, block)?;
    decode_range(file, start, end)
}

/// Offset of the first record at or after `offset` and its number (`None` past the last record).
fn record_at_or_after(file: &File, offset: u64, end: u64) -> io::Result<Option<(u64, u64)>> {
    let mut reader = BufReader::new(file);
    let mut start = offset;
    reader.seek(SeekFrom::Start(offset))?;
    let mut line = Vec::new();
    if offset > 0 {
        // `offset` may fall inside a record: skip to the next one.
        start += reader.read_until(b'\n', &mut line)? as u64;
        line.clear();
    }
    loop {
        if start >= end {
            return Ok(None);
        }
        let n = reader.read_until(b'\n', &mut line)? as u64;
        if n == 0 {
            return Ok(None);
        }
        if let Some(number) = record::number_of(&line) {
            return Ok(Some((start, number)));
        }
        start += n;
        line.clear();
    }
}

/// Up to `limit` records of a log file from line number `from_line` on.
pub(super) fn read_file(file: &File, from_line: u64, limit: usize) -> io::Result<Vec<LogLine>> {
    let end = complete_len(file, file.metadata()?.len(), TAIL_BLOCK)?;
    if limit == 0 {
        return Ok(Vec::new());
    }
    // Numbers grow along the file: bisect to a record before the wanted one, then scan.
    // Invariant: every record starting before `lo` has a number below `from_line`.
    let (mut lo, mut hi) = (0, end);
    while hi - lo > SCAN_SPAN {
        let mid = lo + (hi - lo) / 2;
        match record_at_or_after(file, mid, end)? {
            Some((start, number)) if start < hi && number < from_line => lo = start,
            _ => hi = mid,
        }
    }
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(lo))?;
    let mut pos = lo;
    let mut out = Vec::new();
    let mut record = Vec::new();
    while pos < end && out.len() < limit {
        record.clear();
        let n = reader.read_until(b'\n', &mut record)?;
        if n == 0 {
            break;
        }
        pos += n as u64;
        if record.last() != Some(&b'\n') {
            break; // a torn record being written right now
        }
        record.pop();
        if record::number_of(&record).is_some_and(|number| number >= from_line)
            && let Some(line) = decode_logged(&record)
        {
            out.push(line);
        }
    }
    Ok(out)
}
