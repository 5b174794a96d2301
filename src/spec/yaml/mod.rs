//! Purpose: the bounded YAML reader under the config language; nothing in it is boomerang-specific.
//!
//! The text is loaded with saphyr into a tree of [`MarkedYaml`] nodes (scalars kept as their source
//! representation, so `1.10` stays `"1.10"` where a string is expected), with a nesting limit enforced on the
//! event stream so no input can exhaust the stack, and the alias budgets of `budget.rs` so no input can expand
//! to gigabytes. `node.rs` sees a node through its tags (scalar, list, mapping) and `read.rs` reads typed values
//! out of nodes, reporting each problem at the node's line and column.

mod budget;
mod node;
mod read;

use saphyr::{MarkedYaml, YamlLoader};
use saphyr_parser::{Event, Parser, SpannedEventReceiver};

use crate::spec::ConfigError;
use budget::{ALIAS_LIMIT, Expansion};

pub(crate) use node::{Sc, Shape, child, shape, type_word};
pub(crate) use read::{
    Cx, boolean, entries, fields, integer, keyword, nonempty_list, number, text, text_list,
};

/// A node of the loaded tree, with its position in the text.
pub(crate) type Node<'i> = MarkedYaml<'i>;

/// Deepest nesting of collections accepted; real configs need about 6.
const MAX_DEPTH: usize = 48;

/// Feeds the parser's events to saphyr's loader, refusing nesting deeper than [`MAX_DEPTH`].
pub(crate) fn load(text: &str) -> Result<Vec<Node<'_>>, ConfigError> {
    let mut loader: YamlLoader<'_, Node<'_>> = YamlLoader::default();
    loader.early_parse(false);
    loader.alias_limit(ALIAS_LIMIT);
    let mut depth = 0usize;
    let mut size = Expansion::default();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| ConfigError {
            line: e.marker().line().max(1),
            column: e.marker().col() + 1,
            message: format!("YAML syntax error: {}", e.info()),
        })?;
        let end = event == Event::StreamEnd;
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ConfigError {
                        line: span.start.line().max(1),
                        column: span.start.col() + 1,
                        message: format!(
                            "the document is nested more than {MAX_DEPTH} levels deep"
                        ),
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
        // Measured before the loader sees the event, so an alias over the budget is never cloned.
        size.on_event(&event).map_err(|message| ConfigError {
            line: span.start.line().max(1),
            column: span.start.col() + 1,
            message,
        })?;
        loader.on_event(event, span);
        if let Some(e) = loader.error() {
            let message = if e.info() == "duplicated key in mapping" {
                "duplicate key in mapping (each key may appear once)".to_owned()
            } else {
                format!("YAML error: {}", e.info())
            };
            return Err(ConfigError {
                line: e.marker().line().max(1),
                column: e.marker().col() + 1,
                message,
            });
        }
        if end {
            break;
        }
    }
    Ok(loader.into_documents())
}
