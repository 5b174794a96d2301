//! Purpose: turning step output into check run annotations. Two sources: the Actions workflow-command syntax
//! (`::error file=app.rs,line=3,col=5,title=T::message`, `::warning …`, `::notice …`) and a job's problem matchers
//! (regexes with the named groups `file`, `line`, `col`, `severity`, `message`). A [`Detector`] runs on every line a
//! step prints; what it finds is stored beside the step logs (see [`crate::logs::LogStore::append_annotations`]) and
//! sent with the check run updates, at most [`MAX_PER_REQUEST`] per request (GitHub appends them across updates).
//! Pure: no files and no config parsing here; the log store and the config reader call it.

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashSet;

/// GitHub's limit on annotations per check run request.
pub const MAX_PER_REQUEST: usize = 50;
/// Most annotations kept per attempt (a step printing millions of warnings must not cost millions of requests).
pub const MAX_PER_ATTEMPT: usize = 1000;
/// GitHub's limit on an annotation's `message`, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// GitHub's limit on an annotation's `title`, in characters.
pub const MAX_TITLE_CHARS: usize = 255;
/// The path of an annotation that names no file (GitHub requires one).
pub const DEFAULT_PATH: &str = ".github/boomerang.yml";
/// Lines shown before and after the first error in the check run's excerpt.
pub const EXCERPT_CONTEXT: u64 = 5;

/// An annotation's level, in GitHub's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// `::notice`.
    Notice,
    /// `::warning`.
    Warning,
    /// `::error`.
    Failure,
}

impl Level {
    /// GitHub's `annotation_level`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Notice => "notice",
            Level::Warning => "warning",
            Level::Failure => "failure",
        }
    }

    /// Reads a severity word as tools print it (`error`, `warning`, `note`, …).
    pub fn from_word(word: &str) -> Option<Level> {
        match word.trim().to_ascii_lowercase().as_str() {
            "error" | "err" | "failure" | "fatal" => Some(Level::Failure),
            "warning" | "warn" => Some(Level::Warning),
            "notice" | "note" | "info" => Some(Level::Notice),
            _ => None,
        }
    }
}

/// One annotation found in a step's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    /// The step whose output held it.
    pub step: String,
    /// The line of the step's log that held it, when known (for the excerpt and its link).
    pub log_line: Option<u64>,
    /// The file it is about (GitHub requires one; [`DEFAULT_PATH`] when the output named none).
    pub path: String,
    /// 1-based first line.
    pub start_line: u64,
    /// 1-based last line.
    pub end_line: u64,
    /// 1-based first column (sent only on a one-line annotation).
    pub start_column: Option<u64>,
    /// 1-based last column.
    pub end_column: Option<u64>,
    /// How bad it is.
    pub level: Level,
    /// What it says (at most [`MAX_MESSAGE_BYTES`]).
    pub message: String,
    /// A title (at most [`MAX_TITLE_CHARS`]).
    pub title: Option<String>,
}

impl Annotation {
    /// What makes two annotations the same: path, line, level and message.
    pub fn dedup_key(&self) -> (String, u64, Level, String) {
        (
            self.path.clone(),
            self.start_line,
            self.level,
            self.message.clone(),
        )
    }

    /// The annotation in GitHub's shape.
    pub fn to_github(&self) -> Value {
        let mut v = json!({
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "annotation_level": self.level.as_str(),
            "message": self.message,
        });
        if self.start_line == self.end_line
            && let Some(c) = self.start_column
        {
            v["start_column"] = json!(c);
            v["end_column"] = json!(self.end_column.unwrap_or(c).max(c));
        }
        if let Some(t) = &self.title {
            v["title"] = json!(t);
        }
        v
    }

