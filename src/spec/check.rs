//! Purpose: `boomerang check-config <file>`: reads a config file from disk and reports its errors as
//! `path:line:column: message`, or a short list of its jobs. The only part of the config language that does I/O.

use std::path::Path;

use super::{MAX_CONFIG_BYTES, parse};

/// Checks a config file on disk for `boomerang check-config <file>`.
///
/// Returns the report to print and whether the file is valid. Errors come out as
/// `path:line:column: message`, one per line; a valid file gets a short list of its jobs.
pub fn check_file(path: &Path) -> (String, bool) {
    let shown = path.display();
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return (format!("{shown}: cannot read the file: {e}\n"), false),
    };
    if text.len() > MAX_CONFIG_BYTES {
        return (
            format!(
                "{shown}:1:1: the file is {} bytes; the limit is {MAX_CONFIG_BYTES} bytes (1 MiB)\n",
                text.len()
            ),
            false,
        );
    }
    let text = match String::from_utf8(text) {
        Ok(t) => t,
        Err(e) => {
            let (line, column) = position_of_byte(e.as_bytes(), e.utf8_error().valid_up_to());
            return (
                format!("{shown}:{line}:{column}: the file is not valid UTF-8\n"),
                false,
            );
        }
    };
    match parse(&text) {
        Ok(config) => {
            let mut out = format!(
                "{shown}: OK, {} job{}\n",
                config.jobs.len(),
                if config.jobs.len() == 1 { "" } else { "s" }
            );
            for job in &config.jobs {
                out.push_str(&format!(
                    "  {} ({} step{}; {})",
                    job.name,
                    job.steps.len(),
                    if job.steps.len() == 1 { "" } else { "s" },
                    job.triggers.describe()
                ));
                if let Some(d) = &job.description {
                    out.push_str(&format!(": {d}"));
                }
                out.push('\n');
            }
            (out, true)
        }
        Err(errors) => {
            let mut out = String::new();
            for e in &errors.0 {
                out.push_str(&format!("{shown}:{}:{}: {}\n", e.line, e.column, e.message));
            }
            (out, false)
        }
    }
}

/// 1-based line and column (in characters) of byte offset `at` in `bytes`.
fn position_of_byte(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = bytes.get(..at).unwrap_or(bytes);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(before.get(line_start..).unwrap_or(&[]))
        .chars()
        .count()
        + 1;
    (line, column)
}
