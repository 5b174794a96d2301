//! Purpose: `POST /app-manifests/{code}/conversions`, step 3 of GitHub's manifest flow: the one-time code of a
//! manifest posted to the new-app page becomes a registered app, answered with its id, slug, private key (`pem`)
//! and the `webhook_secret` GitHub generated (GITHUB-FACTS §6). The sim then *is* that app: JWTs must name its id
//! and deliveries are signed with its secret. Its key is the committed test key, so JWTs verify as before.

use serde_json::{Value, json};

use super::common::{Ctx, rfc3339, user_json};
use crate::config::TEST_APP_PRIVATE_KEY_PEM;
use crate::reply::Reply;
use crate::state::World;

/// The whole flow must finish within an hour of posting the manifest (GITHUB-FACTS §6).
const CODE_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Converts a manifest code (once) into the app's credentials and makes the sim that app.
pub(crate) fn convert(world: &mut World, code: &str, ctx: &Ctx<'_>) -> Reply {
    let Some(pending) = world.pending_manifests.remove(code) else {
        return Reply::not_found();
    };
    if ctx.now - pending.posted_at > CODE_LIFETIME {
        return Reply::not_found();
    }
    let manifest = pending.manifest;
    let name = manifest
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("app")
        .to_owned();
    let slug: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let id = world.new_id();
    let webhook_secret = format!("{:040x}", rand::random::<u128>());
    world.config.app_id = id;
    world.config.app_slug = slug.clone();
    world.config.webhook_secret = webhook_secret.clone();
    if let Some(url) = manifest
        .pointer("/hook_attributes/url")
        .and_then(Value::as_str)
    {
        world.webhook_url = Some(url.to_owned());
    }
    let now = rfc3339(ctx.now);
    Reply::json(
        201,
        json!({
            "id": id, "slug": slug, "node_id": format!("A_sim{id}"), "name": name,
            "owner": user_json(&pending.owner, id + 1, "User"),
            "description": manifest.get("description").cloned().unwrap_or(Value::Null),
            "external_url": manifest.get("url").cloned().unwrap_or(Value::Null),
            "html_url": format!("https://github.com/apps/{slug}"),
            "created_at": now, "updated_at": now,
            "permissions": manifest.get("default_permissions").cloned().unwrap_or_else(|| json!({})),
            "events": manifest.get("default_events").cloned().unwrap_or_else(|| json!([])),
            "client_id": format!("Iv1.sim{id:010}"),
            "client_secret": format!("{:040x}", rand::random::<u128>()),
            "webhook_secret": webhook_secret,
            "pem": TEST_APP_PRIVATE_KEY_PEM,
        }),
    )
}
