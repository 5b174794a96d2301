//! Purpose: the server's own log lines on stderr: human text by default, or one JSON object per line with
//! `LOG_FORMAT=json` (for a log pipeline). Either way each line carries the fields of the spans it happened in: the
//! `job` span (its id) around everything a job's runner does, the `delivery` span (its GUID) around a delivery's
//! processing. `RUST_LOG` filters as usual.

pub use crate::config::LogFormat;

/// Installs the process's subscriber: `RUST_LOG`, or `default` when unset, in `format`.
pub fn init(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in a log file or a collector.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            // The event's own fields at the top level, the innermost span's fields under `span`, every enclosing
            // span's under `spans`.
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}
