//! Purpose: saves one durable commit per delivery on the way from a webhook to its check run. The ingress commits a
//! delivery it is about to hand to this process's processor with its first processing start already counted
//! (`unfinished_starts` = 1) and notes its GUID here; the processor's first start of that delivery in this process
//! then takes the note instead of committing the count again. Overcounting is the safe side: a delivery the
//! processor never took (it was queued behind a hung one, another replica processed it) merely parks one start
//! earlier. A restart forgets every note, so each start after a crash is committed before the work as before, and
//! a poison delivery is still parked, never crash-looped.

use std::collections::HashSet;
use std::sync::Mutex;

/// Notes kept at most: a delivery processed elsewhere leaves its note behind, so the set is bounded.
const MAX_NOTED: usize = 10_000;

/// Deliveries acknowledged by this process whose first processing start the acknowledgement's commit counted.
#[derive(Default)]
pub struct FirstStarts {
    counted: Mutex<HashSet<String>>,
}

impl FirstStarts {
    /// Records that `guid` was committed with its first start counted (call only after that commit succeeded).
    pub fn note(&self, guid: &str) {
        let mut counted = self.lock();
        if counted.len() >= MAX_NOTED {
            // Notes nobody took (another replica processed those deliveries): forgetting them is safe, each
            // forgotten delivery's next start is merely committed again.
            counted.clear();
        }
        counted.insert(guid.to_string());
    }

    /// Whether a start of `guid` was counted by its acknowledgement and not yet used; it can be used once.
    pub fn take(&self, guid: &str) -> bool {
        self.lock().remove(guid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.counted.lock().unwrap_or_else(|e| e.into_inner())
    }
}