    /// Cuts the fields to GitHub's limits and fills what GitHub requires.
    fn fit(mut self) -> Annotation {
        if self.path.trim().is_empty() {
            self.path = DEFAULT_PATH.to_string();
        }
        self.start_line = self.start_line.max(1);
        self.end_line = self.end_line.max(self.start_line);
        if self.message.trim().is_empty() {
            self.message = self.level.as_str().to_string();
        }
        if self.message.len() > MAX_MESSAGE_BYTES {
            let mut cut = MAX_MESSAGE_BYTES - 3;
            while !self.message.is_char_boundary(cut) {
                cut -= 1;
            }
            self.message.truncate(cut);
            self.message.push('…');
        }
        if let Some(t) = &mut self.title {
            if t.chars().count() > MAX_TITLE_CHARS {
                *t = t.chars().take(MAX_TITLE_CHARS - 1).collect::<String>() + "…";
            }
            if t.trim().is_empty() {
                self.title = None;
            }
        }
        self
    }
}

/// Undoes the escapes of a workflow command's message (`%25`, `%0D`, `%0A`) or property (also `%3A`, `%2C`).
fn unescape(text: &str, property: bool) -> String {
    let mut out = text.replace("%0D", "\r").replace("%0A", "\n");
    if property {
        out = out.replace("%3A", ":").replace("%2C", ",");
    }
    out.replace("%25", "%")
}

/// Reads an Actions workflow command (`::error file=a.rs,line=3,col=5,endColumn=7,title=T::message`, `::warning`,
/// `::notice`) into an annotation of `step`. Anything else (other commands, plain text) is `None`.
pub fn parse_workflow_command(text: &str, step: &str, log_line: Option<u64>) -> Option<Annotation> {
    let rest = text.trim_start().strip_prefix("::")?;
    let (head, message) = rest.split_once("::")?;
    let (command, props) = match head.split_once(' ') {
        Some((c, p)) => (c, p),
        None => (head, ""),
    };
    let level = match command {
        "error" => Level::Failure,
        "warning" => Level::Warning,
        "notice" => Level::Notice,
        _ => return None,
    };
    let mut a = Annotation {
        step: step.to_string(),
        log_line,
        path: String::new(),
        start_line: 1,
        end_line: 0,
        start_column: None,
        end_column: None,
        level,
        message: unescape(message.trim_end_matches('\r'), false),
        title: None,
    };
    for prop in props.split(',').filter(|p| !p.trim().is_empty()) {
        let (key, value) = prop.split_once('=')?;
        let value = unescape(value.trim(), true);
        let number = || value.parse::<u64>().ok().filter(|n| *n > 0);
        match key.trim() {
            "file" => a.path = value.trim_start_matches("./").to_string(),
            "line" => a.start_line = number().unwrap_or(1),
            "endLine" => a.end_line = number().unwrap_or(0),
            "col" => a.start_column = number(),
            "endColumn" => a.end_column = number(),
            "title" => a.title = Some(value),
            _ => {}
        }
    }
    Some(a.fit())
}

/// A problem matcher: a regex whose named groups (`file`, `line`, `col`, `severity`, `message`) make an annotation
/// of each matching output line. Part of a job's config ([`crate::spec`] reads it from the YAML and checks it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemMatcher {
    /// The regex (Rust `regex` syntax), checked when the config is read.
    pub regex: String,
    /// The level when the regex has no `severity` group or it says something else: `error` (the default),
    /// `warning` or `notice`.
    pub severity: Option<String>,
}

/// The named groups a problem matcher may use.
pub const MATCHER_GROUPS: &[&str] = &["file", "line", "col", "severity", "message"];

/// A problem matcher ready to run.
#[derive(Clone, Debug)]
pub struct Matcher {
    regex: Regex,
    default_level: Level,
}

impl Matcher {
    /// Compiles a matcher from the repo config (validated there, so failures here mean an old record).
    pub fn new(spec: &ProblemMatcher) -> Result<Matcher, String> {
        let regex = Regex::new(&spec.regex).map_err(|e| e.to_string())?;
        Ok(Matcher {
            regex,
            default_level: spec
                .severity
                .as_deref()
                .and_then(Level::from_word)
                .unwrap_or(Level::Failure),
        })
    }

