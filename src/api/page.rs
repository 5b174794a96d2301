//! Purpose: the server-rendered job page: status, attempts, the step table and each step's output with line
//! anchors. While the job runs, a small script follows the log stream (Server-Sent Events); without
//! JavaScript the page reloads itself every few seconds. The script and the style are served from `/assets/`
//! (the page has no inline code, so its Content-Security-Policy can forbid inline script and style).

use crate::job::{AttemptStatus, JobRecord, JobState, StepStatus};
use crate::logs::LogStore;

/// Lines of each step shown on the page.
const PAGE_LINES_PER_STEP: usize = 5_000;

/// Escapes text for HTML.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
pub(crate) fn render(record: &JobRecord, state: &JobState, logs: &LogStore) -> String {
    let current = state.current();
    let running = current.is_some_and(|a| a.status != AttemptStatus::Completed);
    let status = current
        .map(|a| {
            a.conclusion
                .map(|c| c.as_str())
                .unwrap_or(a.status.as_str())
        })
        .unwrap_or("unknown");
    let mut html = String::new();
    html.push_str("<!doctype html><html><head><meta charset=\"utf-8\">");
    if running {
        // Without JavaScript the page reloads itself; with it, `LIVE_SCRIPT` follows the log stream.
        html.push_str("<noscript><meta http-equiv=\"refresh\" content=\"3\"></noscript>");
    }
    html.push_str(&format!(
        "<title>{} {} · boomerang</title><link rel=\"stylesheet\" href=\"/assets/page.css\"></head><body>",
        esc(&record.spec.name),
        esc(status)
    ));
    html.push_str(&format!(
        "<h1>{} <span class=\"status\">{}</span></h1><p>{} · <code>{}</code>{} · {}</p><p>Job <code>{}</code> · correlation <code>{}</code></p>",
        esc(&record.spec.name),
        esc(status),
        esc(&record.repo.to_string()),
        esc(record.sha.as_str()),
        record.git_ref.as_ref().map(|r| format!(" (<code>{}</code>)", esc(r))).unwrap_or_default(),
        esc(&record.trigger.description),
        esc(record.id.as_str()),
        esc(&record.correlation_id),
    ));
    if !record.params.0.is_empty() {
        html.push_str("<h2>Parameters</h2><table>");
        for (k, p) in &record.params.0 {
            let v = if p.secret {
                "***".to_string()
            } else {
                p.value.to_string()
            };
            html.push_str(&format!(
                "<tr><td>{}</td><td><code>{}</code></td></tr>",
                esc(k),
                esc(&v)
            ));
        }
        html.push_str("</table>");
    }
    for e in &state.github_errors {
        html.push_str(&format!("<p class=\"err\">GitHub refused: {}</p>", esc(e)));
    }
    for attempt in state.attempts.iter().rev() {
        html.push_str(&format!(
            "<h2>Attempt {} — {}</h2><p>{}{}</p>",
            attempt.number,
            esc(attempt
                .conclusion
                .map(|c| c.as_str())
                .unwrap_or(attempt.status.as_str())),
            esc(&attempt.reason),
            attempt
                .outcome
                .as_ref()
                .map(|o| format!(" · {}", esc(o)))
                .unwrap_or_default()
        ));
        html.push_str("<table><tr><th>step</th><th>status</th><th>tries</th><th>exit</th><th>duration</th><th>note</th></tr>");
        for s in super::logs::run_order(attempt) {
            let st = match (s.status, s.conclusion) {
                (StepStatus::Finished, Some(c)) => format!("{c:?}").to_lowercase(),
                (other, _) => format!("{other:?}").to_lowercase(),
            };
            html.push_str(&format!(
                "<tr><td><a href=\"#a{}-{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td><td>{}</td></tr>",
                attempt.number,
                esc(&s.id),
                esc(&s.name),
                esc(&st),
                s.tries,
                s.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                s.duration_ms as f64 / 1000.0,
                esc(s.note.as_deref().unwrap_or_default())
            ));
        }
        html.push_str("</table>");
        for s in super::logs::run_order(attempt) {
            let Ok(lines) = logs.tail(
                record.id.as_str(),
                attempt.number,
                &s.id,
                PAGE_LINES_PER_STEP,
            ) else {
                continue;
            };
            html.push_str(&format!(
                "<h3 id=\"a{}-{}\">{}</h3><pre>",
                attempt.number,
                esc(&s.id),
                esc(&s.name)
            ));
            for l in lines {
                let anchor = format!("a{}-{}-L{}", attempt.number, esc(&s.id), l.number);
                let class = if matches!(l.stream, crate::executor::Stream::Stderr) {
                    " class=\"err\""
                } else {
                    ""
                };
                html.push_str(&format!(
                    "<span id=\"{anchor}\"{class}><a class=\"ln\" href=\"#{anchor}\">{:>5}</a> {}</span>\n",
                    l.number,
                    esc(&l.text)
                ));
            }
            html.push_str("</pre>");
        }
    }
    if running {
        html.push_str(&format!(
            "<script src=\"/assets/live.js\" data-stream=\"/api/v1/jobs/{}/logs/stream\"></script>",
            esc(record.id.as_str())
        ));
    }
    html.push_str("</body></html>");
    html
}

/// The page's style, served as `/assets/page.css`.
pub(crate) const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}\
pre{background:#111;color:#eee;padding:1em;overflow-x:auto}.ln{color:#888;user-select:none;text-decoration:none}\
.err{color:#f88}.status{font-weight:bold}\n";

/// Follows a running job on the page (served as `/assets/live.js`; the stream's URL comes from the script tag's
/// `data-stream`): appends each streamed line to its step's block (creating the block for a step that just
/// started, with the same line anchors as the server renders) and reloads the page when the job ends, so the step
/// table shows the final state. The page's `?token=` is reused for the stream.
pub(crate) const LIVE_SCRIPT: &str = r##"
(function () {
  var me = document.currentScript, stream = me && me.getAttribute("data-stream");
  if (!stream) return;
  if (!window.EventSource) { setTimeout(function () { location.reload(); }, 3000); return; }
  var es = new EventSource(stream + location.search);
  es.addEventListener("line", function (ev) {
    var l = JSON.parse(ev.data), id = "a" + l.attempt + "-" + l.step, anchor = id + "-L" + l.number;
    if (document.getElementById(anchor)) return;
    var head = document.getElementById(id), pre = head && head.tagName === "H3" ? head.nextElementSibling : null;
    if (!pre) {
      head = document.createElement("h3"); head.id = id; head.textContent = l.step;
      pre = document.createElement("pre");
      document.body.appendChild(head); document.body.appendChild(pre);
    }
    var span = document.createElement("span"); span.id = anchor;
    if (l.stream === "stderr") span.className = "err";
    var a = document.createElement("a"); a.className = "ln"; a.href = "#" + anchor;
    a.textContent = String(l.number).padStart(5, " ");
    span.appendChild(a); span.appendChild(document.createTextNode(" " + l.text));
    pre.appendChild(span); pre.appendChild(document.createTextNode("\n"));
  });
  es.addEventListener("end", function () { es.close(); location.reload(); });
})();
"##;
