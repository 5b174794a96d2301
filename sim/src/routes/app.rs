//! Purpose: the endpoints called as the App (with its JWT): minting installation tokens (with repository narrowing),
//! the App itself, the installation of a repository, the webhook deliveries list and redelivery.

use serde_json::{Value, json};

use super::common::{Ctx, app_events, app_permissions, repo_json, rfc3339, stable_id, user_json};
use crate::reply::{After, Reply};
use crate::state::{IssuedToken, Repo, World};

/// `POST /app/installations/{id}/access_tokens`.
pub(crate) fn create_token(world: &mut World, installation_id: u64, ctx: &Ctx<'_>) -> Reply {
    if !world.installations.contains_key(&installation_id) {
        return Reply::not_found();
    }
    let mut names: Vec<String> = ctx
        .body
        .get("repositories")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_ascii_lowercase)
        .collect();
    let ids: Vec<u64> = ctx
        .body
        .get("repository_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    let own: Vec<&Repo> = world
        .repos
        .values()
        .filter(|r| r.installation_id == installation_id)
        .collect();
    for id in &ids {
        match own.iter().find(|r| r.id == *id) {
            Some(r) => names.push(r.name().to_ascii_lowercase()),
            None => names.push(format!("#{id}")),
        }
    }
    let narrowed = !names.is_empty();
    if names
        .iter()
        .any(|n| !own.iter().any(|r| r.name().eq_ignore_ascii_case(n)))
    {
        return Reply::error(
            422,
            "There is at least one repository that does not exist or is not accessible to the parent installation.",
        );
    }
    let repositories: Vec<Value> = if narrowed {
        own.iter()
            .filter(|r| names.contains(&r.name().to_ascii_lowercase()))
            .map(|r| repo_json(world, r))
            .collect()
    } else {
        Vec::new()
    };
    let token = crate::auth::new_token();
    let expires_at = ctx.now + chrono::Duration::hours(1);
    world.tokens.insert(
        token.clone(),
        IssuedToken {
            installation_id,
            expires_at,
            repositories: narrowed.then_some(names),
        },
    );
    let permissions = ctx
        .body
        .get("permissions")
        .cloned()
        .unwrap_or_else(app_permissions);
    let mut body = json!({
        "token": token,
        "expires_at": rfc3339(expires_at),
        "permissions": permissions,
        "repository_selection": if narrowed { "selected" } else { "all" },
    });
    if narrowed {
        body["repositories"] = Value::Array(repositories);
    }
    Reply::json(201, body)
}

/// `GET /app`.
pub(crate) fn get_app(world: &World) -> Reply {
    let c = &world.config;
    Reply::json(
        200,
        json!({
            "id": c.app_id, "slug": c.app_slug, "node_id": format!("A_sim{}", c.app_id),
            "client_id": format!("Iv1.sim{:010}", c.app_id), "name": c.app_slug,
            "owner": user_json("boomerang-sim", 1, "Organization"),
            "description": "GitHub App simulated by boomerang-sim",
            "external_url": "https://example.invalid/boomerang", "html_url": format!("https://github.com/apps/{}", c.app_slug),
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            "permissions": app_permissions(), "events": app_events(), "installations_count": world.installations.len(),
        }),
    )
}

/// GitHub's installation shape.
fn installation_json(world: &World, installation_id: u64) -> Value {
    let account = world.installations.get(&installation_id).map_or_else(
        || format!("account-{installation_id}"),
        |i| i.account.clone(),
    );
    let api = &world.base_url;
    json!({
        "id": installation_id,
        "account": user_json(&account, stable_id(&account), "Organization"),
        "app_id": world.config.app_id, "app_slug": world.config.app_slug,
        "target_id": stable_id(&account), "target_type": "Organization",
        "permissions": app_permissions(), "events": app_events(), "repository_selection": "all",
        "access_tokens_url": format!("{api}/app/installations/{installation_id}/access_tokens"),
        "repositories_url": format!("{api}/installation/repositories"),
        "html_url": format!("https://github.com/organizations/{account}/settings/installations/{installation_id}"),
        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
        "single_file_name": null, "suspended_at": null, "suspended_by": null,
    })
}

/// `GET /repos/{owner}/{repo}/installation`.
pub(crate) fn get_repo_installation(world: &World, full_name: &str) -> Reply {
    match world.repos.get(&full_name.to_ascii_lowercase()) {
        Some(repo) => Reply::json(200, installation_json(world, repo.installation_id)),
        None => Reply::not_found(),
    }
}

/// `GET /app/hook/deliveries`: newest first, paged by cursor.
pub(crate) fn list_deliveries(world: &World, ctx: &Ctx<'_>) -> Reply {
    let per_page = ctx.per_page();
    let start_before: Option<u64> = ctx
        .query
        .get("cursor")
        .and_then(|c| c.strip_prefix("v1_"))
        .and_then(|c| c.parse().ok());
    let mut newest_first: Vec<_> = world
        .deliveries
        .iter()
        .filter(|d| start_before.is_none_or(|c| d.id <= c))
        .collect();
    newest_first.sort_by_key(|d| std::cmp::Reverse(d.id));
    let page: Vec<Value> = newest_first
        .iter()
        .take(per_page)
        .map(|d| {
            json!({
                "id": d.id, "guid": d.guid, "delivered_at": rfc3339(d.delivered_at), "redelivery": d.redelivery,
                "duration": d.duration, "status": d.status, "status_code": d.status_code, "event": d.event,
                "action": d.action, "installation_id": d.installation_id, "repository_id": d.repository_id,
                "throttled_at": null,
            })
        })
        .collect();
    let mut reply = Reply::json(200, Value::Array(page));
    if let Some(next) = newest_first.get(per_page) {
        reply = reply.header(
            "link",
            &format!(
                "<{}/app/hook/deliveries?per_page={per_page}&cursor=v1_{}>; rel=\"next\"",
                world.base_url, next.id
            ),
        );
    }
    reply
}

/// `POST /app/hook/deliveries/{id}/attempts`: accepted (202) when the delivery exists; the redelivery itself happens
/// after the world lock is released.
pub(crate) fn redeliver(world: &World, delivery_id: u64, after: &mut Vec<After>) -> Reply {
    if world.deliveries.iter().any(|d| d.id == delivery_id) {
        after.push(After::Redeliver { delivery_id });
        Reply::json(202, json!({}))
    } else {
        Reply::not_found()
    }
}