    /// The annotation a line of `step` makes, if it matches.
    pub fn annotate(&self, text: &str, step: &str, log_line: Option<u64>) -> Option<Annotation> {
        let caps = self.regex.captures(text)?;
        let group = |name: &str| caps.name(name).map(|m| m.as_str());
        let number = |name: &str| group(name).and_then(|s| s.trim().parse::<u64>().ok());
        let line = number("line").filter(|n| *n > 0).unwrap_or(1);
        Some(
            Annotation {
                step: step.to_string(),
                log_line,
                path: group("file")
                    .map(|f| f.trim().trim_start_matches("./").to_string())
                    .unwrap_or_default(),
                start_line: line,
                end_line: line,
                start_column: number("col").filter(|n| *n > 0),
                end_column: None,
                level: group("severity")
                    .and_then(Level::from_word)
                    .unwrap_or(self.default_level),
                message: group("message").unwrap_or(text).trim().to_string(),
                title: None,
            }
            .fit(),
        )
    }
}

/// Finds the annotations in one step's output, each once.
#[derive(Debug)]
pub struct Detector {
    step: String,
    matchers: Vec<Matcher>,
    seen: HashSet<(String, u64, Level, String)>,
}

impl Detector {
    /// A detector for `step` with the job's problem matchers (a matcher that does not compile is skipped).
    pub fn new(step: &str, matchers: &[ProblemMatcher]) -> Detector {
        Detector {
            step: step.to_string(),
            matchers: matchers
                .iter()
                .filter_map(|m| match Matcher::new(m) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping a problem matcher that does not compile");
                        None
                    }
                })
                .collect(),
            seen: HashSet::new(),
        }
    }

    /// The annotation a line makes, unless it made the same one before or the attempt's cap is reached.
    pub fn detect(&mut self, text: &str, log_line: Option<u64>) -> Option<Annotation> {
        if self.seen.len() >= MAX_PER_ATTEMPT {
            return None;
        }
        let found = parse_workflow_command(text, &self.step, log_line).or_else(|| {
            self.matchers
                .iter()
                .find_map(|m| m.annotate(text, &self.step, log_line))
        })?;
        self.seen.insert(found.dedup_key()).then_some(found)
    }
}

/// Keeps the first of each annotation (by [`Annotation::dedup_key`]), at most [`MAX_PER_ATTEMPT`], in order.
pub fn dedup(all: Vec<Annotation>) -> Vec<Annotation> {
    let mut seen = HashSet::new();
    all.into_iter()
        .filter(|a| seen.insert(a.dedup_key()))
        .take(MAX_PER_ATTEMPT)
        .collect()
}

/// The lines around the first error of an attempt, shown at the top of its check run text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excerpt {
    /// The step.
    pub step: String,
    /// The line of the step's log holding the error.
    pub line: u64,
    /// The error's message.
    pub message: String,
    /// The lines around it, numbered.
    pub lines: Vec<(u64, String)>,
}

/// What the next check run request of an attempt carries about annotations.
#[derive(Clone, Debug, Default)]
pub struct Pending {
    /// The next annotations not yet sent (at most [`MAX_PER_REQUEST`]).
    pub batch: Vec<Annotation>,
    /// How many were sent before this batch.
    pub sent: u64,
    /// Whether more remain after this batch.
    pub more: bool,
    /// The lines around the attempt's first error.
    pub excerpt: Option<Excerpt>,
}

