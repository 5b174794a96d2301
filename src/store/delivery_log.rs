//! Purpose: the delivery log of an embedded store, the durable step of a webhook's acknowledgement. A delivery's
//! raw body is appended here once, as GitHub signed it, by one writer thread that makes every append waiting at a
//! time durable with one `fdatasync` (group commit: the requests that arrive while a flush runs share the next
//! one). The delivery's small record then reaches the store in the background ([`LogEntry`], moved by the mover
//! thread in batches of hundreds, in commits that do not wait for the disk), with a pointer to its body here
//! ([`BodyAt`]) and a mark of how far the log has been moved; at open the entries after the last durable mark are
//! recorded in the store before anything else, so an acknowledged delivery is never lost. The store's B-tree never holds or rewrites the bodies, which is where ingest's time went.
//!
//! On disk: `DIR/NNNNNNNN.log` segments of about [`SEGMENT_BYTES`], each a run of entries
//! `[magic][guid len][header len][body len][crc32][guid][header][body]` (little-endian u32s, the CRC over the
//! rest). A torn entry can only be the last segment's tail (an append never acknowledged) and is cut off at open.

use super::{Batch, Commit, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::{Semaphore, oneshot};

/// A segment is closed and the next one started once it holds this much.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// Deliveries logged and not yet moved into the store at most; an append past it waits for the mover.
pub const MAX_UNMOVED: usize = 16_384;
/// A move this large means a burst: the mover then pauses [`BUSY_PAUSE`] before the next.
const BUSY_MOVE: usize = 16;
const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);
/// Appends one group flush takes at most: two slices each (head, body) in one `pwritev`, within Linux's 1,024.
const MAX_GROUP: usize = 512;
const _: () = assert!(
    2 * MAX_GROUP <= 1024,
    "one group's slices must fit in one pwritev"
);
/// Bytes of the writer's heads buffer kept between groups at most (a group of large records may grow it).
const KEEP_HEADS: usize = 1 << 20;
const MAGIC: u32 = 0x3144_4d42; // "BMD1"
const PREFIX: usize = 20;
/// A header (the delivery's record) larger than this is refused; GitHub's bodies are capped at 25 MB elsewhere.
const MAX_HEADER: usize = 1 << 20;
const MAX_BODY: usize = 32 << 20;

/// Where a delivery's body is in the log: its entry's segment and offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyAt {
    /// The segment's number.
    pub segment: u32,
    /// The entry's first byte in the segment.
    pub entry: u64,
}

/// How far the log has been moved into the store: every entry before it is there (kept in the store's meta).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LogMark {
    /// The segment's number.
    pub segment: u32,
    /// The first byte not yet moved.
    pub end: u64,
}

/// The meta name the mover keeps the [`LogMark`] under.
pub const MARK_META: &str = "delivery-log";

/// An entry made durable, handed to the mover in log order.
#[derive(Debug)]
pub struct LogEntry {
    /// The delivery's GUID.
    pub guid: String,
    /// What the caller logged beside the body (the ingress: the delivery's record, serialised).
    pub header: Vec<u8>,
    /// Where its body is.
    pub at: BodyAt,
    /// The mark once this entry is moved.
    pub end: LogMark,
}

struct Append {
    guid: String,
    header: Vec<u8>,
    body: bytes::Bytes,
    reply: oneshot::Sender<Result<BodyAt, StoreError>>,
}

/// The delivery log. Cheap to clone.
#[derive(Clone)]
pub struct DeliveryLog {
    appends: mpsc::SyncSender<Append>,
    unmoved: Arc<Unmoved>,
}

/// What the mover shares with the appenders (not the writer's channel, so the writer stops when the store closes).
struct Unmoved {
    /// GUIDs logged or being logged and not yet moved, and whether each holds one of `room`'s permits.
    guids: Mutex<HashMap<String, bool>>,
    room: Semaphore,
    stats: Counters,
}

#[derive(Default)]
struct Counters {
    logged: AtomicU64,
    flushes: AtomicU64,
    moved: AtomicU64,
    moves: AtomicU64,
}

/// What the log did since the store opened (`boomerang bench ingest` prints it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Deliveries made durable in the log.
    pub logged: u64,
    /// `fdatasync`s that made them durable (one per group).
    pub flushes: u64,
    /// Deliveries moved into the store.
    pub moved: u64,
    /// Store commits that moved them.
    pub moves: u64,
}

