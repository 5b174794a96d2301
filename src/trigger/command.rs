//! Purpose: the PR comment command language. Markdown is stripped first (pulldown-cmark), so commands inside code
//! blocks, inline code and quotes never run; each remaining line that starts with the prefix is one command,
//! tokenised with shell-like quoting (`key="two words"`), and parsed into [`Command`] or a [`CommandError`] whose
//! text is the short reply the user sees.

use pulldown_cmark::{Event, Parser, Tag, TagEnd};

/// A command typed in a PR comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `/run <job> [key=value ...] [--dry-run]`.
    Run {
        /// The job (or command alias) name.
        job: String,
        /// `key=value` arguments in order.
        args: Vec<(String, String)>,
        /// Show the plan without running anything.
        dry_run: bool,
    },
    /// `/cancel [<job>]`: stop the running jobs of this PR (or only those of one job).
    Cancel {
        /// Only this job.
        job: Option<String>,
    },
    /// `/retry [<job>]`: run the failed steps of the last attempt again.
    Retry {
        /// Only this job.
        job: Option<String>,
    },
    /// `/status`: the jobs of this PR.
    Status,
    /// `/help`: what can be run here, by whom.
    Help,
    /// `/approve`: let the jobs of a fork PR run at its current head commit.
    Approve,
}

impl Command {
    /// The command as typed, normalised (for "this comment already ran that" bookkeeping).
    pub fn canonical(&self) -> String {
        match self {
            Command::Run { job, args, dry_run } => {
                let mut s = format!("run {job}");
                for (k, v) in args {
                    s.push_str(&format!(" {k}={v:?}"));
                }
                if *dry_run {
                    s.push_str(" --dry-run");
                }
                s
            }
            Command::Cancel { job } => format!("cancel {}", job.as_deref().unwrap_or("")),
            Command::Retry { job } => format!("retry {}", job.as_deref().unwrap_or("")),
            Command::Status => "status".into(),
            Command::Help => "help".into(),
            Command::Approve => "approve".into(),
        }
    }

    /// This command's entry in [`COMMANDS`] (what `/help` says of it). The match is exhaustive, so a new command
    /// does not compile until its help exists.
    pub fn doc(&self) -> &'static CommandDoc {
        match self {
            Command::Run { .. } => &COMMANDS[0],
            Command::Cancel { .. } => &COMMANDS[1],
            Command::Retry { .. } => &COMMANDS[2],
            Command::Status => &COMMANDS[3],
            Command::Help => &COMMANDS[4],
            Command::Approve => &COMMANDS[5],
        }
    }
}

/// A command line that could not be understood; `Display` is the reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// A name close to one of ours.
    #[error("unknown command `{prefix}{name}`; did you mean `{prefix}{suggestion}`?")]
    Unknown {
        /// The prefix.
        prefix: String,
        /// What was typed.
        name: String,
        /// The nearest command.
        suggestion: String,
    },
    /// Arguments that do not fit the command.
    #[error("`{line}`: {reason}")]
    BadArguments {
        /// The command line.
        line: String,
        /// What is wrong.
        reason: String,
    },
}

/// One comment command as `/help` explains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandDoc {
    /// The command word (after the prefix).
    pub name: &'static str,
    /// Its arguments, as typed after the word.
    pub usage: &'static str,
    /// Who may use it.
    pub who: &'static str,
    /// What it does.
    pub what: &'static str,
}

/// Every comment command: the one table the parser's names and `/help` are made from.
pub const COMMANDS: [CommandDoc; 6] = [
    CommandDoc {
        name: "run",
        usage: "<job> [key=value …] [--dry-run]",
        who: "the job's permission (write by default)",
        what: "Starts the job on this pull request's head commit; `--dry-run` shows the plan and starts nothing.",
    },
    CommandDoc {
        name: "cancel",
        usage: "[<job>]",
        who: "write",
        what: "Cancels this pull request's running jobs (or only those of `<job>`).",
    },
    CommandDoc {
        name: "retry",
        usage: "[<job>]",
        who: "write",
        what: "Runs again the steps that did not succeed in the latest ended job (or only `<job>`), as a new attempt.",
    },
    CommandDoc {
        name: "status",
        usage: "",
        who: "anyone",
        what: "Lists this pull request's jobs with their attempt, status and page.",
    },
    CommandDoc {
        name: "help",
        usage: "",
        who: "anyone",
        what: "This help.",
    },
    CommandDoc {
        name: "approve",
        usage: "",
        who: "write",
        what: "For a pull request from a fork: lets jobs run on its current head commit (a new push needs a new approval).",
    },
];

