//! Purpose: `checkout: true`. Owns fetching a repository at a job's commit (GitHub's tarball, through the
//! installation token) into an attempt's working directory, and the safe extraction of that tarball: the single
//! top-level directory GitHub wraps it in is stripped, and entries that would land outside the directory (absolute
//! paths, `..`, writes through symlinks, symlinks pointing outside) are refused. The engine sees only the
//! [`Checkout`] trait, so it stays testable without GitHub.

use crate::github::GithubClient;
use crate::ids::{CommitSha, InstallationId, RepoName};
use std::future::Future;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;

/// The largest tarball boomerang downloads (compressed).
pub const MAX_TARBALL_BYTES: u64 = 1024 * 1024 * 1024;
/// The most bytes of files a tarball may unpack to (a guard against decompression bombs).
pub const MAX_EXTRACTED_BYTES: u64 = 8 * MAX_TARBALL_BYTES;

/// How many times a download is tried when GitHub fails transiently.
const DOWNLOAD_TRIES: u32 = 3;
/// The pause before the second try (doubled before the third).
const RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// Why a checkout failed; its text follows "checkout failed: " in the check run.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// GitHub refused or could not be reached.
    #[error("cannot download {repo}@{sha}: {source}")]
    Download {
        /// The repository.
        repo: String,
        /// The commit.
        sha: String,
        /// What GitHub (or the network) said.
        #[source]
        source: crate::github::GithubError,
    },
    /// The tarball is not a gzipped tar, or holds an entry that must not be unpacked.
    #[error("bad tarball: {0}")]
    Tarball(String),
    /// The local disk failed.
    #[error("{0}")]
    Io(String),
    /// This server cannot fetch repositories.
    #[error("this server has no way to fetch repositories")]
    Unavailable,
}

/// A boxed future, so [`Checkout`] can be a trait object.
pub type CheckoutFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CheckoutError>> + Send + 'a>>;

/// Fills a directory with a repository at a commit.
pub trait Checkout: Send + Sync + std::fmt::Debug {
    /// Puts the files of `repo` at `sha` into `into` (an existing, empty directory).
    fn checkout<'a>(
        &'a self,
        installation: InstallationId,
        repo: &'a RepoName,
        sha: &'a CommitSha,
        into: &'a Path,
    ) -> CheckoutFuture<'a>;
}

/// The real [`Checkout`]: GitHub's tarball of the commit, downloaded to a temporary file next to the working
/// directory, then unpacked.
#[derive(Clone)]
pub struct GithubCheckout {
    client: GithubClient,
    max_bytes: u64,
}

impl std::fmt::Debug for GithubCheckout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubCheckout")
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl GithubCheckout {
    /// Checkouts through `client`, with tarballs of at most [`MAX_TARBALL_BYTES`].
    pub fn new(client: GithubClient) -> GithubCheckout {
        GithubCheckout {
            client,
            max_bytes: MAX_TARBALL_BYTES,
        }
    }
}

impl Checkout for GithubCheckout {
    fn checkout<'a>(
        &'a self,
        installation: InstallationId,
        repo: &'a RepoName,
        sha: &'a CommitSha,
        into: &'a Path,
    ) -> CheckoutFuture<'a> {
        Box::pin(async move {
            let io = |what: &str, e: std::io::Error| CheckoutError::Io(format!("{what}: {e}"));
            // The temporary file lives beside the working directory (same disk), never inside it.
            let parent = into.parent().unwrap_or(into);
            let mut try_number = 1;
            let (file, path, downloaded) = loop {
                let temp = tempfile::NamedTempFile::new_in(parent)
                    .map_err(|e| io("creating a temporary file", e))?;
                let (file, path) = temp.into_parts();
                let mut file = tokio::fs::File::from_std(file);
                match self
                    .client
                    .tarball(installation, repo, sha, &mut file, self.max_bytes)
                    .await
                {
                    Ok(n) => break (file, path, n),
                    // A transient failure (5xx, a reset connection): try again, a few times.
                    Err(e)
                        if try_number < DOWNLOAD_TRIES
                            && e.retry(chrono::Utc::now()) == crate::github::Retry::Later =>
                    {
                        tracing::info!(%repo, %sha, error = %e, try_number, "tarball download failed; retrying");
                        tokio::time::sleep(RETRY_DELAY * try_number).await;
                        try_number += 1;
                    }
                    Err(source) => {
                        return Err(CheckoutError::Download {
                            repo: repo.to_string(),
                            sha: sha.to_string(),
                            source,
                        });
                    }
                }
            };
            drop(file);
            tracing::debug!(%repo, %sha, bytes = downloaded, "tarball downloaded");
            let into = into.to_path_buf();
            tokio::task::spawn_blocking(move || {
                let file =
                    std::fs::File::open(&path).map_err(|e| io("reopening the tarball", e))?;
                let result = extract_tarball(std::io::BufReader::new(file), &into);
                drop(path);
                result.map(|_| ())
            })
            .await
            .map_err(|e| CheckoutError::Io(format!("the extraction task failed: {e}")))?
        })
    }
}

