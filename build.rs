//! Records the git commit the binary is built from, for `boomerang --version`: `BOOMERANG_GIT_COMMIT` from the
//! environment when set (the Docker build passes it, as its context has no `.git`), else `git rev-parse HEAD`, else
//! `unknown` (a source tarball, or no git installed).

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Asks cargo to build again when HEAD moves (a commit, a checkout); only files that exist are named, as cargo
/// reruns every time for a missing one.
fn watch_head() {
    let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) else {
        return;
    };
    let git_dir = PathBuf::from(git_dir);
    let head = git_dir.join("HEAD");
    let common = git(&["rev-parse", "--git-common-dir"])
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                Path::new(".").join(p)
            }
        })
        .unwrap_or_else(|| git_dir.clone());
    let mut watched = vec![head.clone(), common.join("packed-refs")];
    if let Ok(text) = std::fs::read_to_string(&head)
        && let Some(reference) = text.trim().strip_prefix("ref: ")
    {
        watched.push(git_dir.join(reference));
        watched.push(common.join(reference));
    }
    for path in watched.into_iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=BOOMERANG_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let from_env = std::env::var("BOOMERANG_GIT_COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric()));
    let commit = match from_env {
        Some(c) => c,
        None => {
            watch_head();
            git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_string())
        }
    };
    println!("cargo:rustc-env=BOOMERANG_GIT_COMMIT={commit}");
}