/// What the next check run request of an attempt carries, from its stored annotations `all` (in the order they were
/// found): the next batch after the `sent` first ones, and the excerpt around the first failure, whose numbered log
/// lines `read(step, from_line, count)` gives (`None` when they cannot be read).
pub fn pending(
    all: &[Annotation],
    sent: u64,
    read: impl FnOnce(&str, u64, usize) -> Option<Vec<(u64, String)>>,
) -> Pending {
    let start = usize::try_from(sent).unwrap_or(usize::MAX).min(all.len());
    let batch: Vec<Annotation> = all[start..].iter().take(MAX_PER_REQUEST).cloned().collect();
    let more = start + batch.len() < all.len();
    let excerpt = all
        .iter()
        .find(|a| a.level == Level::Failure && a.log_line.is_some())
        .and_then(|a| {
            let line = a.log_line?;
            let from = line.saturating_sub(EXCERPT_CONTEXT).max(1);
            let lines = read(&a.step, from, (2 * EXCERPT_CONTEXT + 1) as usize)?;
            Some(Excerpt {
                step: a.step.clone(),
                line,
                message: a.message.clone(),
                lines,
            })
        });
    Pending {
        batch,
        sent,
        more,
        excerpt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(re: &str) -> Matcher {
        Matcher::new(&ProblemMatcher {
            regex: re.into(),
            severity: None,
        })
        .expect("valid regex")
    }

    /// The workflow-command table: levels, properties, escapes, and what is not a command.
    #[test]
    fn workflow_commands() {
        let a = parse_workflow_command(
            "::error file=app.rs,line=3,col=5,title=T::boom",
            "s",
            Some(7),
        )
        .expect("an error command");
        assert_eq!(
            (
                a.path.as_str(),
                a.start_line,
                a.end_line,
                a.start_column,
                a.level
            ),
            ("app.rs", 3, 3, Some(5), Level::Failure)
        );
        assert_eq!(
            (a.message.as_str(), a.title.as_deref(), a.log_line),
            ("boom", Some("T"), Some(7))
        );
        let w =
            parse_workflow_command("  ::warning file=a.rs,line=12::w", "s", None).expect("warning");
        assert_eq!(
            (w.level, w.start_line, w.message.as_str()),
            (Level::Warning, 12, "w")
        );
        let n = parse_workflow_command("::notice::just so you know", "s", None).expect("notice");
        assert_eq!(
            (n.level, n.path.as_str(), n.start_line),
            (Level::Notice, DEFAULT_PATH, 1)
        );
        let e = parse_workflow_command("::error title=a%3Ab%2Cc::100%25%0Adone", "s", None)
            .expect("escapes");
        assert_eq!(
            (e.title.as_deref(), e.message.as_str()),
            (Some("a:b,c"), "100%\ndone")
        );
        let r = parse_workflow_command("::error file=a.rs,line=4,endLine=9::range", "s", None)
            .expect("range");
        assert_eq!((r.start_line, r.end_line), (4, 9));
        for not in [
            "::debug::x",
            "::set-output name=a::b",
            "error: x",
            "::error",
            "text ::error::x",
            "",
        ] {
            assert_eq!(parse_workflow_command(not, "s", None), None, "{not:?}");
        }
        let bad_line = parse_workflow_command("::error line=zero::x", "s", None).expect("bad line");
        assert_eq!(bad_line.start_line, 1);
    }

    /// GitHub's shape: columns only on a one-line annotation; limits are applied.
    #[test]
    fn github_shape_and_limits() {
        let a =
            parse_workflow_command("::error file=a.rs,line=3,col=5::m", "s", None).expect("cmd");
        assert_eq!(
            a.to_github(),
            json!({"path": "a.rs", "start_line": 3, "end_line": 3, "start_column": 5, "end_column": 5,
                   "annotation_level": "failure", "message": "m"})
        );
        let multi =
            parse_workflow_command("::error file=a.rs,line=3,endLine=4,col=5::m", "s", None)
                .expect("cmd");
        assert!(multi.to_github().get("start_column").is_none());
        let long = format!(
            "::warning title={}::{}",
            "t".repeat(300),
            "é".repeat(40_000)
        );
        let l = parse_workflow_command(&long, "s", None).expect("long");
        assert!(l.message.len() <= MAX_MESSAGE_BYTES);
        assert_eq!(l.title.map(|t| t.chars().count()), Some(MAX_TITLE_CHARS));
    }

    /// A problem matcher with every named group, severity words, and a matcher without groups.
    #[test]
    fn problem_matchers() {
        let m = matcher(
            r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning): (?P<message>.*)$",
        );
        let a = m
            .annotate("src/x.rs:3:5: error: boom", "build", Some(2))
            .expect("match");
        assert_eq!(
            (
                a.path.as_str(),
                a.start_line,
                a.start_column,
                a.level,
                a.message.as_str()
            ),
            ("src/x.rs", 3, Some(5), Level::Failure, "boom")
        );
        let w = m
            .annotate("./b.rs:9:1: warning: hmm", "build", None)
            .expect("match");
        assert_eq!((w.path.as_str(), w.level), ("b.rs", Level::Warning));
        assert!(m.annotate("all good", "build", None).is_none());
        let bare = matcher(r"FAILED");
        let b = bare.annotate("test x FAILED", "t", None).expect("match");
        assert_eq!(
            (b.path.as_str(), b.level, b.message.as_str()),
            (DEFAULT_PATH, Level::Failure, "test x FAILED")
        );
        let notices = Matcher::new(&ProblemMatcher {
            regex: "^note: (?P<message>.*)".into(),
            severity: Some("notice".into()),
        })
        .expect("valid");
        assert_eq!(
            notices.annotate("note: x", "t", None).map(|a| a.level),
            Some(Level::Notice)
        );
    }

    /// The detector reports each annotation once, and [`dedup`] keeps the first of each in order.
    #[test]
    fn detector_deduplicates() {
        let mut d = Detector::new("s", &[]);
        assert!(d.detect("::warning file=a.rs,line=1::w", Some(1)).is_some());
        assert!(d.detect("::warning file=a.rs,line=1::w", Some(2)).is_none());
        assert!(d.detect("::error file=a.rs,line=1::w", Some(3)).is_some());
        assert!(d.detect("plain", Some(4)).is_none());
        let one =
            parse_workflow_command("::warning file=a.rs,line=1::w", "s", Some(1)).expect("cmd");
        let two =
            parse_workflow_command("::warning file=a.rs,line=2::w", "s", Some(2)).expect("cmd");
        let again =
            parse_workflow_command("::warning file=a.rs,line=1::w", "t", Some(9)).expect("cmd");
        assert_eq!(dedup(vec![one.clone(), two.clone(), again]), vec![one, two]);
    }

    /// The next batch starts after the ones sent; the excerpt is read around the first failure with a log line.
    #[test]
    fn pending_batch_and_excerpt() {
        let note = |n: u64, level: &str| {
            parse_workflow_command(&format!("::{level} file=a.rs,line={n}::m{n}"), "s", Some(n))
                .expect("cmd")
        };
        let all: Vec<Annotation> = (1..=60)
            .map(|n| note(n, if n == 7 { "error" } else { "warning" }))
            .collect();
        let mut asked = None;
        let p = pending(&all, 5, |step, from, count| {
            asked = Some((step.to_string(), from, count));
            Some(vec![(from, "x".into())])
        });
        assert_eq!((p.sent, p.batch.len(), p.more), (5, MAX_PER_REQUEST, true));
        assert_eq!(p.batch[0].message, "m6");
        assert_eq!(asked, Some(("s".to_string(), 2, 11)));
        let excerpt = p.excerpt.expect("an excerpt");
        assert_eq!((excerpt.line, excerpt.message.as_str()), (7, "m7"));
        let last = pending(&all, 55, |_, _, _| None);
        assert_eq!(
            (last.batch.len(), last.more, last.excerpt),
            (5, false, None)
        );
        let past = pending(&all, 99, |_, _, _| None);
        assert_eq!((past.batch.len(), past.more), (0, false));
    }
}
