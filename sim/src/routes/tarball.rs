//! Purpose: the repository tarball: the API's redirect to codeload and codeload's gzipped tar, laid out as GitHub's
//! (a pax header with the commit, one top-level directory `owner-repo-<short sha>/`).

use super::common::with_repo;
use super::route::CODELOAD;
use crate::reply::Reply;
use crate::state::{Repo, World};

/// `GET /repos/{owner}/{repo}/tarball/{ref}`: a 302 to the codeload link (the default branch when no ref is given).
pub(crate) fn get_tarball(world: &World, full_name: &str, git_ref: String) -> Reply {
    with_repo(world, full_name, |world, r| {
        let git_ref = if git_ref.is_empty() {
            r.default_branch.clone()
        } else {
            git_ref
        };
        match r.resolve(&git_ref) {
            Some(sha) => Reply::empty(302).header(
                "location",
                &format!(
                    "{}/{CODELOAD}/{}/legacy.tar.gz/{sha}",
                    world.base_url, r.full_name
                ),
            ),
            None => Reply::not_found(),
        }
    })
}

/// What `codeload.github.com` serves: the tarball of a ref.
pub(crate) fn codeload(world: &World, full_name: &str, git_ref: &str) -> Reply {
    with_repo(world, full_name, |_, r| match r.resolve(git_ref) {
        Some(sha) => tarball(r, &sha),
        None => Reply::not_found(),
    })
}

/// The repository at `sha` as GitHub's tarball: a pax global header carrying the commit, then every file under
/// one top-level directory `owner-repo-<short sha>/` (with an entry for each directory), gzipped.
fn tarball(repo: &Repo, sha: &str) -> Reply {
    let short: String = sha.chars().take(7).collect();
    let top = format!("{}-{}-{short}", repo.owner(), repo.name());
    let files = repo.files_under(sha, "");
    let build = || -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        let record = |body: &str| {
            // A pax record is "<length> <body>\n", the length counting itself.
            let mut len = body.len() + 3;
            while format!("{len} {body}\n").len() != len {
                len += 1;
            }
            format!("{len} {body}\n")
        };
        let comment = record(&format!("comment={sha}"));
        let mut header = tar::Header::new_ustar();
        header.set_path("pax_global_header")?;
        header.set_entry_type(tar::EntryType::XGlobalHeader);
        header.set_size(comment.len() as u64);
        header.set_mode(0o666);
        header.set_cksum();
        builder.append(&header, comment.as_bytes())?;
        let mut dirs = std::collections::BTreeSet::new();
        dirs.insert(String::new());
        for path in files.keys() {
            let mut parts: Vec<&str> = path.split('/').collect();
            parts.pop();
            for i in 1..=parts.len() {
                dirs.insert(parts[..i].join("/"));
            }
        }
        for dir in &dirs {
            let mut header = tar::Header::new_ustar();
            header.set_path(format!("{top}/{dir}"))?;
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o775);
            header.set_size(0);
            header.set_cksum();
            builder.append(&header, std::io::empty())?;
        }
        for (path, content) in &files {
            let mut header = tar::Header::new_ustar();
            header.set_path(format!("{top}/{path}"))?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o664);
            header.set_size(content.len() as u64);
            header.set_cksum();
            builder.append(&header, content.as_bytes())?;
        }
        let tar = builder.into_inner()?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar)?;
        gz.finish()
    };
    match build() {
        Ok(bytes) => Reply::raw(200, "application/x-gzip", bytes).header(
            "content-disposition",
            &format!("attachment; filename={top}.tar.gz"),
        ),
        Err(e) => Reply::error(
            500,
            &format!("the simulator could not build the tarball: {e}"),
        ),
    }
}