/// Called by the mover with the GUIDs of the deliveries it queued for processing, once they are in the store.
pub type MovedHook = Arc<dyn Fn(&[String]) + Send + Sync>;

/// A GUID held while its delivery is being logged: a second delivery of it meanwhile is a duplicate. Dropped
/// without a successful append, it lets the GUID go.
pub struct Reservation {
    log: DeliveryLog,
    guid: String,
    logged: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.logged {
            self.log.unmoved.release(std::slice::from_ref(&self.guid));
        }
    }
}

impl DeliveryLog {
    /// Opens the log in `dir` (creating it), cuts a torn tail, and starts its writer and its mover, which commits
    /// what is logged through `commits` and then calls `hook`. Returns the log and the entries after `mark`
    /// (logged before a crash and not yet moved), which the caller puts in the store before it takes commits.
    pub(super) fn open(
        dir: &Path,
        mark: LogMark,
        commits: mpsc::SyncSender<Commit>,
        hook: Arc<Mutex<Option<MovedHook>>>,
    ) -> Result<(DeliveryLog, Vec<LogEntry>), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let segments = segment_numbers(dir)?;
        let mut replayed = Vec::new();
        let last = segments.last().copied();
        for &n in segments.iter().filter(|&&n| n >= mark.segment) {
            let from = if n == mark.segment { mark.end } else { 0 };
            let read = read_segment(dir, n, from)?;
            replayed.extend(read.entries);
            let path = segment_path(dir, n);
            for damaged in &read.damaged {
                tracing::error!(
                    segment = %path.display(),
                    from = damaged.start,
                    to = damaged.end,
                    "the delivery log is damaged here; the valid entries after it are read"
                );
            }
            let len = std::fs::metadata(&path).map_err(|e| io(&path, e))?.len();
            if read.valid_end < len {
                if Some(n) == last {
                    // Nothing valid follows: an append torn by a crash, never acknowledged. Cut it off.
                    tracing::warn!(
                        segment = %path.display(),
                        bytes = len - read.valid_end,
                        "cut a torn append off the delivery log"
                    );
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| io(&path, e))?;
                    file.set_len(read.valid_end).map_err(|e| io(&path, e))?;
                    file.sync_all().map_err(|e| io(&path, e))?;
                } else {
                    tracing::error!(
                        segment = %path.display(),
                        from = read.valid_end,
                        to = len,
                        "the delivery log is damaged at the end of this segment; nothing valid follows"
                    );
                }
            }
        }
        // Appends go on in the last segment, unless the mark is past it (a store restored from a backup, whose log
        // started empty): then in a new one after the mark, so the mark never hides what comes.
        let last_len = match segments.last() {
            Some(&n) => std::fs::metadata(segment_path(dir, n))
                .map(|m| m.len())
                .unwrap_or(0),
            None => 0,
        };
        let current = match segments.last() {
            Some(&n) if (n, last_len) >= (mark.segment, mark.end) => n,
            _ => mark.segment + 1,
        };
        let segment = Segment::open(dir, current)?;
        let (tx, rx) = mpsc::sync_channel::<Append>(4096);
        let (moved_tx, moved_rx) = mpsc::channel();
        let unmoved = Arc::new(Unmoved {
            guids: Mutex::new(HashMap::new()),
            room: Semaphore::new(MAX_UNMOVED),
            stats: Counters::default(),
        });
        let log = DeliveryLog {
            appends: tx,
            unmoved: unmoved.clone(),
        };
        let (dir, counters) = (dir.to_path_buf(), unmoved.clone());
        std::thread::Builder::new()
            .name("delivery-log".into())
            .spawn(move || writer(dir, segment, rx, moved_tx, &counters.stats))
            .map_err(|e| {
                StoreError::Backend(format!("cannot start the delivery log's writer: {e}"))
            })?;
        std::thread::Builder::new()
            .name("delivery-mover".into())
            .spawn(move || mover(moved_rx, commits, unmoved, hook))
            .map_err(|e| {
                StoreError::Backend(format!("cannot start the delivery log's mover: {e}"))
            })?;
        Ok((log, replayed))
    }

    /// What the log did since the store opened.
    pub fn stats(&self) -> LogStats {
        let c = &self.unmoved.stats;
        LogStats {
            logged: c.logged.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            moved: c.moved.load(Ordering::Relaxed),
            moves: c.moves.load(Ordering::Relaxed),
        }
    }

    /// Holds `guid` while its delivery is logged; `None` when a delivery with this GUID is logged or being logged
    /// and not yet in the store (a duplicate).
    pub fn reserve(&self, guid: &str) -> Option<Reservation> {
        let mut unmoved = self.unmoved.lock();
        if unmoved.contains_key(guid) {
            return None;
        }
        unmoved.insert(guid.to_string(), false);
        Some(Reservation {
            log: self.clone(),
            guid: guid.to_string(),
            logged: false,
        })
    }

    /// Appends the reserved delivery: `header` (what the mover needs to record it) and its raw `body`. Returns
    /// once the entry is on disk. Waits first while [`MAX_UNMOVED`] deliveries are not yet in the store.
    pub async fn append(
        &self,
        mut reservation: Reservation,
        header: Vec<u8>,
        body: bytes::Bytes,
    ) -> Result<BodyAt, StoreError> {
        if header.len() > MAX_HEADER || body.len() > MAX_BODY {
            return Err(StoreError::Backend(
                "a delivery too large for the log".into(),
            ));
        }
        let permit = self
            .unmoved
            .room
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        // From here the place in the room belongs to the GUID's entry: whoever lets the GUID go gives it back, the
        // mover once the delivery is in the store (which can be before this task hears that it is logged), or the
        // reservation's drop when the append fails or this request is dropped.
        // (A GUID let go meanwhile, by the mover moving an earlier copy of it, holds no place: this one goes back.)
        if let Some(held) = self.unmoved.lock().get_mut(&reservation.guid) {
            *held = true;
            permit.forget();
        }
        let (reply, answer) = oneshot::channel();
        let append = Append {
            guid: reservation.guid.clone(),
            header,
            body,
            reply,
        };
        match self.appends.try_send(append) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
            Err(mpsc::TrySendError::Full(append)) => {
                let sender = self.appends.clone();
                tokio::task::spawn_blocking(move || sender.send(append))
                    .await
                    .map_err(|_| StoreError::Closed)?
                    .map_err(|_| StoreError::Closed)?;
            }
        }
        let at = answer.await.map_err(|_| StoreError::Closed)??;
        // Logged: the GUID and its place stay taken until the mover has put the delivery in the store.
        reservation.logged = true;
        Ok(at)
    }
}

