//! Purpose: the check run endpoints: create (only on a commit the repository has), update (a completed run cannot
//! go back), get, and list a ref's runs (filters, latest per name, pages with a `link` header), in GitHub's shape.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::common::{Ctx, rfc3339, stable_id, user_json, validation_failed, with_repo};
use crate::records::{CheckRunOutput, CheckRunRecord};
use crate::reply::Reply;
use crate::state::{Repo, World};

/// GitHub's check run shape.
fn check_run_json(world: &World, repo: &Repo, run: &CheckRunRecord) -> Value {
    let api = &world.base_url;
    let pull_requests: Vec<Value> = repo
        .pulls
        .iter()
        .filter(|(_, p)| p.head_sha.eq_ignore_ascii_case(&run.head_sha))
        .filter(|(_, p)| p.head_repo_full_name.eq_ignore_ascii_case(&repo.full_name))
        .map(|(n, p)| {
            json!({
                "url": format!("{api}/repos/{}/pulls/{n}", repo.full_name), "id": stable_id(&format!("{}#{n}", repo.full_name)), "number": n,
                "head": { "ref": p.head_ref, "sha": p.head_sha, "repo": { "id": repo.id, "url": format!("{api}/repos/{}", repo.full_name), "name": repo.name() } },
                "base": { "ref": repo.default_branch, "sha": repo.branches.get(&repo.default_branch), "repo": { "id": repo.id, "url": format!("{api}/repos/{}", repo.full_name), "name": repo.name() } },
            })
        })
        .collect();
    json!({
        "id": run.id, "node_id": format!("CR_sim{}", run.id), "head_sha": run.head_sha,
        "external_id": run.external_id.clone().unwrap_or_default(),
        "url": format!("{api}/repos/{}/check-runs/{}", repo.full_name, run.id),
        "html_url": format!("https://github.com/{}/runs/{}", repo.full_name, run.id),
        "details_url": run.details_url.clone().unwrap_or_else(|| "https://example.invalid/boomerang".to_owned()),
        "status": run.status, "conclusion": run.conclusion, "started_at": run.started_at, "completed_at": run.completed_at,
        "name": run.name,
        "output": {
            "title": run.output.title, "summary": run.output.summary, "text": run.output.text,
            "annotations_count": run.annotations.len(),
            "annotations_url": format!("{api}/repos/{}/check-runs/{}/annotations", repo.full_name, run.id),
        },
        "check_suite": { "id": stable_id(&format!("{}@{}", repo.full_name, run.head_sha)) },
        "app": {
            "id": world.config.app_id, "slug": world.config.app_slug, "name": world.config.app_slug,
            "node_id": format!("A_sim{}", world.config.app_id), "owner": user_json("boomerang-sim", 1, "Organization"),
        },
        "pull_requests": pull_requests,
        "deployment": null,
    })
}

/// Takes a request's `output` into the run (annotations accumulate).
fn apply_output(run: &mut CheckRunRecord, output: &Value) {
    if let Some(title) = output.get("title").and_then(Value::as_str) {
        run.output.title = Some(title.to_owned());
    }
    if let Some(summary) = output.get("summary").and_then(Value::as_str) {
        run.output.summary = Some(summary.to_owned());
    }
    if let Some(text) = output.get("text").and_then(Value::as_str) {
        run.output.text = Some(text.to_owned());
    }
    if let Some(annotations) = output.get("annotations").and_then(Value::as_array) {
        run.annotations.extend(annotations.iter().cloned());
    }
}

/// Takes the fields a create and an update share into the run, and keeps the body.
fn apply_common(run: &mut CheckRunRecord, ctx: &Ctx<'_>) {
    let now = rfc3339(ctx.now);
    if let Some(name) = ctx.str("name") {
        run.name = name.to_owned();
    }
    if let Some(url) = ctx.str("details_url") {
        run.details_url = Some(url.to_owned());
    }
    if let Some(id) = ctx.str("external_id") {
        run.external_id = Some(id.to_owned());
    }
    if let Some(t) = ctx.str("started_at") {
        run.started_at = Some(t.to_owned());
    }
    if let Some(status) = ctx.str("status") {
        run.status = status.to_owned();
    }
    if let Some(conclusion) = ctx.str("conclusion") {
        run.conclusion = Some(conclusion.to_owned());
        run.status = "completed".to_owned();
    }
    if let Some(t) = ctx.str("completed_at") {
        run.completed_at = Some(t.to_owned());
    }
    if run.status == "completed" && run.completed_at.is_none() {
        run.completed_at = Some(now);
    }
    if let Some(output) = ctx.body.get("output").filter(|o| o.is_object()) {
        apply_output(run, output);
    }
    if let Some(actions) = ctx.body.get("actions").and_then(Value::as_array) {
        run.actions = actions.clone();
    }
    run.bodies.push(ctx.body.clone());
}

