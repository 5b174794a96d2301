//! Purpose: the Node peers of the benches (graphile-worker beside `bench jobs-db`, Probot beside `bench ingest`): a
//! pinned npm package installed once into the OS temporary directory (kept there, keyed by name and version, so
//! reruns start at once), and running `node` or `npm` with a time limit.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `npm install` may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `program args` in `dir` with `env`, within `timeout`; answers its stdout, or why it failed.
pub(crate) async fn output(
    program: &str,
    args: &[&str],
    dir: &Path,
    env: &[(&str, String)],
    timeout: Duration,
) -> Result<String, String> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = tokio::time::timeout(timeout, command.output())
        .await
        .map_err(|_| format!("`{program}` took more than {} s", timeout.as_secs()))?
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            stderr.trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `program --version` runs.
pub(crate) async fn present(program: &str) -> bool {
    output(
        program,
        &["--version"],
        &std::env::temp_dir(),
        &[],
        Duration::from_secs(30),
    )
    .await
    .is_ok()
}

/// The directory holding `package@version` under `node_modules/` (a script written there imports it, as an ES
/// module must), installed by npm on first use.
pub(crate) async fn installed(package: &str, version: &str) -> Result<PathBuf, String> {
    let root = std::env::temp_dir();
    let cache = root.join(format!("boomerang-{package}-{version}"));
    let modules = cache.join("node_modules");
    if modules.join(package).join("package.json").is_file() {
        return Ok(cache);
    }
    println!(
        "{package}: installing {package}@{version} with npm into {} (once)",
        cache.display()
    );
    // Installed beside the cache and moved into place, so a run that stops half-way leaves no half cache.
    let fresh = tempfile::Builder::new()
        .prefix(&format!("boomerang-{package}-install-"))
        .tempdir_in(&root)
        .map_err(|e| format!("cannot make a directory in {}: {e}", root.display()))?;
    let pinned = format!("{package}@{version}");
    output(
        "npm",
        &[
            "install",
            "--no-audit",
            "--no-fund",
            "--silent",
            "--save-exact",
            &pinned,
        ],
        fresh.path(),
        &[],
        INSTALL_TIMEOUT,
    )
    .await?;
    match std::fs::rename(fresh.path(), &cache) {
        Ok(()) => {}
        // Another run installed it meanwhile: use theirs (`fresh` is removed when dropped).
        Err(_) if modules.join(package).is_dir() => {}
        Err(e) => {
            return Err(format!(
                "cannot move npm's install to {}: {e}",
                cache.display()
            ));
        }
    }
    Ok(cache)
}
