//! Purpose: the job page's step graph. Steps are laid out in columns by depth (a step sits one column right of the
//! deepest step it needs), so a DAG reads left to right as it runs, without script or inline style: each column is a
//! list of step cards with the step's state, duration, tries and what it needs.

use super::format::{Badge, duration_ms};
use crate::job::{AttemptState, JobRecord};
use std::collections::HashMap;

/// One step's card.
#[derive(Debug, Clone)]
pub(super) struct StepNode {
    /// The step's id (its log block is `#a<attempt>-<id>`).
    pub(super) id: String,
    /// Its display name.
    pub(super) name: String,
    /// Its state.
    pub(super) badge: Badge,
    /// How long it ran (empty before it started).
    pub(super) duration: String,
    /// How many tries it took (shown when more than one).
    pub(super) tries: u32,
    /// The steps it needs, comma-separated (empty: none).
    pub(super) needs: String,
    /// The exit code or note, if any.
    pub(super) note: String,
}

/// An attempt's steps in columns, left to right.
pub(super) fn columns(record: &JobRecord, attempt: &AttemptState) -> Vec<Vec<StepNode>> {
    let needs = |id: &str| -> Vec<String> {
        record
            .spec
            .step(id)
            .map(|s| s.needs.clone())
            .unwrap_or_default()
    };
    let mut depth: HashMap<&str, usize> = HashMap::new();
    // Needs point at earlier steps in a valid config, but a bound keeps a malformed one from looping.
    for _ in 0..=attempt.steps.len() {
        let mut changed = false;
        for s in &attempt.steps {
            let d = needs(&s.id)
                .iter()
                .filter_map(|n| depth.get(n.as_str()).map(|d| d + 1))
                .max()
                .unwrap_or(0)
                .min(attempt.steps.len());
            if depth.get(s.id.as_str()) != Some(&d) {
                depth.insert(&s.id, d);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut columns: Vec<Vec<StepNode>> = Vec::new();
    for s in &attempt.steps {
        let d = depth.get(s.id.as_str()).copied().unwrap_or(0);
        if columns.len() <= d {
            columns.resize_with(d + 1, Vec::new);
        }
        let mut note = s.note.clone().unwrap_or_default();
        if let Some(code) = s.exit_code.filter(|c| *c != 0) {
            note = if note.is_empty() {
                format!("exit {code}")
            } else {
                format!("exit {code} · {note}")
            };
        }
        columns[d].push(StepNode {
            id: s.id.clone(),
            name: s.name.clone(),
            badge: Badge::step(s),
            duration: if s.started_at.is_some() {
                duration_ms(s.duration_ms)
            } else {
                String::new()
            },
            tries: s.tries,
            needs: needs(&s.id).join(", "),
            note,
        });
    }
    columns.retain(|c| !c.is_empty());
    columns
}