/// `POST /repos/{owner}/{repo}/check-runs`.
pub(crate) fn create_check_run(world: &mut World, full_name: &str, ctx: &Ctx<'_>) -> Reply {
    let key = full_name.to_ascii_lowercase();
    let head_sha = ctx.str("head_sha").unwrap_or_default().to_owned();
    let known = world
        .repos
        .get(&key)
        .is_some_and(|r| r.known_shas.contains(&head_sha.to_ascii_lowercase()));
    if !known {
        world.violation(format!(
            "{} {}: head_sha {head_sha} is not a commit of {full_name}",
            ctx.method, ctx.path
        ));
        return validation_failed(
            "CheckRun",
            "head_sha",
            &format!("No commit found for SHA: {head_sha}"),
        );
    }
    let id = world.new_id();
    let mut run = CheckRunRecord {
        id,
        name: String::new(),
        head_sha,
        status: "queued".to_owned(),
        conclusion: None,
        external_id: None,
        details_url: None,
        started_at: Some(rfc3339(ctx.now)),
        completed_at: None,
        output: CheckRunOutput::default(),
        annotations: Vec::new(),
        actions: Vec::new(),
        bodies: Vec::new(),
    };
    apply_common(&mut run, ctx);
    let Some(repo) = world.repos.get_mut(&key) else {
        return Reply::not_found();
    };
    repo.check_runs.push(run);
    with_repo(world, full_name, |world, r| match r.check_runs.last() {
        Some(run) => Reply::json(201, check_run_json(world, r, run)),
        None => Reply::not_found(),
    })
}

/// `PATCH /repos/{owner}/{repo}/check-runs/{id}`.
pub(crate) fn update_check_run(
    world: &mut World,
    full_name: &str,
    id: u64,
    ctx: &Ctx<'_>,
) -> Reply {
    let key = full_name.to_ascii_lowercase();
    let Some(run) = world
        .repos
        .get_mut(&key)
        .and_then(|r| r.check_runs.iter_mut().find(|c| c.id == id))
    else {
        return Reply::not_found();
    };
    let new_status = ctx.str("status");
    let reopens = run.status == "completed"
        && ctx.str("conclusion").is_none()
        && new_status.is_some_and(|s| s != "completed");
    if reopens {
        let text = format!(
            "{} {}: check run {id} is completed and cannot go back to {}",
            ctx.method,
            ctx.path,
            new_status.unwrap_or_default()
        );
        world.violation(text);
        return validation_failed(
            "CheckRun",
            "status",
            "Invalid request: a completed check run cannot be set back to queued or in_progress; create a new check run",
        );
    }
    apply_common(run, ctx);
    with_repo(world, full_name, |world, r| {
        match r.check_runs.iter().find(|c| c.id == id) {
            Some(run) => Reply::json(200, check_run_json(world, r, run)),
            None => Reply::not_found(),
        }
    })
}

/// `GET /repos/{owner}/{repo}/check-runs/{id}`.
pub(crate) fn get_check_run(world: &World, full_name: &str, id: u64) -> Reply {
    with_repo(world, full_name, |world, r| {
        match r.check_runs.iter().find(|c| c.id == id) {
            Some(run) => Reply::json(200, check_run_json(world, r, run)),
            None => Reply::not_found(),
        }
    })
}

/// `GET /repos/{owner}/{repo}/commits/{ref}/check-runs`.
pub(crate) fn list_check_runs(
    world: &World,
    full_name: &str,
    git_ref: &str,
    ctx: &Ctx<'_>,
) -> Reply {
    with_repo(world, full_name, |world, repo| {
        let Some(sha) = repo.resolve(git_ref) else {
            return validation_failed(
                "Commit",
                "ref",
                &format!("No commit found for SHA: {git_ref}"),
            );
        };
        let q = &ctx.query;
        let app_ok = q
            .get("app_id")
            .is_none_or(|a| a.parse::<u64>().ok() == Some(world.config.app_id));
        let mut runs: Vec<&CheckRunRecord> = repo
            .check_runs
            .iter()
            .filter(|c| app_ok && c.head_sha.eq_ignore_ascii_case(&sha))
            .filter(|c| q.get("check_name").is_none_or(|n| *n == c.name))
            .filter(|c| q.get("status").is_none_or(|s| *s == c.status))
            .collect();
        runs.sort_by_key(|c| std::cmp::Reverse(c.id));
        if q.get("filter").is_none_or(|f| f != "all") {
            let mut seen = std::collections::HashSet::new();
            runs.retain(|c| seen.insert(c.name.clone()));
        }
        let per_page = ctx.per_page();
        let page = q
            .get("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let total = runs.len();
        let items: Vec<Value> = runs
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|c| check_run_json(world, repo, c))
            .collect();
        let mut reply = Reply::json(200, json!({ "total_count": total, "check_runs": items }));
        if page * per_page < total {
            let mut next = q.clone();
            next.insert("page".to_owned(), (page + 1).to_string());
            next.insert("per_page".to_owned(), per_page.to_string());
            let next: BTreeMap<_, _> = next.into_iter().collect();
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(next.iter())
                .finish();
            reply = reply.header(
                "link",
                &format!("<{}{}?{query}>; rel=\"next\"", world.base_url, ctx.path),
            );
        }
        reply
    })
}
