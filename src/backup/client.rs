//! Purpose: `boomerang backup DEST`: asks a running server for a backup (`POST /api/v1/admin/backup` with an API
//! token), streams it to `DEST.partial`, checks the whole archive, and only then renames it to `DEST`.

use crate::cli::Remote;
use anyhow::{Context, bail};
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// Downloads a backup from `remote` to `dest` (which must not exist), checks it, and prints what it holds.
pub async fn backup(remote: &Remote, dest: &Path) -> anyhow::Result<()> {
    if dest.exists() {
        bail!(
            "{} exists; choose another name or remove it",
            dest.display()
        );
    }
    let partial = dest.with_extension("partial");
    let url = format!(
        "{}/api/v1/admin/backup",
        remote.server.trim_end_matches('/')
    );
    let mut resp = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&remote.token)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", remote.server))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        bail!(
            "{status}: {}",
            crate::cli::neutralise(body["message"].as_str().unwrap_or("no message"))
        );
    }
    let mut out = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let mut bytes = 0u64;
    while let Some(chunk) = resp
        .chunk()
        .await
        .context("the server stopped sending the backup")?
    {
        out.write_all(&chunk).await?;
        bytes += chunk.len() as u64;
    }
    out.sync_all().await?;
    drop(out);
    let checked = {
        let partial = partial.clone();
        tokio::task::spawn_blocking(move || super::restore::check(&partial)).await??
    };
    tokio::fs::rename(&partial, dest).await?;
    eprintln!(
        "backup of {} written to {}: {bytes} bytes, {} store rows, {} log files, taken {} by boomerang {}",
        remote.server,
        dest.display(),
        checked.store_rows,
        checked.log_files,
        checked.manifest.created_at.to_rfc3339(),
        checked.manifest.boomerang
    );
    Ok(())
}