/// Unpacks a gzipped tarball as GitHub makes them (one top-level directory `owner-repo-<sha>/`, stripped) into
/// `dest`, an existing directory. Refuses, and stops at, any entry with an absolute path or `..`, any entry that
/// would be written through a symlink, any symlink whose target lies outside `dest`, and hard links and special
/// files (git stores neither). Returns the number of files and symlinks written.
pub fn extract_tarball(reader: impl Read, dest: &Path) -> Result<usize, CheckoutError> {
    let bad = |m: String| CheckoutError::Tarball(m);
    let io = |what: String, e: std::io::Error| CheckoutError::Io(format!("{what}: {e}"));
    let root = dest
        .canonicalize()
        .map_err(|e| io(format!("{}", dest.display()), e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    archive.set_preserve_permissions(false);
    archive.set_unpack_xattrs(false);
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a gzipped tarball ({e})")))?;
    let mut written = 0usize;
    let mut total = 0u64;
    let mut top: Option<std::ffi::OsString> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("not a gzipped tarball ({e})")))?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let raw = entry
            .path()
            .map_err(|e| bad(format!("an entry has an unreadable path ({e})")))?
            .into_owned();
        let shown = raw.display().to_string();
        let mut relative = PathBuf::new();
        for (i, part) in raw.components().enumerate() {
            match part {
                Component::Normal(name) if i == 0 => match &top {
                    None => top = Some(name.to_os_string()),
                    Some(t) if t == name => {}
                    Some(_) => {
                        return Err(bad(format!(
                            "`{shown}` is outside the tarball's single top-level directory"
                        )));
                    }
                },
                Component::Normal(name) => relative.push(name),
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => {
                    return Err(bad(format!("`{shown}` has an absolute path")));
                }
                Component::ParentDir => return Err(bad(format!("`{shown}` contains `..`"))),
            }
        }
        if relative.as_os_str().is_empty() {
            continue; // the top-level directory itself
        }
        let target = root.join(&relative);
        // Every directory on the way must be a real directory inside `dest`: never write through a symlink.
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io(format!("creating the directory of `{shown}`"), e))?;
            let real = parent
                .canonicalize()
                .map_err(|e| io(format!("resolving the directory of `{shown}`"), e))?;
            if !real.starts_with(&root) {
                return Err(bad(format!("`{shown}` would be written through a symlink")));
            }
        }
        match kind {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target)
                    .map_err(|e| io(format!("creating `{shown}`"), e))?;
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                total += entry.header().size().unwrap_or(0);
                if total > MAX_EXTRACTED_BYTES {
                    return Err(bad(format!(
                        "it unpacks to more than {MAX_EXTRACTED_BYTES} bytes"
                    )));
                }
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| bad(format!("`{shown}` has an unreadable link ({e})")))?
                    .ok_or_else(|| bad(format!("`{shown}` is a symlink without a target")))?
                    .into_owned();
                if !link_stays_inside(&relative, &link) {
                    return Err(bad(format!(
                        "`{shown}` is a symlink to `{}`, outside the repository",
                        link.display()
                    )));
                }
            }
            other => {
                return Err(bad(format!(
                    "`{shown}` is a {other:?} entry, which a repository cannot hold"
                )));
            }
        }
        entry
            .unpack(&target)
            .map_err(|e| io(format!("writing `{shown}`"), e))?;
        written += 1;
    }
    refuse_escaping_links(&root, &root)?;
    Ok(written)
}

