//! Purpose: the alias budgets of the YAML reader. A small file with a few anchors and many aliases (a "billion
//! laughs") expands to gigabytes once loaded; [`Expansion`] measures on the event stream, before the loader
//! clones anything, how large the document would be with every alias expanded, and refuses it past the budgets.

use std::collections::BTreeMap;

use saphyr_parser::Event;

/// Budget of nodes that YAML aliases may produce.
pub(super) const ALIAS_LIMIT: usize = 10_000;
/// Largest expanded size of a document, in bytes: every scalar's text plus one byte per node,
/// counting each alias as a full copy of what its anchor holds. Without it one large anchored
/// scalar referenced by a few thousand aliases (a valid file under [`MAX_CONFIG_BYTES`](crate::spec::MAX_CONFIG_BYTES)) expands
/// to gigabytes; with it, loading any input costs at most a few times this much memory.
pub(crate) const MAX_EXPANDED_BYTES: usize = 8 * 1024 * 1024;

/// The document's size as it would be once every alias is expanded, measured on the event
/// stream: what each anchor holds is recorded when its node ends, and each alias adds that much
/// again. Also counts the nodes aliases produce, mapping keys included (saphyr's own budget
/// counts an aliased key as one node whatever it holds).
#[derive(Default)]
pub(super) struct Expansion {
    /// Bytes so far, expansions included.
    bytes: usize,
    /// Nodes produced by aliases so far.
    alias_nodes: usize,
    /// Nodes so far, expansions included.
    nodes: usize,
    /// (bytes, nodes) of each anchor, by saphyr's anchor id.
    anchors: BTreeMap<usize, (usize, usize)>,
    /// Open collections: their anchor id and the counters when they started.
    open: Vec<(usize, usize, usize)>,
}

impl Expansion {
    /// Accounts for one event; the error message says which bound it would break.
    pub(super) fn on_event(&mut self, event: &Event<'_>) -> Result<(), String> {
        match event {
            Event::Scalar(value, _, anchor, _) => {
                let bytes = value.len().saturating_add(1);
                self.add(bytes, 1);
                if *anchor > 0 {
                    self.anchors.insert(*anchor, (bytes, 1));
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.open.push((*anchor, self.bytes, self.nodes));
                self.add(1, 1);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, bytes, nodes)) = self.open.pop()
                    && anchor > 0
                {
                    self.anchors
                        .insert(anchor, (self.bytes - bytes, self.nodes - nodes));
                }
            }
            Event::Alias(id) => {
                let (bytes, nodes) = self.anchors.get(id).copied().unwrap_or((1, 1));
                self.add(bytes, nodes);
                self.alias_nodes = self.alias_nodes.saturating_add(nodes);
                if self.alias_nodes > ALIAS_LIMIT {
                    return Err(format!(
                        "alias expansion exceeded the maximum node budget: aliases here would \
                         produce more than {ALIAS_LIMIT} nodes"
                    ));
                }
            }
            _ => {}
        }
        if self.bytes > MAX_EXPANDED_BYTES {
            return Err(format!(
                "alias expansion makes the document larger than {MAX_EXPANDED_BYTES} bytes \
                 (8 MiB) once every alias is expanded; use fewer or smaller aliases"
            ));
        }
        Ok(())
    }

    fn add(&mut self, bytes: usize, nodes: usize) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.nodes = self.nodes.saturating_add(nodes);
    }
}
