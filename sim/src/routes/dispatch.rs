//! Purpose: the endpoints that start workflows: a repository dispatch and a workflow dispatch (on an existing
//! branch, with run details when asked for).

use serde_json::{Value, json};

use super::common::Ctx;
use crate::records::{DispatchRecord, WorkflowDispatchRecord, WorkflowRunRecord};
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
        workflow_id: workflow_id.clone(),
        git_ref: git_ref.clone(),
        inputs: ctx.body.get("inputs").cloned().unwrap_or(Value::Null),
    });
    let run_id = world.new_id();
    if let Some(repo) = world.repos.get_mut(&full_name.to_ascii_lowercase()) {
        repo.workflow_runs.push(WorkflowRunRecord {
            id: run_id,
            workflow_id,
            git_ref,
            status: "in_progress".into(),
            conclusion: None,
            cancel_requests: 0,
            reads: 0,
        });
    }
    if ctx.body.get("return_run_details").and_then(Value::as_bool) == Some(true) {
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

/// `GET /repos/{owner}/{repo}/actions/runs/{run_id}`: a run a workflow dispatch started.
pub(crate) fn get_workflow_run(world: &mut World, full_name: &str, run_id: u64) -> Reply {
    let base_url = world.base_url.clone();
    let Some(repo) = world.repos.get_mut(&full_name.to_ascii_lowercase()) else {
        return Reply::not_found();
    };
    let full = repo.full_name.clone();
    let Some(run) = repo.workflow_runs.iter_mut().find(|r| r.id == run_id) else {
        return Reply::not_found();
    };
    run.reads += 1;
    Reply::json(
        200,
        json!({
            "id": run.id,
            "name": run.workflow_id,
            "display_title": run.workflow_id,
            "status": run.status,
            "conclusion": run.conclusion,
            "head_branch": run.git_ref.trim_start_matches("refs/heads/"),
            "url": format!("{base_url}/repos/{full}/actions/runs/{}", run.id),
            "html_url": format!("https://github.com/{full}/actions/runs/{}", run.id),
        }),
    )
}

/// `POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel`: 202, or 409 for a run that already completed.
pub(crate) fn cancel_workflow_run(world: &mut World, full_name: &str, run_id: u64) -> Reply {
    let Some(repo) = world.repos.get_mut(&full_name.to_ascii_lowercase()) else {
        return Reply::not_found();
    };
    let Some(run) = repo.workflow_runs.iter_mut().find(|r| r.id == run_id) else {
        return Reply::not_found();
    };
    run.cancel_requests += 1;
    if run.status == "completed" {
        return Reply::error(409, "Cannot cancel a workflow run that is completed.");
    }
    Reply::json(202, json!({}))
}
