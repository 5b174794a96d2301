//! Purpose: the peer of `boomerang bench jobs-db`: graphile-worker (a PostgreSQL job queue for Node) running no-op
//! jobs in a schema of its own of the same database. A pinned graphile-worker is installed with npm once into the
//! OS temporary directory (kept there, keyed by its version, so reruns start at once); the script
//! `bench/graphile/noop.js` runs the jobs and prints one JSON line, parsed here. The schema is dropped afterwards.

use crate::bench::Stats;
use crate::bench_npm::{installed, output, present};
use crate::store::ScratchSchema;
use std::time::Duration;

/// The graphile-worker installed and measured (0.18 needs Node 22; this one runs on Node 14 and later).
pub const GRAPHILE_WORKER_VERSION: &str = "0.17.3";

/// The script that runs the peer's jobs.
const SCRIPT: &str = include_str!("../bench/graphile/noop.js");

/// How long the script may take.
const TIMEOUT: Duration = Duration::from_secs(300);

/// What graphile-worker measured.
#[derive(Clone, Debug)]
pub struct PeerFigures {
    /// graphile-worker's version.
    pub version: String,
    /// Node's version.
    pub node: String,
    /// Jobs run in all (the lone ones and the measured ones).
    pub jobs: u64,
    /// Of them, those that succeeded.
    pub succeeded: u64,
    /// Jobs per second with the given concurrency.
    pub jobs_per_s: f64,
    /// A lone job's time from its add to its row's removal (its completion committed).
    pub lone: Stats,
    /// Transactions committed in the whole database while its workers ran, the script's own queries taken off.
    pub xact_commit: i64,
    /// Rows inserted, updated and deleted in its schema.
    pub rows_written: i64,
}

/// The script's one line of output.
#[derive(serde::Deserialize)]
struct ScriptOutput {
    version: String,
    node: String,
    jobs: u64,
    succeeded: u64,
    jobs_per_s: f64,
    lone_ms: Vec<f64>,
    xact_commit: i64,
    rows_written: i64,
}

/// Reads the script's output: the last non-empty line of `stdout`, as JSON.
fn parse_output(stdout: &str) -> Result<PeerFigures, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or("the graphile-worker script printed nothing")?;
    let out: ScriptOutput = serde_json::from_str(line)
        .map_err(|e| format!("the graphile-worker script printed `{line}`: {e}"))?;
    let lone = out
        .lone_ms
        .iter()
        .filter(|ms| ms.is_finite() && **ms >= 0.0)
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .collect();
    Ok(PeerFigures {
        version: out.version,
        node: out.node,
        jobs: out.jobs,
        succeeded: out.succeeded,
        jobs_per_s: out.jobs_per_s,
        lone: Stats::of(lone),
        xact_commit: out.xact_commit,
        rows_written: out.rows_written,
    })
}

/// Runs `lone` no-op jobs of graphile-worker one after another, then `jobs` with `concurrency` in flight, in a fresh
/// schema of the database at `url` (dropped afterwards). Answers its figures, or why it did not run.
pub async fn run(
    url: &str,
    jobs: usize,
    lone: usize,
    concurrency: usize,
) -> Result<PeerFigures, String> {
    if !present("node").await || !present("npm").await {
        return Err("`node` and `npm` are needed for graphile-worker, and are not on PATH".into());
    }
    let modules = installed("graphile-worker", GRAPHILE_WORKER_VERSION)
        .await?
        .join("node_modules");
    let script_dir = tempfile::tempdir().map_err(|e| format!("cannot make a directory: {e}"))?;
    let script = script_dir.path().join("noop.js");
    std::fs::write(&script, SCRIPT)
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    let schema = ScratchSchema::create(url, "graphile").map_err(|e| e.to_string())?;
    let env = [
        ("NODE_PATH", modules.display().to_string()),
        ("PEER_DATABASE_URL", url.to_string()),
        ("PEER_SCHEMA", schema.name().to_string()),
        ("PEER_JOBS", jobs.to_string()),
        ("PEER_LONE", lone.to_string()),
        ("PEER_CONCURRENCY", concurrency.to_string()),
    ];
    let stdout = output("node", &["noop.js"], script_dir.path(), &env, TIMEOUT).await?;
    drop(schema);
    parse_output(&stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script's JSON line becomes the figures; a line that is not its JSON is a clear error.
    #[test]
    fn the_scripts_line_is_read() {
        let line = r#"{"version":"0.17.3","node":"v20.20.2","jobs":3,"succeeded":3,"jobs_per_s":640.5,"lone_ms":[2.0,4.0,3.0],"xact_commit":12,"rows_written":9}"#;
        let figures = parse_output(&format!("{line}\n")).expect("parsed");
        assert_eq!(figures.version, "0.17.3");
        assert_eq!((figures.jobs, figures.succeeded), (3, 3));
        assert_eq!(figures.lone.n, 3);
        assert_eq!(figures.lone.p50, Duration::from_millis(3));
        assert_eq!((figures.xact_commit, figures.rows_written), (12, 9));
        let err = parse_output("not json\n").expect_err("an error");
        assert!(err.contains("not json"), "{err}");
        assert!(parse_output("").is_err());
    }
}