/// Whether a symlink at `at` (relative to the checkout's root) pointing at `link` names a path inside the root,
/// read lexically (`..` pops a component; going above the root is outside).
fn link_stays_inside(at: &Path, link: &Path) -> bool {
    let mut depth: Vec<&std::ffi::OsStr> = at
        .parent()
        .map(|p| {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for part in link.components() {
        match part {
            Component::Normal(n) => depth.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// After unpacking: every symlink that resolves must resolve inside `root` (chains of links each pointing
/// "inside" can still leave it, e.g. `a -> .` then `b -> a/..`). A link that does not resolve is left alone.
fn refuse_escaping_links(root: &Path, dir: &Path) -> Result<(), CheckoutError> {
    let io = |e: std::io::Error| CheckoutError::Io(format!("checking {}: {e}", dir.display()));
    for item in std::fs::read_dir(dir).map_err(io)? {
        let item = item.map_err(io)?;
        let kind = item.file_type().map_err(io)?;
        let path = item.path();
        if kind.is_symlink() {
            if let Ok(real) = path.canonicalize()
                && !real.starts_with(root)
            {
                let shown = path.strip_prefix(root).unwrap_or(&path).display();
                return Err(CheckoutError::Tarball(format!(
                    "`{shown}` is a symlink that resolves outside the repository"
                )));
            }
        } else if kind.is_dir() {
            refuse_escaping_links(root, &path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry of a test tarball.
    enum E<'a> {
        File(&'a str, &'a str),
        Link(&'a str, &'a str),
        Hard(&'a str, &'a str),
    }

    /// A gzipped tarball of `entries`, written without the `tar` crate's path checks (so bad paths get in).
    fn tarball(entries: &[E<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for e in entries {
            let mut header = tar::Header::new_gnu();
            let (path, data, kind, link) = match e {
                E::File(p, c) => (*p, c.as_bytes(), tar::EntryType::Regular, None),
                E::Link(p, t) => (*p, &b""[..], tar::EntryType::Symlink, Some(*t)),
                E::Hard(p, t) => (*p, &b""[..], tar::EntryType::Link, Some(*t)),
            };
            let name = path.as_bytes();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            if let Some(t) = link {
                header.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
            }
            header.set_entry_type(kind);
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            header.set_cksum();
            builder.append(&header, data).expect("append");
        }
        let tar = builder.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).expect("gzip");
        gz.finish().expect("gzip")
    }

    fn extract(entries: &[E<'_>]) -> (tempfile::TempDir, Result<usize, CheckoutError>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("work");
        std::fs::create_dir(&dest).expect("dest");
        let result = extract_tarball(&tarball(entries)[..], &dest);
        (dir, result)
    }

    /// GitHub's top-level directory is stripped and files land under the destination, nested ones included.
    #[test]
    fn strips_the_top_directory() {
        let (dir, result) = extract(&[
            E::File("octo-app-a1b2c3d/README.md", "hello\n"),
            E::File("octo-app-a1b2c3d/src/main.rs", "fn main() {}\n"),
            E::Link("octo-app-a1b2c3d/docs", "src"),
            E::Link("octo-app-a1b2c3d/src/up", "../README.md"),
        ]);
        assert_eq!(result.expect("extracts"), 4);
        let work = dir.path().join("work");
        let read = |p: &str| std::fs::read_to_string(work.join(p)).expect(p);
        assert_eq!(read("README.md"), "hello\n");
        assert_eq!(read("src/main.rs"), "fn main() {}\n");
        assert_eq!(read("docs/main.rs"), "fn main() {}\n");
        assert_eq!(read("src/up"), "hello\n");
    }

    /// Every way out of the destination is refused with a message naming the entry, and nothing lands outside.
    #[test]
    fn refuses_entries_that_leave_the_directory() {
        let cases: Vec<(Vec<E<'_>>, &str)> = vec![
            (vec![E::File("top/../../evil", "x")], "contains `..`"),
            (vec![E::File("/etc/evil", "x")], "absolute path"),
            (
                vec![E::Link("top/passwd", "/etc/passwd")],
                "outside the repository",
            ),
            (
                vec![E::Link("top/a/up", "../../..")],
                "outside the repository",
            ),
            (
                vec![E::Link("top/out", ".."), E::File("top/out/evil", "x")],
                "outside the repository",
            ),
            (
                vec![E::Link("top/here", "."), E::Link("top/b", "here/..")],
                "resolves outside",
            ),
            (
                vec![E::File("top/f", "x"), E::Hard("top/h", "/etc/passwd")],
                "Link entry",
            ),
            (
                vec![E::File("top/f", "x"), E::File("other/g", "y")],
                "single top-level directory",
            ),
        ];
        for (entries, want) in cases {
            let (dir, result) = extract(&entries);
            let err = result.expect_err(want).to_string();
            assert!(err.contains(want), "expected `{want}`, got `{err}`");
            assert!(!dir.path().join("evil").exists(), "{want}: wrote outside");
        }
    }

    /// A file is never written through a symlinked directory that leads out, even when each link on the way
    /// looks inside on its own; a symlinked directory that stays inside is fine.
    #[test]
    fn never_writes_through_a_link_that_leads_out() {
        let (dir, result) = extract(&[
            E::Link("top/here", "."),
            E::Link("top/b", "here/.."),
            E::File("top/b/evil", "x"),
        ]);
        let err = result.expect_err("escapes").to_string();
        assert!(err.contains("written through a symlink"), "{err}");
        assert!(!dir.path().join("evil").exists(), "wrote outside");
        let (_dir, result) =
            extract(&[E::Link("top/sub", "."), E::File("top/sub/inside.txt", "ok")]);
        assert_eq!(result.expect("inside is fine"), 2);
    }

    /// Garbage is a clear error, not a panic.
    #[test]
    fn garbage_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = extract_tarball(&b"not a tarball at all"[..], dir.path()).expect_err("garbage");
        assert!(err.to_string().contains("not a gzipped tarball"), "{err}");
    }
}
