//! Purpose: a repository's files: `GET /repos/{owner}/{repo}/contents/{path}` for a file (JSON with base64 content,
//! or raw with the raw media type) or a directory listing, at a branch or a commit.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use super::common::Ctx;
use crate::reply::Reply;
use crate::state::{Repo, World};

/// Base64 as GitHub sends it: lines of 60 characters, each ending in `\n`.
pub(crate) fn github_base64(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 60 + 1);
    for chunk in encoded.as_bytes().chunks(60) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// A blob's sha the way the sim makes them (stable for the same content).
fn blob_sha(content: &str) -> String {
    let digest = sha2::Sha256::digest(format!("blob {}\0{content}", content.len()).as_bytes());
    hex::encode(&digest[..20])
}

/// `GET /repos/{owner}/{repo}/contents/{path}?ref=`.
pub(crate) fn get_content(world: &World, repo: &Repo, path: &str, ctx: &Ctx<'_>) -> Reply {
    let path = path.trim_matches('/');
    let git_ref = ctx
        .query
        .get("ref")
        .filter(|r| !r.is_empty())
        .cloned()
        .unwrap_or_else(|| repo.default_branch.clone());
    if repo.resolve(&git_ref).is_none() && !repo.files.contains_key(&git_ref) {
        return Reply::error(404, &format!("No commit found for the ref {git_ref}"));
    }
    let api = &world.base_url;
    let entry = |kind: &str, p: &str, content: Option<&str>| {
        let name = p.rsplit('/').next().unwrap_or(p);
        let sha = blob_sha(content.unwrap_or(p));
        json!({
            "type": kind, "size": content.map_or(0, str::len), "name": name, "path": p, "sha": sha,
            "url": format!("{api}/repos/{}/contents/{p}?ref={git_ref}", repo.full_name),
            "git_url": format!("{api}/repos/{}/git/blobs/{sha}", repo.full_name),
            "html_url": format!("https://github.com/{}/blob/{git_ref}/{p}", repo.full_name),
            "download_url": if kind == "file" { json!(format!("https://raw.githubusercontent.com/{}/{git_ref}/{p}", repo.full_name)) } else { Value::Null },
        })
    };
    if let Some(content) = repo.file_at(&git_ref, path) {
        let raw = ctx.accept.contains("raw");
        // One tag per content and representation, as GitHub's differ between the raw and the JSON answer.
        let etag = format!("\"{}{}\"", blob_sha(content), if raw { "-raw" } else { "" });
        if ctx
            .if_none_match
            .as_deref()
            .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag))
        {
            return Reply::empty(304).header("etag", &etag);
        }
        if raw {
            return Reply::raw(
                200,
                "application/vnd.github.raw; charset=utf-8",
                content.as_bytes().to_vec(),
            )
            .header("etag", &etag);
        }
        let mut file = entry("file", path, Some(content));
        file["encoding"] = json!("base64");
        file["content"] = json!(github_base64(content.as_bytes()));
        return Reply::json(200, file).header("etag", &etag);
    }
    let under = repo.files_under(&git_ref, path);
    if under.is_empty() {
        return Reply::not_found();
    }
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let mut children: BTreeMap<String, Value> = BTreeMap::new();
    for (p, content) in &under {
        let rest = &p[prefix.len()..];
        match rest.split_once('/') {
            Some((dir, _)) => {
                let dir_path = format!("{prefix}{dir}");
                children
                    .entry(dir_path.clone())
                    .or_insert_with(|| entry("dir", &dir_path, None));
            }
            None => {
                children.insert(p.clone(), entry("file", p, Some(content)));
            }
        }
    }
    Reply::json(200, Value::Array(children.into_values().collect()))
}