impl Unmoved {
    /// Lets `guids` go once their deliveries are in the store (or were never logged).
    fn release(&self, guids: &[String]) {
        let mut permits = 0;
        {
            let mut unmoved = self.lock();
            for guid in guids {
                if unmoved.remove(guid) == Some(true) {
                    permits += 1;
                }
            }
        }
        self.room.add_permits(permits);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.guids.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the log holds beside a body: the delivery's encoded record, and where it joins the processing queue.
pub(super) fn encode_header(record: Vec<u8>, queue_at: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + record.len());
    match queue_at {
        Some(at) => {
            out.push(1);
            out.extend_from_slice(&at.to_le_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(&record);
    out
}

/// The record and queue position in a header written by [`encode_header`].
fn decode_header(header: &[u8]) -> Option<(&[u8], Option<u64>)> {
    match header.split_first()? {
        (0, record) => Some((record, None)),
        (1, rest) if rest.len() >= 8 => {
            let (at, record) = rest.split_at(8);
            Some((record, Some(u64::from_le_bytes(at.try_into().ok()?))))
        }
        _ => None,
    }
}

/// Adds to `batch` the store's rows for `logged` (its record, its body's place, its queue entry), the conflict
/// reported under `tag`. Whether it joins the queue, or `None` for a header that cannot be read.
pub(super) fn record_logged(batch: &mut Batch, logged: &LogEntry, tag: u32) -> Option<bool> {
    let (record, queue_at) = decode_header(&logged.header)?;
    batch.insert_logged_delivery_row(&logged.guid, record.to_vec(), logged.at, queue_at, tag);
    Some(queue_at.is_some())
}

/// The mover thread: takes every logged entry waiting (up to [`MAX_UNMOVED`]), records them and the new mark in
/// one store commit, calls the hook with the ones it queued, and lets their GUIDs go. A failed commit is retried
/// (the entries are safe in the log meanwhile); the store closing ends it.
fn mover(
    rx: mpsc::Receiver<LogEntry>,
    commits: mpsc::SyncSender<Commit>,
    unmoved: Arc<Unmoved>,
    hook: Arc<Mutex<Option<MovedHook>>>,
) {
    while let Ok(first) = rx.recv() {
        let group = with_waiting(&rx, first, MAX_UNMOVED);
        // Tests hold the mover back here: a delivery handed to the processor is then processed before it is moved.
        fail::fail_point!("delivery-log-mover");
        let mut batch = Batch::relaxed();
        let mut queued = vec![false; group.len()];
        for (i, logged) in group.iter().enumerate() {
            match record_logged(&mut batch, logged, i as u32) {
                Some(q) => queued[i] = q,
                None => {
                    tracing::error!(guid = %logged.guid, "a delivery log entry whose header cannot be read")
                }
            }
        }
        if let Some(last) = group.last() {
            batch.put_meta(MARK_META, &last.end);
        }
        let outcome = loop {
            let (reply, answer) = oneshot::channel();
            if commits
                .send(Commit {
                    batch: std::mem::take(&mut batch),
                    reply,
                })
                .is_err()
            {
                return;
            }
            match answer.blocking_recv() {
                Ok(Ok(outcome)) => break outcome,
                Ok(Err(StoreError::Closed)) | Err(_) => return,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot move logged deliveries into the store; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(500));
                    // The batch was taken by the failed commit: build it again.
                    batch = Batch::relaxed();
                    for (i, logged) in group.iter().enumerate() {
                        record_logged(&mut batch, logged, i as u32);
                    }
                    if let Some(last) = group.last() {
                        batch.put_meta(MARK_META, &last.end);
                    }
                }
            }
        };
        for tag in outcome.conflicts {
            if let Some(q) = queued.get_mut(tag as usize) {
                *q = false;
            }
        }
        unmoved.stats.moves.fetch_add(1, Ordering::Relaxed);
        unmoved
            .stats
            .moved
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        let guids: Vec<String> = group.into_iter().map(|l| l.guid).collect();
        let queued: Vec<String> = guids
            .iter()
            .zip(&queued)
            .filter(|(_, q)| **q)
            .map(|(g, _)| g.clone())
            .collect();
        // Tests hold the hook back here: the delivery is then in the store before this process has heard of it.
        fail::fail_point!("delivery-log-mover-hook");
        let hook = hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let (Some(hook), false) = (hook, queued.is_empty()) {
            hook(&queued);
        }
        unmoved.release(&guids);
        if guids.len() >= BUSY_MOVE {
            // Under a burst, let the next batch gather: one store commit then moves many more deliveries, and
            // the store's writer is left to the rest of the work. A lone delivery is moved at once.
            std::thread::sleep(BUSY_PAUSE);
        }
    }
}

/// `first` and whatever else waits in `rx` right now, up to `max` in all: a group that one flush serves (the log's
/// writer and mover, and the store's committer).
pub(super) fn with_waiting<T>(rx: &mpsc::Receiver<T>, first: T, max: usize) -> Vec<T> {
    let mut group = vec![first];
    while group.len() < max {
        match rx.try_recv() {
            Ok(item) => group.push(item),
            Err(_) => break,
        }
    }
    group
}

/// Reads the body of the entry at `at` in the log in `dir`, checking its CRC.
pub fn read_body(dir: &Path, at: BodyAt) -> Result<Vec<u8>, StoreError> {
    let path = segment_path(dir, at.segment);
    let file = File::open(&path).map_err(|e| io(&path, e))?;
    let len = file.metadata().map_err(|e| io(&path, e))?.len();
    match read_entry(&file, at.entry, len).map_err(|e| io(&path, e))? {
        Some((entry, _)) => Ok(entry.body),
        None => Err(StoreError::Backend(format!(
            "{}: no whole delivery at byte {}",
            path.display(),
            at.entry
        ))),
    }
}

struct Segment {
    number: u32,
    file: File,
    len: u64,
}

impl Segment {
    fn open(dir: &Path, number: u32) -> Result<Segment, StoreError> {
        let path = segment_path(dir, number);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        let len = file.metadata().map_err(|e| io(&path, e))?.len();
        // The new file's name must outlive a crash too.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(dir, e))?;
        Ok(Segment { number, file, len })
    }
}

/// The writer thread: takes every append waiting (up to [`MAX_GROUP`]), writes them in one `pwritev` (each entry's
/// small head from one buffer, its body from the request's own bytes, never copied), makes them durable with one
/// `fdatasync`, hands them to the mover in order and answers each.
fn writer(
    dir: PathBuf,
    mut segment: Segment,
    rx: mpsc::Receiver<Append>,
    moved: mpsc::Sender<LogEntry>,
    stats: &Counters,
) {
    let mut heads = Vec::new();
    while let Ok(first) = rx.recv() {
        let group = with_waiting(&rx, first, MAX_GROUP);
        heads.clear();
        let mut head_ends = Vec::with_capacity(group.len());
        let mut placed = Vec::with_capacity(group.len());
        let mut end = segment.len;
        for a in &group {
            let entry = end;
            encode_head(&mut heads, &a.guid, &a.header, &a.body);
            head_ends.push(heads.len());
            end += (PREFIX + a.guid.len() + a.header.len() + a.body.len()) as u64;
            let at = BodyAt {
                segment: segment.number,
                entry,
            };
            placed.push((
                at,
                LogMark {
                    segment: segment.number,
                    end,
                },
            ));
        }
        let mut slices = Vec::with_capacity(2 * group.len());
        let mut head_start = 0;
        for (a, &head_end) in group.iter().zip(&head_ends) {
            slices.push(std::io::IoSlice::new(&heads[head_start..head_end]));
            slices.push(std::io::IoSlice::new(&a.body));
            head_start = head_end;
        }
        let written = write_all_vectored_at(&segment.file, &mut slices, segment.len)
            .and_then(|()| segment.file.sync_data());
        match written {
            Ok(()) => {
                segment.len = end;
                stats.flushes.fetch_add(1, Ordering::Relaxed);
                stats
                    .logged
                    .fetch_add(group.len() as u64, Ordering::Relaxed);
                for (a, (at, end)) in group.into_iter().zip(placed) {
                    let _ = moved.send(LogEntry {
                        guid: a.guid,
                        header: a.header,
                        at,
                        end,
                    });
                    let _ = a.reply.send(Ok(at));
                }
            }
            Err(e) => {
                // What reached the file is unknown: cut back to the last durable length so the next group starts
                // on a clean end, and refuse the whole group (GitHub redelivers).
                let _ = segment.file.set_len(segment.len);
                let msg = format!("cannot write the delivery log: {e}");
                for a in group {
                    let _ = a.reply.send(Err(StoreError::Backend(msg.clone())));
                }
            }
        }
        heads.clear();
        heads.shrink_to(KEEP_HEADS);
        if segment.len >= SEGMENT_BYTES {
            match Segment::open(&dir, segment.number + 1) {
                Ok(next) => segment = next,
                Err(e) => tracing::error!(error = %e, "cannot start a new delivery log segment"),
            }
        }
    }
}

/// Writes every byte of `slices` at `offset`, in as few `pwritev` calls as the kernel allows (at most
/// [`MAX_GROUP`] entries of two slices each: within Linux's 1,024 per call).
fn write_all_vectored_at(
    file: &File,
    mut slices: &mut [std::io::IoSlice<'_>],
    mut offset: u64,
) -> std::io::Result<()> {
    while !slices.is_empty() {
        let offset_arg = i64::try_from(offset).map_err(std::io::Error::other)?;
        match nix::sys::uio::pwritev(file, slices, offset_arg) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                offset += n as u64;
                std::io::IoSlice::advance_slices(&mut slices, n);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// An entry's head: its prefix (lengths and the CRC over guid, header and body), its guid and its header; the body
/// follows it in the file.
fn encode_head(buf: &mut Vec<u8>, guid: &str, header: &[u8], body: &[u8]) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(guid.as_bytes());
    crc.update(header);
    crc.update(body);
    for n in [
        MAGIC,
        guid.len() as u32,
        header.len() as u32,
        body.len() as u32,
        crc.finalize(),
    ] {
        buf.extend_from_slice(&n.to_le_bytes());
    }
    buf.extend_from_slice(guid.as_bytes());
    buf.extend_from_slice(header);
}

/// A whole entry in one buffer, as the writer lays it out (the tests write logs by hand with it).
#[cfg(test)]
fn encode_entry(buf: &mut Vec<u8>, guid: &str, header: &[u8], body: &[u8]) {
    encode_head(buf, guid, header, body);
    buf.extend_from_slice(body);
}

struct Entry {
    guid: String,
    header: Vec<u8>,
    body: Vec<u8>,
}

/// The whole, valid entry at `offset` of a file `len` long and its length; `None` when none is there (the end, a
/// torn or damaged entry).
fn read_entry(file: &File, offset: u64, len: u64) -> std::io::Result<Option<(Entry, u64)>> {
    if offset + PREFIX as u64 > len {
        return Ok(None);
    }
    let mut prefix = [0u8; PREFIX];
    file.read_exact_at(&mut prefix, offset)?;
    let word = |i: usize| {
        u32::from_le_bytes([
            prefix[i * 4],
            prefix[i * 4 + 1],
            prefix[i * 4 + 2],
            prefix[i * 4 + 3],
        ])
    };
    let (guid_len, header_len, body_len) = (word(1) as usize, word(2) as usize, word(3) as usize);
    if word(0) != MAGIC || guid_len > 100 || header_len > MAX_HEADER || body_len > MAX_BODY {
        return Ok(None);
    }
    let total = (PREFIX + guid_len + header_len + body_len) as u64;
    if offset + total > len {
        return Ok(None);
    }
    let mut rest = vec![0u8; guid_len + header_len + body_len];
    file.read_exact_at(&mut rest, offset + PREFIX as u64)?;
    if crc32fast::hash(&rest) != word(4) {
        return Ok(None);
    }
    let body = rest.split_off(guid_len + header_len);
    let header = rest.split_off(guid_len);
    let Ok(guid) = String::from_utf8(rest) else {
        return Ok(None);
    };
    Ok(Some((Entry { guid, header, body }, total)))
}

/// What [`read_segment`] found in a segment.
struct SegmentRead {
    /// Its valid entries from the byte asked for, in order.
    entries: Vec<LogEntry>,
    /// Where its last valid entry ends: what follows holds no valid entry (a torn append, or nothing).
    valid_end: u64,
    /// Byte ranges between valid entries that hold none (damage after the entries were written).
    damaged: Vec<std::ops::Range<u64>>,
}

/// The entries of segment `n` from byte `from`. A range that holds no valid entry but is followed by one (a damaged
/// sector, not a torn tail: only the last append can tear) is skipped, so one bad entry never takes the acknowledged
/// ones after it along.
fn read_segment(dir: &Path, n: u32, from: u64) -> Result<SegmentRead, StoreError> {
    let path = segment_path(dir, n);
    let file = File::open(&path).map_err(|e| io(&path, e))?;
    let len = file.metadata().map_err(|e| io(&path, e))?.len();
    let mut offset = from.min(len);
    let mut read = SegmentRead {
        entries: Vec::new(),
        valid_end: offset,
        damaged: Vec::new(),
    };
    while offset < len {
        let Some((entry, total)) = read_entry(&file, offset, len).map_err(|e| io(&path, e))? else {
            match next_entry(&file, offset + 1, len).map_err(|e| io(&path, e))? {
                Some(next) => {
                    read.damaged.push(offset..next);
                    offset = next;
                    continue;
                }
                None => break,
            }
        };
        let at = BodyAt {
            segment: n,
            entry: offset,
        };
        offset += total;
        read.valid_end = offset;
        read.entries.push(LogEntry {
            guid: entry.guid,
            header: entry.header,
            at,
            end: LogMark {
                segment: n,
                end: offset,
            },
        });
    }
    Ok(read)
}

/// Where the first valid entry at or after `from` starts, if any: each place the magic number appears is tried (an
/// entry's checksum tells a real one from the same bytes inside a body).
fn next_entry(file: &File, from: u64, len: u64) -> std::io::Result<Option<u64>> {
    const CHUNK: usize = 1 << 20;
    let magic = MAGIC.to_le_bytes();
    let mut chunk = vec![0u8; CHUNK];
    let mut start = from;
    while start + PREFIX as u64 <= len {
        let n = usize::try_from(len - start).map_or(CHUNK, |rest| rest.min(CHUNK));
        file.read_exact_at(&mut chunk[..n], start)?;
        for i in 0..n.saturating_sub(magic.len() - 1) {
            if chunk[i..i + magic.len()] == magic
                && read_entry(file, start + i as u64, len)?.is_some()
            {
                return Ok(Some(start + i as u64));
            }
        }
        // The next chunk overlaps this one's last bytes, where a magic number may start.
        start += (n - (magic.len() - 1)) as u64;
    }
    Ok(None)
}

fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n:08}.log"))
}

/// The segments in `dir`, by number.
fn segment_numbers(dir: &Path) -> Result<Vec<u32>, StoreError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_suffix(".log")
            .and_then(|n| n.parse::<u32>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{}: {e}", path.display()))
}

#[cfg(test)]
#[path = "delivery_log_tests.rs"]
mod tests;
