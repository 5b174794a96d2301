//! Purpose: secret redaction. A [`Redactor`] holds a set of secrets and replaces each of them, and the forms a
//! secret takes when a step or a payload re-encodes it, by `***`. Matching is one Aho-Corasick pass over the text,
//! leftmost-longest. The forms (see [`forms`]): the raw text; base64 (standard and URL-safe, padded or not, and at
//! each of the three alignments a secret can have inside a longer base64 text); hex (lower and upper case);
//! URL-encoding (`+` or `%20` for spaces, upper- or lower-case escapes, keeping `/` or not, RFC 3986 and
//! `encodeURIComponent` sets); JSON escaping (once, twice, with `\/`, with `\uXXXX` for non-ASCII and for `<>&`);
//! the Actions command escaping (`%25`, `%0D`, `%0A`, and `%3A`/`%2C` in properties); shell quoting (`printf %q`'s
//! backslashes, its `$'…'` form, and `'\''` inside single quotes); base32 (RFC 4648, from the start of the
//! encoding) and UTF-16 (little and big endian).
//!
//! Scope: the server's secrets (`SECRETS`) mask everything; a job's secret parameters mask only that job's output
//! and requests. [`Redactors`] holds the server's redactor and one per job (server secrets plus the job's), built
//! when the engine loads the job.
//!
//! Redaction is applied where text leaves boomerang's hands: each step log line before it is stored (across line
//! joins, see [`crate::logs`]), the free-text fields of requests sent to GitHub ([`Redactor::redact_fields`]: never
//! keys, enums, ids or URLs), and the API's answers.
//!
//! Layout: `redactor.rs` holds [`Redactor`] and its matcher, `forms.rs` the list of forms a secret is searched in
//! and `encode.rs` the encoders behind them, `fields.rs` the redaction of JSON values and of the free-text fields
//! of request bodies, and `registry.rs` the server's and the jobs' redactors ([`Redactors`]).

mod encode;
mod fields;
mod forms;
mod redactor;
mod registry;

pub use fields::{CHECK_RUN_FIELDS, DISPATCH_FIELDS};
pub use forms::forms;
pub use redactor::Redactor;
pub use registry::Redactors;

/// What a secret is replaced by.
pub const MASK: &str = "***";

/// Default shortest secret accepted (`REDACT_MIN_LENGTH`).
pub const DEFAULT_MIN_LENGTH: usize = 8;
