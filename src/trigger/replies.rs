//! Purpose: every sentence boomerang writes in a PR comment, in one place, so the voice stays short and consistent
//! and each text is tested. Every value from outside (a job name typed in a comment, a branch, a config error that
//! quotes the file) goes through [`crate::report::markdown`], so it renders literally.

use crate::report::markdown::{code, text};
use crate::spec::{ConfigErrors, Permission};

/// The config file boomerang reads from the default branch.
pub const CONFIG_PATH: &str = ".github/boomerang.yml";

/// A commenter lacks the permission a job needs.
pub fn not_allowed(login: &str, job: &str, needed: Permission, role: &str) -> String {
    format!(
        "@{} {} needs **{needed}** access to this repository; you have **{}**. Nothing was run.",
        text(login),
        code(job),
        text(role)
    )
}

/// No config on the default branch.
pub fn no_config(branch: &str) -> String {
    format!(
        "There is no `{CONFIG_PATH}` on {}, so there are no jobs to run. See boomerang's README for an example.",
        code(branch)
    )
}

/// The config does not parse; quotes every error with its line.
pub fn invalid_config(branch: &str, errors: &ConfigErrors) -> String {
    let mut body = String::new();
    for e in errors.0.iter().take(20) {
        // One line per error, whatever the message quotes from the file.
        let message = e.message.replace(['\r', '\n'], " ");
        body.push_str(&format!(
            "{CONFIG_PATH}:{}:{}: {message}\n",
            e.line, e.column
        ));
    }
    if errors.0.len() > 20 {
        body.push_str(&format!("… and {} more\n", errors.0.len() - 20));
    }
    // A fence longer than any run of backticks in the block, so no message can close it.
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!(
        "`{CONFIG_PATH}` on {} is invalid, so nothing was run:\n\n{fence}\n{body}{fence}",
        code(branch)
    )
}

/// An unknown job, with a suggestion when one is close.
pub fn unknown_job(prefix: &str, job: &str, suggestion: Option<&str>) -> String {
    let help = code(&format!("{prefix}help"));
    match suggestion {
        Some(s) => format!(
            "There is no job {}; did you mean {}? ({help} lists the jobs.)",
            code(job),
            code(&format!("{prefix}run {s}"))
        ),
        None => format!(
            "There is no job {} that can be run by a comment. {help} lists the jobs.",
            code(job)
        ),
    }
}

/// Commands only work on pull requests.
pub fn not_a_pull_request() -> String {
    "Commands work on pull requests only: a job needs a commit to run on.".into()
}

/// A fork PR waiting for approval.
pub fn fork_needs_approval(prefix: &str, sha: &str) -> String {
    format!(
        "This pull request comes from a fork, so its jobs run only after someone with write access approves \
         commit {} with {}.",
        code(short(sha)),
        code(&format!("{prefix}approve"))
    )
}

/// Approval recorded.
pub fn approved(login: &str, sha: &str) -> String {
    format!(
        "@{} approved commit {}: jobs may now run on it. A new push needs a new approval.",
        text(login),
        code(short(sha))
    )
}

/// The most commands read from one comment; the rest are named in the reply and ignored.
pub const MAX_COMMANDS_PER_COMMENT: usize = 10;

/// The longest reply boomerang posts (GitHub refuses comment bodies over 65,536 characters).
pub const MAX_REPLY_CHARS: usize = 60_000;

/// A comment held more commands than are read.
pub fn too_many_commands(ignored: usize) -> String {
    format!(
        "Only the first {MAX_COMMANDS_PER_COMMENT} commands of a comment are read; {ignored} more were ignored. \
         Split them over several comments."
    )
}

/// The approval also started the jobs that were held for it.
pub fn started_held(jobs: &[String]) -> String {
    let names: Vec<String> = jobs.iter().map(|j| format!("`{j}`")).collect();
    format!(
        "Started the job{} held for this approval: {}.",
        if jobs.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

/// The check run title of a job held because its commit comes from a fork.
pub const FORK_HELD_TITLE: &str = "Waiting for approval: this commit comes from a fork";

/// The check run summary of a job held because its commit comes from a fork: why, and how to let it run.
pub fn fork_held(
    job: &str,
    description: &str,
    fork: &str,
    sha: &str,
    prefix: &str,
    pull_request: Option<u64>,
) -> String {
    let how = match pull_request {
        Some(pr) => format!(
            "Someone with write access can comment `{prefix}approve` on #{pr} to approve commit `{}`; the job \
             then starts by itself.",
            short(sha)
        ),
        None => "No open pull request has this commit as its head, so it cannot be approved by a comment; \
                 nothing will run for it."
            .to_string(),
    };
    format!(
        "{description} asked for `{job}` on commit `{}` from **{fork}**, a fork. boomerang runs a fork's code only \
         after someone with write access to this repository approved that exact commit.\n\n{how}",
        short(sha)
    )
}

/// A re-run or retry that was refused, and why.
pub fn rerun_refused(job: &str, why: &str) -> String {
    format!("`{job}` was not run again: {why}.")
}

/// `text` cut to [`MAX_REPLY_CHARS`], saying so.
pub fn bounded(text: String) -> String {
    if text.chars().count() <= MAX_REPLY_CHARS {
        return text;
    }
    let marker = "\n\n… (this reply was cut to fit GitHub's comment limit)";
    let mut out: String = text
        .chars()
        .take(MAX_REPLY_CHARS - marker.chars().count())
        .collect();
    out.push_str(marker);
    out
}

/// The first 7 characters of a SHA.
pub fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ConfigError;

    #[test]
    fn texts() {
        assert_eq!(
            not_allowed("mallory", "deploy", Permission::Write, "read"),
            "@mallory `deploy` needs **write** access to this repository; you have **read**. Nothing was run."
        );
        assert_eq!(
            unknown_job("/", "biuld", Some("build")),
            "There is no job `biuld`; did you mean `/run build`? (`/help` lists the jobs.)"
        );
        let errors = ConfigErrors(vec![ConfigError {
            line: 3,
            column: 5,
            message: "unknown key `stpes`".into(),
        }]);
        let text = invalid_config("main", &errors);
        assert!(
            text.contains(".github/boomerang.yml:3:5: unknown key `stpes`"),
            "{text}"
        );
        assert_eq!(short("0123456789abcdef"), "0123456");
    }

    #[test]
    fn values_from_outside_render_literally() {
        assert_eq!(
            unknown_job("/", "x` <b>hi</b> `", None),
            "There is no job `` x` <b>hi</b> ` `` that can be run by a comment. `/help` lists the jobs."
        );
        let errors = ConfigErrors(vec![ConfigError {
            line: 1,
            column: 1,
            message: "unknown key `a````\n# heading".into(),
        }]);
        let text = invalid_config("ma`in", &errors);
        assert!(
            text.starts_with("`.github/boomerang.yml` on ``ma`in`` is invalid"),
            "{text}"
        );
        assert!(
            text.contains(
                "\n`````\n.github/boomerang.yml:1:1: unknown key `a```` # heading\n`````"
            ),
            "{text}"
        );
    }
}
