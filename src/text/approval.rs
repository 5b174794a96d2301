//! Purpose: every sentence about approvals a job awaits, as the Checks UI shows them: the `action_required` check
//! run's title and section (what is awaited, who may approve, that `/approve` works too), the lines that link an
//! attempt's check runs both ways, why an attempt no longer awaits an approval, and the answers to an Approve or
//! Reject click. Values from outside go through [`crate::text::markdown`].

use crate::spec::Permission;
use crate::text::markdown::{code, text};

/// The title of a check run completed as `action_required` while its job awaits an approval.
pub fn awaiting_title(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| code(n)).collect();
    format!("Awaiting approval: {}", names.join(", "))
}

/// The section of an `action_required` check run that says what to do.
pub fn awaiting_section(names: &[&str], needed: Permission) -> String {
    let names: Vec<String> = names.iter().map(|n| code(n)).collect();
    format!(
        "**Awaiting approval** ({}). Someone with **{needed}** access (or more) to this repository may press \
         **Approve** to let the job go on or **Reject** to stop it; a `/approve` comment on the pull request \
         approves too. The job holds no process while it waits. GitHub shows buttons only on a completed check \
         run, so this one is completed as *action required*; after an approval the job goes on under a new check \
         run. To cancel instead: `/cancel`.\n\n",
        names.join(", ")
    )
}

/// Why the attempt no longer awaits an approval: `login` approved (`via`: how, when known).
pub fn approved_by(login: &str, via: Option<&str>) -> String {
    match via {
        Some(via) => format!("approved by @{} with {}", text(login), text(via)),
        None => format!("approved by @{}", text(login)),
    }
}

/// Why the attempt no longer awaits an approval when nobody approved (its wait ended another way).
pub const NO_LONGER_NEEDED: &str = "its wait went on without an approval";

/// The `via` of an approval given with the check run's button.
pub const VIA_BUTTON: &str = "the Approve button";

/// The title of a check run whose part of the attempt was approved and goes on in a new check run.
pub fn left_title(reason: &str) -> String {
    let mut t = reason.to_string();
    if let Some(first) = t.get(..1) {
        t.replace_range(..1, &first.to_uppercase());
    }
    format!("{t}: the job goes on in a new check run")
}

/// The summary of such a check run: why it ended and where the job goes on (`next`: the new run's page).
pub fn left_summary(job: &str, reason: &str, next: Option<&str>, details_url: &str) -> String {
    let link = match next {
        Some(url) => format!("[the next check run]({url})"),
        None => "the next check run of this name".to_string(),
    };
    format!(
        "**{}** awaited an approval here: {}. The job goes on in {link}.\n\nJob page: [details]({details_url})\n",
        text(job),
        text(reason),
    )
}

/// The line of a later check run that links the one that awaited an approval before it.
pub fn continues_line(reason: &str, earlier: Option<&str>) -> String {
    match earlier {
        Some(url) => format!(
            "Continues [the check run that awaited approval]({url}): {}.\n\n",
            text(reason)
        ),
        None => format!(
            "Continues after an approval was awaited: {}.\n\n",
            text(reason)
        ),
    }
}

/// A wait step's note when its approval was rejected.
pub fn wait_rejected(by: &str) -> String {
    format!("was rejected by @{}", text(by))
}

/// The refusal of an Approve/Reject click when the job awaits no approval now.
pub const NOTHING_AWAITS_APPROVAL: &str = "it awaits no approval now";

/// An Approve or Reject click that changed nothing because the job awaits no approval (`why`).
pub fn click_refused(login: &str, job: &str, why: &str) -> String {
    format!(
        "@{}: your click on {} changed nothing: {}.",
        text(login),
        code(job),
        text(why)
    )
}
