//! Purpose: a click on **Approve** or **Reject** of a check run that awaits an approval (completed as
//! `action_required`, see [`crate::report::approval`]). The clicker needs the job's own permission
//! (`on.command.permission`, write by default), asked of the collaborator-permission API as `/approve` does.
//! Approve delivers the awaited approval events (the same path as `/approve`); Reject fails the awaiting waits, so
//! the job stops as after a failed step. Either is a command of the delivery's plan, committed with the delivery.
//! A refused click changes nothing and is told the way the other buttons' refusals are.

use super::buttons::refused;
use super::plan::Plan;
use super::{ProcessError, Processor};
use crate::engine::JobCommand;
use crate::ids::JobId;
use crate::job::approval::awaited_approvals;
use crate::job::{ArrivingEvent, EventFrom, JobRecord};
use crate::text::approval as words;
use crate::webhook::events::CheckRun;
use serde_json::json;

impl Processor {
    /// `check_run.requested_action` with `approve` (`approve`) or `reject` on the check run of `record`.
    pub(super) async fn on_approval_click(
        &self,
        guid: &str,
        e: &CheckRun,
        job: JobId,
        record: &JobRecord,
        approve: bool,
    ) -> Result<Plan, ProcessError> {
        let name = &record.spec.name;
        let login = &e.sender.login;
        let needed = record.spec.min_permission();
        if let Err(refusal) = self.clicker_may(e, record, needed).await? {
            return Ok(refusal);
        }
        let Some((_, state)) = self.inner.journal.load(&job)? else {
            return Ok(Plan::note(format!("button on unknown job {job}")));
        };
        let awaited: Vec<String> = state
            .current()
            .map(|a| awaited_approvals(record, a))
            .unwrap_or_default()
            .into_iter()
            .map(|(_, n)| n.to_string())
            .collect();
        if awaited.is_empty() {
            let text = words::click_refused(login, name, words::NOTHING_AWAITS_APPROVAL);
            return Ok(refused(record, text));
        }
        let mut plan = Plan::note(format!(
            "{} by {login} on job {job}",
            if approve { "approved" } else { "rejected" }
        ));
        if !approve {
            plan.commands
                .push((job, JobCommand::Reject { by: login.clone() }));
            return Ok(plan);
        }
        for event_name in awaited {
            let event = ArrivingEvent {
                id: format!("{guid}:{event_name}"),
                from: EventFrom::Approval,
                by: login.clone(),
                payload: json!({
                    "by": login,
                    "via": words::VIA_BUTTON,
                    "check_run_id": e.check_run_id.0,
                }),
            };
            plan.commands.push((
                job.clone(),
                JobCommand::Deliver {
                    name: event_name,
                    event,
                },
            ));
        }
        Ok(plan)
    }
}
