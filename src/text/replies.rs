//! Purpose: every sentence the trigger writes for people (PR comments, the check runs that say why nothing ran,
//! the API's refusals), in one place, so the voice stays short and consistent
//! and each text is tested. Every value from outside (a job name typed in a comment, a branch, a config error that
//! quotes the file) goes through [`crate::text::markdown`], so it renders literally.

use crate::job::EventRefusal;
use crate::spec::{ConfigErrors, Permission};
use crate::text::markdown::{code, text};

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

/// `/approve` delivered an approval to jobs waiting for one.
pub fn approved_waits(login: &str, jobs: &[String]) -> String {
    let names: Vec<String> = jobs.iter().map(|j| code(j)).collect();
    format!(
        "@{} approved {}: the approval counts for {} wait.",
        text(login),
        names.join(", "),
        if jobs.len() == 1 { "its" } else { "their" }
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

/// Why a fork's job may not run again.
pub fn fork_not_approved(sha: &str) -> String {
    format!(
        "its commit `{}` comes from a fork and no one with write access has approved it",
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

/// `/cancel` found no running job of the pull request.
pub const NOTHING_TO_CANCEL: &str = "Nothing to cancel: no job of this pull request is running.";

/// `/retry` found no ended, unsuccessful job of the pull request.
pub const NOTHING_TO_RETRY: &str =
    "Nothing to retry: no ended, unsuccessful job of this pull request matches.";

/// `/status` on a pull request without jobs.
pub const NO_JOBS_YET: &str = "No boomerang job has run on this pull request yet.";

/// A secret parameter given in a comment.
pub fn secret_in_comment(param: &str, job: &str) -> String {
    format!(
        "`{param}` is a secret parameter of `{job}`: it cannot be given in a comment, which everyone can read."
    )
}

/// A job's parameters did not check out.
pub fn invalid_params(job: &str, why: &str) -> String {
    format!("`{job}`: {why}")
}

/// A secret parameter's value is too short for the redactor to find it.
pub fn secret_too_short(param: &str, min: usize) -> String {
    format!(
        "`{param}` is a secret parameter, and its value is shorter than the {min} characters this server \
         needs to redact a secret (`REDACT_MIN_LENGTH`): it would show unmasked in logs, so use a longer value"
    )
}

/// The title of the check run of a job an event asked for with invalid parameters.
pub const INVALID_PARAMETERS_TITLE: &str = "Not started: invalid parameters";

/// The summary of that check run.
pub fn invalid_parameters_summary(description: &str, job: &str, why: &str) -> String {
    format!("{description} asked for `{job}`, but its parameters are invalid: {why}")
}

/// The title of a failing `boomerang/config` check run.
pub const INVALID_CONFIG_TITLE: &str = "Invalid boomerang config";

/// Each config error as a Markdown list item (at most 100).
fn error_list(errors: &ConfigErrors) -> String {
    let mut out = String::new();
    for e in errors.0.iter().take(100) {
        out.push_str(&format!(
            "- line {}, column {}: {}\n",
            e.line, e.column, e.message
        ));
    }
    out
}

/// The summary of the failing `boomerang/config` check run for an invalid config on the default branch.
pub fn invalid_default_config_summary(branch: &str, errors: &ConfigErrors) -> String {
    format!(
        "`{CONFIG_PATH}` on `{branch}` is invalid, so nothing was run:\n\n{}",
        error_list(errors)
    )
}

/// The summary of the failing `boomerang/config` check run on a pull request that changes the config.
pub fn invalid_proposed_config_summary(errors: &ConfigErrors) -> String {
    format!(
        "`{CONFIG_PATH}` in this pull request is invalid ({} error{}); merged as it is, no job would run:\n\n{}",
        errors.0.len(),
        if errors.0.len() == 1 { "" } else { "s" },
        error_list(errors)
    )
}

/// The title of the passing `boomerang/config` check run.
pub fn valid_config_title(jobs: usize) -> String {
    format!(
        "Valid boomerang config: {jobs} job{}",
        if jobs == 1 { "" } else { "s" }
    )
}

/// The summary of the passing `boomerang/config` check run.
pub fn valid_config_summary(branch: &str, jobs_markdown: &str) -> String {
    format!(
        "`{CONFIG_PATH}` in this pull request is valid. Once merged into `{branch}`:\n\n{jobs_markdown}"
    )
}

/// `/run --dry-run`: what would run, started nothing.
pub fn dry_run(
    spec: &crate::spec::JobSpec,
    params: &crate::spec::ResolvedParams,
    login: &str,
    sha: &str,
) -> String {
    let mut out = format!(
        "**Dry run** of `{}` for @{login} on `{}` (nothing was started)\n\n",
        spec.name,
        short(sha)
    );
    if !params.0.is_empty() {
        out.push_str("Parameters: ");
        let shown: Vec<String> = params
            .0
            .iter()
            .map(|(k, p)| {
                if p.secret {
                    format!("`{k}=***`")
                } else {
                    format!("`{k}={}`", p.value)
                }
            })
            .collect();
        out.push_str(&shown.join(", "));
        out.push_str("\n\n");
    }
    if let Some(group) = spec.concurrency_group(params) {
        out.push_str(&format!("Concurrency group: `{group}`\n\n"));
    }
    out.push_str(&format!(
        "Timeout: {}\n\n| step | needs | when | on failure | retry |\n|---|---|---|---|---|\n",
        humantime::format_duration(spec.timeout)
    ));
    for s in &spec.steps {
        out.push_str(&format!(
            "| `{}` | {} | {:?} | {:?} | {} |\n",
            s.id,
            if s.needs.is_empty() {
                "—".to_string()
            } else {
                s.needs.join(", ")
            },
            s.when,
            s.on_failure,
            s.retry
                .as_ref()
                .map(|r| format!("{} tries", r.attempts))
                .unwrap_or_else(|| "—".into())
        ));
    }
    out
}

/// The header of `/status`'s table.
pub const STATUS_HEADER: &str = "| job | attempt | status | page |\n|---|---|---|---|\n";

/// One job's row in `/status`.
pub fn status_row(job: &str, attempt: u32, status: &str, id: &str, url: &str) -> String {
    format!(
        "| `{job}` | {attempt} | {status} | [{}]({url}) |\n",
        &id[..8.min(id.len())]
    )
}

/// Why an API request names a repository without a config.
pub fn api_no_config(branch: &str) -> String {
    format!("it has no `{CONFIG_PATH}` on `{branch}`")
}

/// Why an API request names a repository whose config is invalid (its first error).
pub fn api_invalid_config(branch: &str, errors: &ConfigErrors) -> String {
    let first = errors.0.first().map_or(String::new(), |e| {
        format!(": line {}, column {}: {}", e.line, e.column, e.message)
    });
    format!("its `{CONFIG_PATH}` on `{branch}` is invalid{first}")
}

/// Why an API request names a job the config lacks.
pub fn api_unknown_job(job: &str, suggestion: Option<&str>) -> String {
    let hint = suggestion
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    format!("no job `{job}` in the config{hint}")
}

/// Why an API request names a job that is not started by the API.
pub fn api_not_declared(job: &str, started_by: &str) -> String {
    format!("`{job}` does not declare `on: api` (it is started by: {started_by})")
}

/// Why an API request names a ref the repository lacks.
pub fn api_unknown_ref(git_ref: &str, repo: &str) -> String {
    format!("no branch, tag or commit `{git_ref}` in {repo}")
}

/// GitHub answered 404 about the API request's repository.
pub fn api_repo_not_visible(repo: &str) -> String {
    format!(
        "GitHub answered 404 for {repo}: the app's installation cannot see it (is it among the \
         installation's selected repositories, and does it still exist?)"
    )
}

/// GitHub answered 401/403 about the API request's repository (`detail` is `403` or `403: message`).
pub fn api_repo_refused(repo: &str, detail: &str) -> String {
    format!(
        "GitHub refused access to {repo} ({detail}): check that the app is installed on it with the \
         permissions app-manifest.yml asks for"
    )
}

/// Another GitHub refusal about the API request's repository.
pub fn api_repo_other(repo: &str, error: &str) -> String {
    format!("GitHub refused the request for {repo}: {error}")
}

/// The API request's repository does not have the app installed.
pub const API_NOT_INSTALLED: &str = "boomerang is not installed on it";

// ---- events for waiting jobs (`POST /api/v1/events`, webhook answers) ----

/// Why an arriving event changed nothing: the API's answer and a delivery's note.
pub fn refusal(why: &EventRefusal) -> String {
    match why {
        EventRefusal::UnknownName { name, known } if known.is_empty() => {
            format!("the job waits for no event; `{name}` is not one of its events")
        }
        EventRefusal::UnknownName { name, known } => format!(
            "the job has no awaited event `{name}`; its events are: {}",
            known.join(", ")
        ),
        EventRefusal::Finished => {
            "the job has ended: nothing waits for events any more".to_string()
        }
        EventRefusal::WaitOver { name, step } => format!(
            "the wait `{step}` that event `{name}` belongs to is already over in this attempt"
        ),
        EventRefusal::WrongSource {
            name,
            declared,
            came,
        } => format!(
            "event `{name}` comes from `{declared}`, not from `{}`",
            came.as_str()
        ),
    }
}

/// Why an approval cannot be posted through the API.
pub const APPROVAL_NOT_BY_API: &str = "an approval must come from a person with permission to run the job: \
     `/approve` on the pull request (an API or events token names no person)";

/// `POST /api/v1/events` without a usable token.
pub const EVENTS_TOKEN_REQUIRED: &str = "a bearer token from API_TOKENS, or the job's events token ($BOOMERANG_EVENTS_TOKEN), is required";

/// `POST /api/v1/events` with one job's events token for another job.
pub const EVENTS_TOKEN_OTHER_JOB: &str =
    "this events token belongs to another job: it posts events to its own job only";

/// No job has the correlation id an event names.
pub fn no_job_with_correlation(correlation_id: &str) -> String {
    format!("no job has correlation id `{correlation_id}`")
}

/// An event counted (`wait_over`: it completed its wait).
pub fn counted(name: &str, wait_over: bool) -> String {
    if wait_over {
        format!("event `{name}` counted; its wait is over and the job goes on")
    } else {
        format!("event `{name}` counted")
    }
}

/// An event already counted.
pub fn duplicate(name: &str, first: &str) -> String {
    format!("event `{name}` was already counted (event id `{first}`); this one changes nothing")
}

/// The title of the check run that tells a clicker why a button ran nothing (a job without a pull request).
pub const BUTTON_REFUSED_TITLE: &str = "Button refused: nothing was run";

/// The name of the check run that tells a refused click on a job without a pull request: not the job's own name, so
/// the clicked run (and its buttons) stays the newest of that name in the Checks UI.
pub fn button_refused_check_run(job_check_run: &str) -> String {
    format!("{job_check_run}: button refused")
}

/// A button clicked while the job is not ended and unsuccessful (it runs again already, or it succeeded).
pub fn button_not_ended(job: &str) -> String {
    format!(
        "{} was not run again: its newest attempt is not an ended, unsuccessful one.",
        code(job)
    )
}

/// Why an attempt runs: the **Retry failed** button.
pub fn button_retry_reason(login: &str) -> String {
    format!("Retry failed clicked on GitHub by @{login}")
}

/// Why an attempt runs: GitHub's "Re-run all checks" on the check suite.
pub fn suite_rerun_reason(login: &str) -> String {
    format!("Re-run all checks on GitHub by @{login}")
}

/// Why an attempt runs: the **Re-run** button.
pub fn button_rerun_reason(login: &str) -> String {
    format!("Re-run clicked on GitHub by @{login}")
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
