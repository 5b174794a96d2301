//! Purpose: [`Redactors`], the redactors of one server: the server's own (its `SECRETS`) and a cache of one per
//! job, so that a job's secret parameters mask only that job's output and requests.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::Redactor;

/// The server's redactor and one per job (server secrets plus the job's secret parameters), so that a job's
/// secrets mask only that job's output and requests. Cheap to clone; clones share the cache.
#[derive(Clone, Debug)]
pub struct Redactors {
    server: Redactor,
    jobs: Arc<RwLock<HashMap<String, Redactor>>>,
}

/// Jobs whose redactor is kept; past it the cache is emptied (each job's redactor is rebuilt when it is loaded).
const JOB_CACHE: usize = 4096;

impl Redactors {
    /// Redactors around the server's one.
    pub fn new(server: Redactor) -> Redactors {
        Redactors {
            server,
            jobs: Arc::default(),
        }
    }

    /// The server's redactor (server secrets only).
    pub fn server(&self) -> &Redactor {
        &self.server
    }

    /// Records job `job`'s secret values (a no-op when already known) and returns its redactor.
    pub fn set_job(&self, job: &str, secrets: &[String]) -> Redactor {
        if let Some(r) = self
            .jobs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(job)
        {
            return r.clone();
        }
        let r = if secrets.is_empty() {
            self.server.clone()
        } else {
            self.server.with_more(secrets)
        };
        let mut jobs = self.jobs.write().unwrap_or_else(PoisonError::into_inner);
        if jobs.len() >= JOB_CACHE {
            jobs.clear();
        }
        jobs.insert(job.to_string(), r.clone());
        r
    }

    /// The redactor of job `job` if it is known, else `None`.
    pub fn job(&self, job: &str) -> Option<Redactor> {
        self.jobs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(job)
            .cloned()
    }

    /// Forgets job `job`'s secrets (the job is deleted).
    pub fn forget(&self, job: &str) {
        self.jobs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(job);
    }
}
