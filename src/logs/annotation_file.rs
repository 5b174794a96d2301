//! Purpose: the annotations found in an attempt's output, stored beside its step logs (`annotations.jsonl`, one JSON
//! object a line, shared by the attempt's steps): appending them, reading them back deduplicated, and what the next
//! check run request of the attempt carries (the next batch and the excerpt of the log around the first error).
//! What an annotation is and how it is found is [`crate::annotations`], which knows nothing of files.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;

use super::LogStore;
use crate::annotations::{Annotation, Pending};

impl LogStore {
    /// Appends annotations found in an attempt's output to its `annotations.jsonl` (one JSON object a line) and
    /// syncs the file. Steps of one attempt share the file; the store's lock keeps their lines whole.
    pub fn append_annotations(
        &self,
        job_id: &str,
        attempt: u32,
        found: &[Annotation],
    ) -> io::Result<()> {
        if found.is_empty() {
            return Ok(());
        }
        let path = self.inner.annotations_path(job_id, attempt)?;
        let mut text = String::new();
        for a in found {
            text.push_str(&serde_json::to_string(a).map_err(io::Error::other)?);
            text.push('\n');
        }
        let state = self.inner.state();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        if len > 0 {
            // A crash may have left half a line: end it so the new lines stay readable.
            let mut last = [0u8; 1];
            file.read_exact_at(&mut last, len - 1)?;
            if last[0] != b'\n' {
                text.insert(0, '\n');
            }
        }
        file.write_all(text.as_bytes())?;
        file.sync_data()?;
        drop(state);
        if let Some(mirrored) = self.inner.mirror.get() {
            // Committed before the step's end is: a failure is retried once, then left to the next reconcile.
            let rel = format!("{job_id}/{attempt}/{}", super::store::ANNOTATIONS_FILE);
            let chunks = super::upload::chunks(&rel, len, text.as_bytes());
            if let Err(e) = mirrored
                .backend
                .append(&chunks)
                .or_else(|_| mirrored.backend.append(&chunks))
            {
                tracing::warn!(job = job_id, attempt, error = %e, "could not upload annotations to the database");
            }
        }
        Ok(())
    }

    /// An attempt's annotations in the order they were found, each once (a line that does not parse, such as
    /// one torn by a crash, is skipped). `NotFound` when the attempt has none.
    pub fn annotations(&self, job_id: &str, attempt: u32) -> io::Result<Vec<Annotation>> {
        self.ensure_local(job_id);
        let file = File::open(self.inner.annotations_path(job_id, attempt)?)?;
        let mut all = Vec::new();
        for line in BufReader::new(file).lines() {
            if let Ok(a) = serde_json::from_str(&line?) {
                all.push(a);
            }
        }
        Ok(crate::annotations::dedup(all))
    }

    /// Reads an attempt's stored annotations: the next batch after the `sent` first ones, and the excerpt around the
    /// first failure. A missing or unreadable file means no annotations.
    pub fn pending_annotations(&self, job: &str, attempt: u32, sent: u64) -> Pending {
        let all = self.annotations(job, attempt).unwrap_or_else(|e| {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(job, attempt, error = %e, "cannot read annotations");
            }
            Vec::new()
        });
        crate::annotations::pending(&all, sent, |step, from, count| {
            let lines = self.read(job, attempt, step, from, count).ok()?;
            Some(lines.into_iter().map(|l| (l.number, l.text)).collect())
        })
    }
}
