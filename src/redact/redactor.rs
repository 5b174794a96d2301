//! Purpose: the [`Redactor`]: a shared, growing set of secrets and one Aho-Corasick matcher (a DFA) over every
//! form of them, leftmost-longest, that finds and masks them in text and in byte buffers.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::forms::forms;
use super::{DEFAULT_MIN_LENGTH, MASK};

/// Replaces secrets and their derived forms by [`MASK`]. Cheap to clone; clones share the secrets.
#[derive(Clone, Debug)]
pub struct Redactor {
    inner: Arc<RwLock<Inner>>,
    min_length: usize,
}

/// The secrets, their forms (sorted, for the partial-form check) and the matcher over the forms, behind one lock
/// so that they change together.
#[derive(Debug, Default)]
struct Inner {
    secrets: BTreeSet<String>,
    patterns: Vec<String>,
    matcher: Option<AhoCorasick>,
    /// Bytes of the longest pattern: a match crossing a line join starts at most this many bytes minus one before it.
    longest: usize,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(DEFAULT_MIN_LENGTH)
    }
}

impl Redactor {
    /// A redactor without secrets that ignores secrets shorter than `min_length` bytes (they would mask common
    /// words; the settings refuse such server secrets at start-up).
    pub fn new(min_length: usize) -> Redactor {
        Redactor {
            inner: Arc::new(RwLock::new(Inner::default())),
            min_length: min_length.max(1),
        }
    }

    /// Starts redacting `secret` and its derived forms. Returns false (and redacts nothing new) when it is
    /// shorter than the minimum length.
    pub fn add(&self, secret: &str) -> bool {
        if secret.len() < self.min_length {
            return false;
        }
        if self
            .inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .secrets
            .contains(secret)
        {
            return true;
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if !inner.secrets.insert(secret.to_string()) {
            return true;
        }
        let mut patterns: BTreeSet<String> = inner.patterns.drain(..).collect();
        patterns.extend(forms(secret));
        inner.patterns = patterns.into_iter().collect();
        inner.longest = inner.patterns.iter().map(String::len).max().unwrap_or(0);
        inner.matcher = matcher(&inner.patterns);
        true
    }

    /// A new redactor with this one's secrets and `more` (a job's secret parameters on top of the server's).
    pub fn with_more(&self, more: &[String]) -> Redactor {
        let out = Redactor::new(self.min_length);
        let secrets: Vec<String> = self
            .inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .secrets
            .iter()
            .cloned()
            .collect();
        let all: BTreeSet<&str> = secrets
            .iter()
            .map(String::as_str)
            .chain(more.iter().map(String::as_str))
            .filter(|s| s.len() >= self.min_length)
            .collect();
        if all.is_empty() {
            return out;
        }
        let mut inner = out.inner.write().unwrap_or_else(PoisonError::into_inner);
        let mut patterns = BTreeSet::new();
        for s in all {
            inner.secrets.insert(s.to_string());
            patterns.extend(forms(s));
        }
        inner.patterns = patterns.into_iter().collect();
        inner.longest = inner.patterns.iter().map(String::len).max().unwrap_or(0);
        inner.matcher = matcher(&inner.patterns);
        drop(inner);
        out
    }

    /// Bytes of the longest form it looks for (0 without secrets): how far back a match crossing a line join
    /// can start.
    pub fn longest_form(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .longest
    }

    /// Whether `text` ends with the first `min` or more bytes (but not all) of a secret form: the form may go on in
    /// the text that follows.
    pub fn ends_with_partial_form(&self, text: &[u8], min: usize) -> bool {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let longest = inner.longest.min(text.len() + 1);
        (min.max(1)..longest).any(|k| {
            let suffix = &text[text.len() - k..];
            let i = inner.patterns.partition_point(|p| p.as_bytes() < suffix);
            inner
                .patterns
                .get(i)
                .is_some_and(|p| p.len() > k && p.as_bytes().starts_with(suffix))
        })
    }

    /// Puts into `out` (emptied first) the byte ranges of `haystack` holding a secret form (leftmost-longest, not
    /// overlapping), in order.
    pub fn find_ranges(&self, haystack: &[u8], out: &mut Vec<std::ops::Range<usize>>) {
        out.clear();
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(matcher) = &inner.matcher {
            out.extend(matcher.find_iter(haystack).map(|m| m.range()));
        }
    }

    /// The shortest secret it redacts (`REDACT_MIN_LENGTH`).
    pub fn min_length(&self) -> usize {
        self.min_length
    }

    /// How many secrets it redacts.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .secrets
            .len()
    }

    /// Whether it redacts nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `text` with every secret form replaced by [`MASK`] (borrowed when nothing matched).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let Some(matcher) = &inner.matcher else {
            return Cow::Borrowed(text);
        };
        if !matcher.is_match(text) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        matcher.replace_all_with(text, &mut out, |_, _, dst| {
            dst.push_str(MASK);
            true
        });
        Cow::Owned(out)
    }
}

/// The matcher for `patterns`: a full DFA (every line of every step is scanned, and the forms of a few secrets are
/// too many patterns for the automatic choice to pick one), or the default kind if the DFA is too large.
fn matcher(patterns: &[String]) -> Option<AhoCorasick> {
    let mut builder = AhoCorasickBuilder::new();
    builder.match_kind(MatchKind::LeftmostLongest);
    builder
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(patterns)
        .or_else(|_| builder.kind(None).build(patterns))
        .map_err(|e| tracing::error!(error = %e, "cannot build the redaction matcher"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::Redactor;

    /// Short secrets are refused; several secrets are masked together; overlapping ones mask the longest.
    #[test]
    fn short_refused_and_several_secrets() {
        let r = Redactor::new(8);
        assert!(!r.add("short"));
        assert!(r.is_empty());
        assert_eq!(r.redact("short words stay"), "short words stay");
        assert!(r.add("first-secret"));
        assert!(r.add("first-secret-longer"));
        assert!(r.add("second-secret"));
        assert_eq!(r.len(), 3);
        assert_eq!(
            r.redact("a first-secret-longer b second-secret c first-secret"),
            "a *** b *** c ***"
        );
    }
}
