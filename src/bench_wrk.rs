//! Purpose: an external load generator for `bench ingest`: [wrk](https://github.com/wg/wrk), a separate process with
//! its own threads and event loop, so the generator's cost is not the server's (the in-process generator shares
//! the bench's runtime with the server it drives, and is the limit of the null-server ceiling). A Lua script cycles
//! over the payloads, each request with its own delivery GUID and the payload's precomputed signature.

use crate::bench::Stats;
use anyhow::Context;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// What one wrk run measured.
pub(crate) struct WrkRun {
    /// Requests answered 2xx per second.
    pub rate: f64,
    /// Latency percentiles wrk reports (p50, p90, p99; its max as `max`).
    pub latency: Stats,
    /// Requests answered with something other than 2xx or 3xx.
    pub failures: u64,
    /// Requests answered.
    pub requests: u64,
}

/// Whether `wrk` can be run.
pub(crate) fn available() -> bool {
    std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok()
}

/// Runs wrk for `duration` with `connections` connections (two threads) against `url`, POSTing `payloads` (event,
/// body) in turn, each signed with `secret`.
pub(crate) async fn run(
    url: &str,
    payloads: &[(String, Vec<u8>)],
    secret: &str,
    connections: usize,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<WrkRun> {
    let script = dir.join("ingest.lua");
    std::fs::write(&script, lua_script(payloads, secret, dir)?)?;
    let out = tokio::process::Command::new("wrk")
        .arg("-t2")
        .arg(format!("-c{}", connections.max(2)))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--latency")
        .arg("-s")
        .arg(&script)
        .arg(url)
        .output()
        .await
        .context("run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&text)
}

/// The Lua script: the bodies written beside it, read once per thread; a GUID of the run, the thread and a
/// counter (a run of its own per wrk process, so runs one after another never repeat a GUID, which boomerang would
/// answer as a duplicate without storing it).
fn lua_script(payloads: &[(String, Vec<u8>)], secret: &str, dir: &Path) -> anyhow::Result<String> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut specs = String::new();
    for (i, (event, body)) in payloads.iter().enumerate() {
        let file = dir.join(format!("body-{i}.json"));
        std::fs::write(&file, body)?;
        let signature = crate::webhook::signature::sign(secret.as_bytes(), body);
        writeln!(
            specs,
            "  {{event = {:?}, file = {:?}, sig = {:?}}},",
            event,
            file.display().to_string(),
            signature
        )?;
    }
    Ok(format!(
        r#"local specs = {{
{specs}}}
local bodies = {{}}
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  for i, s in ipairs(specs) do
    local f = assert(io.open(s.file, "rb"))
    bodies[i] = f:read("*a")
    f:close()
  end
end
function request()
  counter = counter + 1
  local i = (counter % #specs) + 1
  local s = specs[i]
  return wrk.format("POST", nil, {{
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = s.event,
    ["X-GitHub-Delivery"] = string.format("wrk-{run}-%d-%d", id, counter),
    ["X-Hub-Signature-256"] = s.sig,
  }}, bodies[i])
end
"#
    ))
}

/// Reads wrk's report: `Requests/sec`, the latency distribution, the request count and the non-2xx count.
fn parse(text: &str) -> anyhow::Result<WrkRun> {
    let mut rate = None;
    let mut requests = None;
    let mut failures = 0;
    let mut percentiles: Vec<(u32, Duration)> = Vec::new();
    let mut max = Duration::ZERO;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", r] => rate = r.parse::<f64>().ok(),
            ["Non-2xx", "or", "3xx", "responses:", n] => failures = n.parse().unwrap_or(0),
            [n, "requests", "in", ..] => requests = n.parse::<u64>().ok(),
            ["Latency", _avg, _stdev, m, ..] => max = duration(m).unwrap_or(max),
            [p, d] if p.ends_with('%') => {
                if let (Ok(p), Some(d)) = (p.trim_end_matches('%').parse::<u32>(), duration(d)) {
                    percentiles.push((p, d));
                }
            }
            _ => {}
        }
    }
    let at = |p: u32| percentiles.iter().find(|(q, _)| *q == p).map(|(_, d)| *d);
    let (Some(rate), Some(requests), Some(p50), Some(p90), Some(p99)) =
        (rate, requests, at(50), at(90), at(99))
    else {
        anyhow::bail!("cannot read wrk's report:\n{text}");
    };
    let answered_ok = requests.saturating_sub(failures) as f64 / requests.max(1) as f64;
    Ok(WrkRun {
        rate: rate * answered_ok,
        latency: Stats {
            n: requests as usize,
            p50,
            p90,
            p99,
            max,
        },
        failures,
        requests,
    })
}

/// A wrk duration (`812.00us`, `1.23ms`, `2.01s`, `1.50m`).
fn duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// wrk 4.1's report, as it prints it with `--latency` and a script that sets non-2xx answers.
    const REPORT: &str = "Running 5s test @ http://127.0.0.1:3000/webhook
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.51ms    2.10ms  31.20ms   80.00%
    Req/Sec     3.60k   210.00     4.00k    70.00%
  Latency Distribution
     50%    4.12ms
     75%    5.30ms
     90%    6.80ms
     99%   12.40ms
  36000 requests in 5.00s, 4.20MB read
  Non-2xx or 3xx responses: 360
Requests/sec:   7200.00
Transfer/sec:    860.00KB
";

    #[test]
    fn reads_the_rate_the_latencies_and_the_failures() {
        let run = parse(REPORT).expect("parses");
        assert_eq!(run.requests, 36000);
        assert_eq!(run.failures, 360);
        assert!((run.rate - 7128.0).abs() < 0.01, "{}", run.rate);
        assert_eq!(run.latency.p50, Duration::from_micros(4120));
        assert_eq!(run.latency.p99, Duration::from_micros(12400));
        assert_eq!(run.latency.max, Duration::from_micros(31200));
    }

    /// Runs one after another (the ingest bench's turns) must never repeat a delivery GUID: boomerang answers a
    /// repeated one as a duplicate without storing it, which would count free answers as deliveries.
    #[test]
    fn each_run_sends_guids_of_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let payloads = vec![("ping".to_string(), b"{}".to_vec())];
        let guid_format = |script: String| {
            script
                .lines()
                .find(|l| l.contains("X-GitHub-Delivery"))
                .map(str::to_string)
                .expect("the script sets the delivery GUID")
        };
        let first = guid_format(lua_script(&payloads, "s", dir.path()).expect("script"));
        let second = guid_format(lua_script(&payloads, "s", dir.path()).expect("script"));
        assert_ne!(first, second);
    }

    #[test]
    fn an_unreadable_report_is_an_error() {
        assert!(parse("wrk: connection refused").is_err());
    }
}
