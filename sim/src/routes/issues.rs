//! Purpose: the issue endpoints the app uses: a reaction to a comment (idempotent: 200 when it is already there) and
//! a new comment on an issue or pull request.

use serde_json::json;

use super::common::{Ctx, bot_user, rfc3339};
use crate::records::{CommentRecord, ReactionRecord};
use crate::reply::Reply;
use crate::state::World;

/// `POST /repos/{owner}/{repo}/issues/comments/{id}/reactions`.
pub(crate) fn create_reaction(
    world: &mut World,
    full_name: &str,
    comment_id: u64,
    ctx: &Ctx<'_>,
) -> Reply {
    let content = ctx.str("content").unwrap_or_default().to_owned();
    let new_id = world.new_id();
    let user = bot_user(world);
    let Some(repo) = world.repos.get_mut(&full_name.to_ascii_lowercase()) else {
        return Reply::not_found();
    };
    let existing = repo
        .reactions
        .iter()
        .find(|r| r.comment_id == comment_id && r.content == content)
        .map(|r| r.id);
    let (status, id) = match existing {
        Some(id) => (200, id),
        None => {
            repo.reactions.push(ReactionRecord {
                id: new_id,
                comment_id,
                content: content.clone(),
            });
            (201, new_id)
        }
    };
    Reply::json(
        status,
        json!({
            "id": id, "node_id": format!("REA_sim{id}"), "user": user, "content": content,
            "created_at": rfc3339(ctx.now),
        }),
    )
}

/// `POST /repos/{owner}/{repo}/issues/{number}/comments`.
pub(crate) fn create_comment(
    world: &mut World,
    full_name: &str,
    issue_number: u64,
    ctx: &Ctx<'_>,
) -> Reply {
    let body = ctx.str("body").unwrap_or_default().to_owned();
    let id = world.new_id();
    let user = bot_user(world);
    let api = world.base_url.clone();
    let Some(repo) = world.repos.get_mut(&full_name.to_ascii_lowercase()) else {
        return Reply::not_found();
    };
    let kind = if repo.pulls.contains_key(&issue_number) {
        "pull"
    } else {
        "issues"
    };
    let full = repo.full_name.clone();
    repo.comments.push(CommentRecord {
        issue_number,
        id,
        body: body.clone(),
    });
    let now = rfc3339(ctx.now);
    Reply::json(
        201,
        json!({
            "id": id, "node_id": format!("IC_sim{id}"),
            "url": format!("{api}/repos/{full}/issues/comments/{id}"),
            "html_url": format!("https://github.com/{full}/{kind}/{issue_number}#issuecomment-{id}"),
            "issue_url": format!("{api}/repos/{full}/issues/{issue_number}"),
            "body": body, "user": user, "created_at": now, "updated_at": now, "author_association": "NONE",
        }),
    )
}
