//! Purpose: the store's committer thread. Every commit goes through it: it takes all commits waiting at once (group
//! commit), evaluates their operations in order against the store and the group's own writes, and writes the group
//! in one transaction, durable unless every batch in it is relaxed (and then durable anyway once relaxed writes have
//! waited [`MAX_UNSYNCED`] for a durable one).

use super::backend::{Backend, GroupWrite, WriteFailure};
use super::batch::{Batch, Op};
use super::*;

/// How long relaxed writes (the delivery log's moves) wait at most for a durable write to carry them to disk. Under a
/// stream of deliveries nothing processes (events boomerang does not act on), no other commit would: redb would
/// keep every page those writes free until one, and a crash would replay all of them from the log at the next open.
pub(super) const MAX_UNSYNCED: std::time::Duration = std::time::Duration::from_secs(1);

/// The committer thread: takes every commit waiting (up to a limit), evaluates their operations in order against the
/// store and the writes of the group so far, and applies the whole group in one durable transaction. On a shared
/// database a group can find a key it creates written by another replica meanwhile: then each of its commits is
/// settled alone, so only the one that raced sees it.
pub(super) fn committer(
    backend: Arc<dyn Backend>,
    rx: mpsc::Receiver<Commit>,
    mut next_outbox: u64,
    stats: std::sync::Weak<Inner>,
    quiesce: Arc<std::sync::Mutex<()>>,
) {
    const MAX_GROUP: usize = 512;
    // When the first relaxed write not yet followed by a durable one was made.
    let mut unsynced_since: Option<std::time::Instant> = None;
    while let Ok(first) = rx.recv() {
        let group = delivery_log::with_waiting(&rx, first, MAX_GROUP);
        let batches: Vec<&Batch> = group.iter().map(|c| &c.batch).collect();
        let mut evaluated = evaluate(&batches, &*backend, next_outbox);
        let durable = batches.iter().any(|b| !b.relaxed)
            || unsynced_since.is_some_and(|t| t.elapsed() >= MAX_UNSYNCED);
        let result = write_evaluated(&*backend, &quiesce, &mut evaluated, durable);
        if let Some(inner) = stats.upgrade() {
            inner.group_commits.fetch_add(1, Ordering::Relaxed);
            inner
                .batches
                .fetch_add(group.len() as u64, Ordering::Relaxed);
            if durable && result.is_ok() {
                inner.durable_groups.fetch_add(1, Ordering::Relaxed);
            }
        }
        match result {
            Ok(()) => {
                if durable {
                    unsynced_since = None;
                } else {
                    unsynced_since.get_or_insert_with(std::time::Instant::now);
                }
                next_outbox = evaluated.next_outbox;
                if let Some(inner) = stats.upgrade() {
                    note_enqueued(&inner, &batches);
                }
                for (commit, outcome) in group.into_iter().zip(evaluated.outcomes) {
                    let _ = commit.reply.send(Ok(outcome));
                }
            }
            Err(WriteFailure::Taken(_)) => {
                for commit in group {
                    let settled =
                        settle_alone(&commit.batch, &*backend, &quiesce, &mut next_outbox);
                    if let (Ok(_), Some(inner)) = (&settled, stats.upgrade()) {
                        note_enqueued(&inner, &[&commit.batch]);
                    }
                    let _ = commit.reply.send(settled);
                }
            }
            Err(WriteFailure::Store(e)) => {
                let msg = e.to_string();
                for commit in group {
                    let _ = commit.reply.send(Err(StoreError::Backend(msg.clone())));
                }
            }
        }
    }
}

/// Records the installations whose outbox the committed `batches` queued something in.
fn note_enqueued(inner: &Inner, batches: &[&Batch]) {
    let mut installations = batches
        .iter()
        .flat_map(|b| &b.ops)
        .filter_map(|op| match op {
            Op::Enqueue { installation, .. } => Some(*installation),
            _ => None,
        })
        .peekable();
    if installations.peek().is_some() {
        inner
            .enqueued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(installations);
    }
}

/// A group's operations evaluated against the store: what to write and what each commit came to.
struct Evaluated {
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Keys the group creates (conditional puts that found them absent, and appended events).
    must_be_new: Vec<Vec<u8>>,
    /// The appended events among them: one taken means another worker wrote the job's log.
    appended: Vec<Vec<u8>>,
    outcomes: Vec<CommitOutcome>,
    failed: Option<StoreError>,
    next_outbox: u64,
}

fn evaluate(batches: &[&Batch], backend: &dyn Backend, next_outbox: u64) -> Evaluated {
    let mut overlay: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    let mut evaluated = Evaluated {
        writes: Vec::new(),
        must_be_new: Vec::new(),
        appended: Vec::new(),
        outcomes: Vec::with_capacity(batches.len()),
        failed: None,
        next_outbox,
    };
    let saved_next = next_outbox;
    for batch in batches {
        let mut outcome = CommitOutcome::default();
        for op in &batch.ops {
            if let Err(e) = apply_op(op, backend, &mut overlay, &mut evaluated, &mut outcome) {
                evaluated.failed = Some(e);
            }
        }
        evaluated.outcomes.push(outcome);
    }
    if evaluated.next_outbox != saved_next {
        evaluated.writes.push((
            keys::meta(OUTBOX_SEQ).into_bytes(),
            Some(encode(&evaluated.next_outbox)),
        ));
    }
    evaluated
}

