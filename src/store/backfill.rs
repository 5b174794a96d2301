//! Purpose: indexes derived from jobs that were added after a store was created (the commit → jobs index, the jobs
//! list). A store written by an older boomerang has jobs but no entries in them, so when the store opens each such
//! index is filled once from the job records (and, where the index needs the job's state, its events), in bounded
//! pages, each page one atomic commit, and a meta flag records that it was: later starts skip it. New jobs write
//! their entries with the job, so the flag never needs clearing. The one mechanism for every such index.

use super::backend::Backend;
use super::batch::Op;
use super::indexes::{self, CommitJobKey, CommitKey};
use super::{Batch, StoreError, decode, job_list, keys};
use crate::job::{JobEvent, JobRecord, JobSummary, fold};

/// One backend write: a put (`Some`) or a delete (`None`).
type Write = (Vec<u8>, Option<Vec<u8>>);

/// Job records read per page (one commit per page keeps memory bounded on a large store).
const PAGE: usize = 512;

/// One derived index: its meta flag and how one job fills it (reading more of the job from the backend if it
/// needs to).
struct Derived {
    flag: &'static str,
    fill: fn(&mut Batch, &JobRecord, &dyn Backend) -> Result<(), StoreError>,
}

/// Every index derived from jobs that an older store may lack.
const DERIVED: &[Derived] = &[
    Derived {
        flag: "backfilled/commit-jobs",
        fill: fill_commit_jobs,
    },
    Derived {
        flag: "backfilled/job-list",
        fill: fill_job_list,
    },
];

fn fill_commit_jobs(batch: &mut Batch, job: &JobRecord, _: &dyn Backend) -> Result<(), StoreError> {
    let key = CommitJobKey {
        commit: CommitKey {
            repo: job.repo.clone(),
            sha: job.sha.clone(),
        },
        job: job.id.clone(),
    };
    indexes::COMMIT_JOBS.put(batch, &key, &job.spec.name);
    Ok(())
}

/// Lists the job as its events fold (listing a job twice writes the same entries). A job with an event this build
/// cannot read is left unlisted here: the engine reports it where it is used.
fn fill_job_list(
    batch: &mut Batch,
    job: &JobRecord,
    backend: &dyn Backend,
) -> Result<(), StoreError> {
    let rows = backend.scan(keys::events(job.id.as_str()).as_bytes(), None, usize::MAX)?;
    let mut events = Vec::with_capacity(rows.len());
    for (key, value) in &rows {
        match decode::<JobEvent>(&String::from_utf8_lossy(key), value) {
            Ok(event) => events.push(event),
            Err(_) => return Ok(()),
        }
    }
    job_list::write_listing(batch, None, &JobSummary::of(job, &fold(job, &events)));
    Ok(())
}

/// Fills every derived index this store has not filled yet from its job records, writing straight to the backend
/// (called by [`Store::open`] on an embedded store before the committer starts, and on PostgreSQL by the replica that
/// takes the worker lease before it starts anything, so nothing else writes jobs meanwhile); returns how many job
/// records were read. Writing an entry twice is harmless (each write is a put of the same value).
pub(super) fn backfill_derived_indexes(backend: &dyn Backend) -> Result<usize, StoreError> {
    let mut missing = Vec::new();
    for derived in DERIVED {
        let done = match backend.get(keys::meta(derived.flag).as_bytes())? {
            Some(bytes) => decode::<bool>(derived.flag, &bytes)?,
            None => false,
        };
        if !done {
            missing.push(derived);
        }
    }
    if missing.is_empty() {
        return Ok(0);
    }
    let mut read = 0;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let rows = backend.scan(keys::JOBS.as_bytes(), after.as_deref(), PAGE)?;
        let Some((last, _)) = rows.last() else {
            break;
        };
        after = Some(last.clone());
        let full = rows.len() == PAGE;
        let mut batch = Batch::new();
        for (key, value) in &rows {
            let key = String::from_utf8_lossy(key);
            // A record this build cannot read is left alone here: the engine reports it where it is used.
            let Ok(job) = decode::<JobRecord>(&key, value) else {
                continue;
            };
            read += 1;
            for derived in &missing {
                (derived.fill)(&mut batch, &job, backend)?;
            }
        }
        backend.write(plain_writes(batch)?)?;
        if !full {
            break;
        }
    }
    let mut done = Batch::new();
    for derived in &missing {
        done.put_meta(derived.flag, &true);
    }
    backend.write(plain_writes(done)?)?;
    Ok(read)
}

/// A batch of plain puts and deletes as backend writes (a backfill writes nothing conditional).
fn plain_writes(batch: Batch) -> Result<Vec<Write>, StoreError> {
    batch
        .ops
        .into_iter()
        .map(|op| match op {
            Op::Put(key, value) => Ok((key.into_bytes(), Some(value))),
            Op::Delete(key) => Ok((key.into_bytes(), None)),
            _ => Err(StoreError::Backend(
                "a backfill wrote a conditional operation".into(),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::JobId;
    use crate::store::{BackendKind, Store, StoreTarget};

    const CONFIG: &str = "jobs:\n  j:\n    steps:\n      - run: \"true\"\n";

    #[test]
    fn a_store_written_before_the_commit_index_gets_it_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), BackendKind::Redb).expect("open");
        // Jobs as an older build wrote them: the record only, more than one page of them.
        let mut batch = Batch::new();
        let mut ids = Vec::new();
        for n in 0..(PAGE + 3) {
            let mut job = crate::job::test_fixture::record_of(CONFIG);
            job.id = JobId(format!("{n:032x}"));
            batch.put_job(&job.id.0, &job);
            ids.push(job.id);
        }
        store.commit_blocking(batch).expect("commit");
        let job = crate::job::test_fixture::record_of(CONFIG);
        let commit = CommitKey {
            repo: job.repo.clone(),
            sha: job.sha,
        };
        // Opening filled nothing: there were no jobs then. Clear the flag to stand for an older store.
        assert!(
            indexes::COMMIT_JOBS
                .scan(&store, &commit)
                .expect("scan")
                .is_empty()
        );
        let mut older = Batch::new();
        older.ops.push(Op::Delete(keys::meta(DERIVED[0].flag)));
        store.commit_blocking(older).expect("commit");
        drop(store);

        // The committer thread lets go of the database shortly after the store is dropped.
        let backend = once_free(|| {
            super::super::backend::open(&StoreTarget::Redb(dir.path().to_path_buf())).ok()
        });
        assert_eq!(
            backfill_derived_indexes(&*backend).expect("backfill"),
            PAGE + 3
        );
        assert_eq!(
            backfill_derived_indexes(&*backend).expect("again"),
            0,
            "done once"
        );
        drop(backend);

        let store = once_free(|| Store::open(dir.path(), BackendKind::Redb).ok());
        let found: Vec<_> = indexes::COMMIT_JOBS
            .scan(&store, &commit)
            .expect("scan")
            .into_iter()
            .filter_map(|(path, name)| Some((indexes::job_of(&path)?, name)))
            .collect();
        assert_eq!(found.len(), PAGE + 3);
        assert!(
            found
                .iter()
                .all(|(id, name)| ids.contains(id) && name == "j")
        );
    }

    /// Opens with `open` once the previous owner's committer thread has let go of the database (shortly after the
    /// store is dropped).
    fn once_free<T>(open: impl Fn() -> Option<T>) -> T {
        for _ in 0..500 {
            if let Some(opened) = open() {
                return opened;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the database is still held after 5 s")
    }
}
