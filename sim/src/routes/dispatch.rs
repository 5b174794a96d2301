//! Purpose: the endpoints that start workflows: a repository dispatch and a workflow dispatch (on an existing
//! branch, with run details when asked for).

use serde_json::{Value, json};

use super::common::Ctx;
use crate::records::{DispatchRecord, WorkflowDispatchRecord};
use crate::reply::Reply;
use crate::state::World;

/// `POST /repos/{owner}/{repo}/dispatches`: recorded, answered 204.
pub(crate) fn create_dispatch(world: &mut World, full_name: &str, ctx: &Ctx<'_>) -> Reply {
    let event_type = ctx.str("event_type").unwrap_or_default().to_owned();
    let client_payload = ctx
        .body
        .get("client_payload")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(r) = world.repos.get_mut(&full_name.to_ascii_lowercase()) {
        r.dispatches.push(DispatchRecord {
            event_type,
            client_payload,
        });
    }
    Reply::empty(204)
}

/// `POST /repos/{owner}/{repo}/actions/workflows/{id}/dispatches`.
pub(crate) fn create_workflow_dispatch(
    world: &mut World,
    full_name: &str,
    workflow_id: String,
    ctx: &Ctx<'_>,
) -> Reply {
    let git_ref = ctx.str("ref").unwrap_or_default().to_owned();
    let Some(repo) = world.repos.get_mut(&full_name.to_ascii_lowercase()) else {
        return Reply::not_found();
    };
    let branch = git_ref.strip_prefix("refs/heads/").unwrap_or(&git_ref);
    if !repo.branches.contains_key(branch) {
        return Reply::error(422, &format!("No ref found for: {git_ref}"));
    }
    repo.workflow_dispatches.push(WorkflowDispatchRecord {
        workflow_id,
        git_ref,
        inputs: ctx.body.get("inputs").cloned().unwrap_or(Value::Null),
    });
    if ctx.body.get("return_run_details").and_then(Value::as_bool) == Some(true) {
        let run_id = world.new_id();
        return Reply::json(
            200,
            json!({
                "workflow_run_id": run_id,
                "run_url": format!("{}/repos/{full_name}/actions/runs/{run_id}", world.base_url),
                "html_url": format!("https://github.com/{full_name}/actions/runs/{run_id}"),
            }),
        );
    }
    Reply::empty(204)
}