/// Writes an evaluated group in one transaction, with the fleet's conditions.
fn write_evaluated(
    backend: &dyn Backend,
    quiesce: &std::sync::Mutex<()>,
    evaluated: &mut Evaluated,
    durable: bool,
) -> Result<(), WriteFailure> {
    if let Some(e) = &evaluated.failed {
        return Err(WriteFailure::Store(StoreError::Backend(e.to_string())));
    }
    let pending = keys::PENDING.as_bytes();
    let wakes_worker = evaluated
        .writes
        .iter()
        .any(|(k, v)| v.is_some() && k.starts_with(pending));
    let _exclusive = quiesce.lock().unwrap_or_else(|e| e.into_inner());
    // The writes move into the transaction: nothing reads them after it.
    backend.write_group(GroupWrite {
        ops: std::mem::take(&mut evaluated.writes),
        must_be_new: evaluated.must_be_new.clone(),
        wakes_worker,
        durable,
    })
}

/// One commit of a group that raced another replica, evaluated and written alone. A conditional put that lost the
/// race is evaluated again (it now reads the other replica's row: a conflict, as it would have been); an event that
/// lost it fails the commit, since another worker wrote the job's log.
fn settle_alone(
    batch: &Batch,
    backend: &dyn Backend,
    quiesce: &std::sync::Mutex<()>,
    next_outbox: &mut u64,
) -> Result<CommitOutcome, StoreError> {
    const TRIES: usize = 3;
    for _ in 0..TRIES {
        let mut evaluated = evaluate(&[batch], backend, *next_outbox);
        match write_evaluated(backend, quiesce, &mut evaluated, !batch.relaxed) {
            Ok(()) => {
                *next_outbox = evaluated.next_outbox;
                return Ok(evaluated.outcomes.pop().unwrap_or_default());
            }
            Err(WriteFailure::Store(e)) => return Err(e),
            Err(WriteFailure::Taken(taken)) => {
                if let Some(key) = taken.iter().find(|k| evaluated.appended.contains(k)) {
                    return Err(StoreError::Backend(format!(
                        "`{}` was written by another boomerang (this one lost the worker lease?)",
                        String::from_utf8_lossy(key)
                    )));
                }
            }
        }
    }
    Err(StoreError::Backend(
        "another boomerang kept writing the same keys; giving up this commit".into(),
    ))
}

fn apply_op(
    op: &Op,
    backend: &dyn Backend,
    overlay: &mut HashMap<Vec<u8>, Option<Vec<u8>>>,
    evaluated: &mut Evaluated,
    outcome: &mut CommitOutcome,
) -> Result<(), StoreError> {
    let Evaluated {
        writes,
        must_be_new,
        appended,
        next_outbox,
        ..
    } = evaluated;
    let lookup = |key: &[u8],
                  overlay: &HashMap<Vec<u8>, Option<Vec<u8>>>|
     -> Result<Option<Vec<u8>>, StoreError> {
        match overlay.get(key) {
            Some(v) => Ok(v.clone()),
            None => backend.get(key),
        }
    };
    let mut put =
        |key: Vec<u8>, value: Option<Vec<u8>>, overlay: &mut HashMap<Vec<u8>, Option<Vec<u8>>>| {
            overlay.insert(key.clone(), value.clone());
            writes.push((key, value));
        };
    match op {
        Op::Put(k, v) => put(k.clone().into_bytes(), Some(v.clone()), overlay),
        Op::Delete(k) => put(k.clone().into_bytes(), None, overlay),
        Op::Append(k, v) => {
            // (A key this group deleted first is rewritten, not created.)
            if !overlay.contains_key(k.as_bytes()) {
                must_be_new.push(k.clone().into_bytes());
                appended.push(k.clone().into_bytes());
            }
            put(k.clone().into_bytes(), Some(v.clone()), overlay);
        }
        Op::SyncOutboxSeq => {
            *next_outbox = (*next_outbox).max(stored_next_outbox(backend)?);
        }
        Op::PutIfAbsent {
            key,
            value,
            tag,
            with,
        } => {
            if lookup(key.as_bytes(), overlay)?.is_some() {
                outcome.conflicts.push(*tag);
            } else {
                if !overlay.contains_key(key.as_bytes()) {
                    must_be_new.push(key.clone().into_bytes());
                }
                put(key.clone().into_bytes(), Some(value.clone()), overlay);
                for (k, v) in with {
                    put(k.clone().into_bytes(), Some(v.clone()), overlay);
                }
            }
        }
        Op::Enqueue {
            installation,
            coalesce,
            value,
        } => {
            if let Some(c) = coalesce {
                let mark = keys::coalesce(c).into_bytes();
                if let Some(existing) = lookup(&mark, overlay)? {
                    // Still queued: replace the entry where it stands (the latest state wins).
                    if lookup(&existing, overlay)?.is_some() {
                        put(existing, Some(value.clone()), overlay);
                        return Ok(());
                    }
                }
                let key = keys::outbox(*installation, *next_outbox).into_bytes();
                *next_outbox += 1;
                put(mark, Some(key.clone()), overlay);
                put(key, Some(value.clone()), overlay);
            } else {
                let key = keys::outbox(*installation, *next_outbox).into_bytes();
                *next_outbox += 1;
                put(key, Some(value.clone()), overlay);
            }
        }
        Op::RemoveIfUnchanged {
            key,
            mark,
            expected,
        } => {
            if lookup(key.as_bytes(), overlay)?.as_deref() == Some(expected.as_slice()) {
                put(key.clone().into_bytes(), None, overlay);
                if let Some(m) = mark {
                    put(m.clone().into_bytes(), None, overlay);
                }
            }
        }
    }
    Ok(())
}