/// The `/help` section on comment commands, made from [`COMMANDS`] with the repository's `prefix`.
pub fn commands_markdown(prefix: &str) -> String {
    let mut out = String::from("\n## Commands\n\n| command | who | what |\n| --- | --- | --- |\n");
    for c in COMMANDS {
        let usage = if c.usage.is_empty() {
            format!("{prefix}{}", c.name)
        } else {
            format!("{prefix}{} {}", c.name, c.usage)
        };
        out.push_str(&format!("| `{usage}` | {} | {} |\n", c.who, c.what));
    }
    out.push_str(
        "\nA comment may hold several commands, one per line (at most 10); commands in code, quotes or \
         inline code are ignored.\n",
    );
    out
}

/// The visible text of a Markdown comment, without code blocks, inline code, block quotes or HTML.
fn visible_lines(body: &str) -> Vec<String> {
    let mut lines = vec![String::new()];
    let mut hidden = 0usize;
    for event in Parser::new(body) {
        match event {
            Event::Start(Tag::CodeBlock(_) | Tag::BlockQuote(_) | Tag::HtmlBlock) => hidden += 1,
            Event::End(TagEnd::CodeBlock | TagEnd::BlockQuote(_) | TagEnd::HtmlBlock) => {
                hidden = hidden.saturating_sub(1)
            }
            Event::Text(t) if hidden == 0 => {
                if let Some(last) = lines.last_mut() {
                    last.push_str(&t);
                }
            }
            Event::Code(_) if hidden == 0 => {
                // Inline code breaks the line so `/run x` inside backticks never starts a command.
                if let Some(last) = lines.last_mut() {
                    last.push('\u{1}');
                }
            }
            Event::SoftBreak
            | Event::HardBreak
            | Event::End(TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::Item) => {
                lines.push(String::new())
            }
            _ => {}
        }
    }
    lines
        .into_iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Splits a command line into words: whitespace separates, double or single quotes group, `\"` escapes in
/// double quotes. An unterminated quote is an error.
pub fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_word = true;
                let quote = c;
                let mut closed = false;
                while let Some(d) = chars.next() {
                    if d == quote {
                        closed = true;
                        break;
                    }
                    if d == '\\'
                        && quote == '"'
                        && let Some(&n) = chars.peek()
                        && (n == '"' || n == '\\')
                    {
                        cur.push(n);
                        chars.next();
                        continue;
                    }
                    cur.push(d);
                }
                if !closed {
                    return Err(format!("unterminated {quote} quote"));
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn parse_line(line: &str, prefix: &str) -> Option<Result<Command, CommandError>> {
    let rest = line.strip_prefix(prefix)?;
    let name_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let name = &rest[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    let bad = |reason: String| {
        Some(Err(CommandError::BadArguments {
            line: line.chars().take(200).collect(),
            reason,
        }))
    };
    let words = match tokenize(&rest[name_end..]) {
        Ok(w) => w,
        Err(e) => return bad(e),
    };
    let lower = name.to_ascii_lowercase();
    let at_most_one = |words: &[String]| -> Result<Option<String>, String> {
        match words {
            [] => Ok(None),
            [one] if !one.contains('=') && !one.starts_with('-') => Ok(Some(one.clone())),
            _ => Err(format!(
                "takes at most a job name, got `{}`",
                words.join(" ")
            )),
        }
    };
    let command = match lower.as_str() {
        "run" => {
            let mut iter = words.into_iter();
            let Some(job) = iter.next() else {
                return bad(
                    "which job? Use `/run <job> [key=value ...]`; `/help` lists the jobs".into(),
                );
            };
            if job.contains('=') || job.starts_with('-') {
                return bad("the job name comes first: `/run <job> [key=value ...]`".into());
            }
            let mut args = Vec::new();
            let mut dry_run = false;
            for w in iter {
                if w == "--dry-run" {
                    dry_run = true;
                } else if let Some((k, v)) = w.split_once('=') {
                    if k.is_empty() {
                        return bad(format!("`{w}` has no parameter name before `=`"));
                    }
                    args.push((k.to_string(), v.to_string()));
                } else {
                    return bad(format!(
                        "`{w}` is not `key=value` (quote values with spaces: key=\"two words\")"
                    ));
                }
            }
            Command::Run { job, args, dry_run }
        }
        "cancel" => match at_most_one(&words) {
            Ok(job) => Command::Cancel { job },
            Err(e) => return bad(e),
        },
        "retry" => match at_most_one(&words) {
            Ok(job) => Command::Retry { job },
            Err(e) => return bad(e),
        },
        "status" | "help" | "approve" if !words.is_empty() => {
            return bad(format!("`{prefix}{lower}` takes no arguments"));
        }
        "status" => Command::Status,
        "help" => Command::Help,
        "approve" => Command::Approve,
        _ => {
            // Other bots share the `/` prefix: only answer names that look like a typo of ours.
            let best = COMMANDS
                .iter()
                .map(|c| (strsim::levenshtein(c.name, &lower), c.name))
                .min()
                .filter(|(d, _)| *d <= 2 && lower.len() >= 3);
            return best.map(|(_, suggestion)| {
                Err(CommandError::Unknown {
                    prefix: prefix.to_string(),
                    name: name.to_string(),
                    suggestion: suggestion.to_string(),
                })
            });
        }
    };
    Some(Ok(command))
}

/// Every command in a comment, in order. Lines that are not commands are skipped; so are names that are not close
/// to ours (they belong to other bots).
pub fn parse_comment(body: &str, prefix: &str) -> Vec<Result<Command, CommandError>> {
    if prefix.is_empty() {
        return Vec::new();
    }
    visible_lines(body)
        .iter()
        .filter_map(|l| parse_line(l, prefix))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_command_has_its_own_help_entry() {
        for doc in &COMMANDS {
            let typed = match doc.name {
                "run" => "/run deploy".to_string(),
                other => format!("/{other}"),
            };
            let parsed = parse_comment(&typed, "/");
            let Some(Ok(cmd)) = parsed.first() else {
                panic!("`{typed}` parses: {parsed:?}");
            };
            assert_eq!(
                cmd.doc().name,
                doc.name,
                "`{typed}` is documented by its own entry"
            );
        }
    }

    use super::*;

    fn run(job: &str, args: &[(&str, &str)], dry_run: bool) -> Result<Command, CommandError> {
        Ok(Command::Run {
            job: job.into(),
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dry_run,
        })
    }

    #[test]
    fn parse_table() {
        let cases: Vec<(&str, Vec<Result<Command, CommandError>>)> = vec![
            ("/run build", vec![run("build", &[], false)]),
            (
                "/run deploy env=staging",
                vec![run("deploy", &[("env", "staging")], false)],
            ),
            (
                r#"/run deploy msg="two words" x='a b' --dry-run"#,
                vec![run("deploy", &[("msg", "two words"), ("x", "a b")], true)],
            ),
            (
                "please\n/run a\n/run b k=v\nthanks",
                vec![run("a", &[], false), run("b", &[("k", "v")], false)],
            ),
            ("```\n/run build\n```", vec![]),
            ("> /run build", vec![]),
            ("`/run build`", vec![]),
            ("    /run build", vec![]),
            ("text /run build", vec![]),
            ("/assign @me", vec![]),
            ("/cancel", vec![Ok(Command::Cancel { job: None })]),
            (
                "/retry build",
                vec![Ok(Command::Retry {
                    job: Some("build".into()),
                })],
            ),
            (
                "/status\n/help\n/approve",
                vec![Ok(Command::Status), Ok(Command::Help), Ok(Command::Approve)],
            ),
            (
                "/rnu build",
                vec![Err(CommandError::Unknown {
                    prefix: "/".into(),
                    name: "rnu".into(),
                    suggestion: "run".into(),
                })],
            ),
            ("/RUN build", vec![run("build", &[], false)]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_comment(input, "/"), want, "{input:?}");
        }
    }

    #[test]
    fn bad_arguments_say_why() {
        let cases = [
            ("/run", "which job"),
            ("/run env=x", "job name comes first"),
            ("/run build oops", "not `key=value`"),
            ("/run build =v", "no parameter name"),
            (r#"/run build k="open"#, "unterminated"),
            ("/status now", "takes no arguments"),
            ("/cancel a b", "at most a job name"),
        ];
        for (input, needle) in cases {
            let got = parse_comment(input, "/");
            let text = match got.as_slice() {
                [Err(e)] => e.to_string(),
                other => panic!("{input}: {other:?}"),
            };
            assert!(text.contains(needle), "{input}: {text}");
        }
    }

    #[test]
    fn custom_prefix() {
        assert_eq!(
            parse_comment("!run build\n/run other", "!"),
            vec![run("build", &[], false)]
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(body in ".{0,400}") {
            let _ = parse_comment(&body, "/");
        }
    }
}
