//! Purpose: the HTTP client side of `boomerang logs` and `boomerang search`: calls a running server's log API
//! with a bearer token and prints what it answers, one line of output per log line. Step output is hostile: on a
//! terminal its control characters (OSC 52 clipboard writes, title changes, cursor moves) are shown, not obeyed
//! ([`Escapes`]).

use std::borrow::Cow;

use anyhow::{Context, bail};
use serde_json::Value;

/// What to do with terminal control characters in what the server answers (step output, names, messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escapes {
    /// Show them in a visible, inert form ([`neutralise`]): the default when stdout is a terminal.
    Neutralise,
    /// Print them as stored (`--raw`, and the default when stdout is not a terminal).
    Raw,
}

impl Escapes {
    /// `--raw` wins, then `--sanitize`; without either, neutralise exactly when stdout is a terminal.
    pub fn choose(raw: bool, sanitize: bool, stdout_is_terminal: bool) -> Escapes {
        if raw {
            Escapes::Raw
        } else if sanitize || stdout_is_terminal {
            Escapes::Neutralise
        } else {
            Escapes::Raw
        }
    }

    fn apply<'a>(self, text: &'a str) -> Cow<'a, str> {
        match self {
            Escapes::Neutralise => neutralise(text),
            Escapes::Raw => Cow::Borrowed(text),
        }
    }
}

/// `text` with every character a terminal would act on replaced by a visible form: C0 controls and DEL in caret
/// notation (ESC → `^[`, BEL → `^G`, CR → `^M`, LF → `^J`; tab is kept), C1 controls (U+0080–U+009F, CSI and OSC
/// among them) and the bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069, which reorder what is
/// shown) as `<U+XXXX>`. Nothing is left that starts an escape sequence, so colours are lost too.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    let inert = |c: char| {
        !(c.is_ascii_control() && c != '\t'
            || ('\u{80}'..='\u{9f}').contains(&c)
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c))
    };
    if text.chars().all(inert) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if inert(c) {
            out.push(c);
        } else if c == '\u{7f}' {
            out.push_str("^?");
        } else if c.is_ascii_control() {
            out.push('^');
            out.push(char::from(c as u8 + 0x40));
        } else {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        }
    }
    Cow::Owned(out)
}

/// Where the server is and how to authenticate.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The server's base URL (`BOOMERANG_SERVER`).
    pub server: String,
    /// A token from its `API_TOKENS` (`BOOMERANG_TOKEN`).
    pub token: String,
}

impl Remote {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }

    async fn send(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<reqwest::Response> {
        let resp = reqwest::Client::new()
            .get(self.url(path))
            .query(query)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.server))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or_default();
            bail!(
                "{status}: {}",
                neutralise(body["message"].as_str().unwrap_or("no message"))
            );
        }
        Ok(resp)
    }
}

fn print_line(l: &Value, escapes: Escapes) {
    println!(
        "{} {:>5}  {}",
        escapes.apply(l["step"].as_str().unwrap_or("?")),
        l["number"],
        escapes.apply(l["text"].as_str().unwrap_or(""))
    );
}

/// `boomerang logs <job> [--step S] [--tail N] [--follow] [--raw|--sanitize]`.
pub async fn logs(
    remote: &Remote,
    job: &str,
    step: Option<String>,
    tail: usize,
    follow: bool,
    escapes: Escapes,
) -> anyhow::Result<()> {
    if follow {
        return follow_job(remote, job, step, tail, escapes).await;
    }
    let mut query = vec![("tail", tail.to_string())];
    if let Some(s) = step {
        query.push(("step", s));
    }
    let answer: Value = remote
        .send(&format!("/api/v1/jobs/{job}/logs"), &query)
        .await?
        .json()
        .await?;
    for l in answer["lines"].as_array().into_iter().flatten() {
        print_line(l, escapes);
    }
    Ok(())
}

async fn follow_job(
    remote: &Remote,
    job: &str,
    step: Option<String>,
    tail: usize,
    escapes: Escapes,
) -> anyhow::Result<()> {
    let mut resp = remote
        .send(
            &format!("/api/v1/jobs/{job}/logs/stream"),
            &[("tail", tail.to_string())],
        )
        .await?;
    let mut buf = String::new();
    while let Some(chunk) = resp.chunk().await? {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let kind = field(&event, "event").unwrap_or_default();
            let Some(data) = field(&event, "data") else {
                continue;
            };
            let v: Value = serde_json::from_str(&data).unwrap_or_default();
            match kind.as_str() {
                "line" if step.as_deref().is_none_or(|s| v["step"] == s) => print_line(&v, escapes),
                "end" => {
                    eprintln!(
                        "job {job} ended: {}",
                        neutralise(v["conclusion"].as_str().unwrap_or("unknown"))
                    );
                    return Ok(());
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn field(event: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = event
        .lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.strip_prefix(' ').unwrap_or(v))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// `boomerang search <query> [--repo R] [--job J] [--since T] [--raw|--sanitize]`.
pub async fn search(
    remote: &Remote,
    q: &str,
    repo: Option<String>,
    job: Option<String>,
    since: Option<String>,
    escapes: Escapes,
) -> anyhow::Result<()> {
    let mut query = vec![("q", q.to_string())];
    for (k, v) in [("repo", repo), ("job", job), ("since", since)] {
        if let Some(v) = v {
            query.push((k, v));
        }
    }
    let answer: Value = remote.send("/api/v1/search", &query).await?.json().await?;
    let hits = answer["hits"].as_array().cloned().unwrap_or_default();
    for h in &hits {
        println!(
            "{} {} {}:{} {}  {}\n    {}",
            escapes.apply(h["repository"].as_str().unwrap_or("?")),
            escapes.apply(h["job"].as_str().unwrap_or("?")),
            escapes.apply(h["step"].as_str().unwrap_or("?")),
            h["number"],
            escapes.apply(h["time"].as_str().unwrap_or("")),
            escapes.apply(h["text"].as_str().unwrap_or("")),
            escapes.apply(h["link"].as_str().unwrap_or(""))
        );
    }
    eprintln!(
        "{} hits in {} jobs ({:.1} ms; log store {} bytes)",
        hits.len(),
        answer["jobs_searched"],
        answer["took_ms"].as_f64().unwrap_or(0.0),
        answer["store_bytes"]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralise_makes_escape_sequences_visible_and_inert() {
        let osc52 = "copy\u{1b}]52;c;aGVsbG8=\u{7}\u{1b}[2J\r\tend\u{7f}";
        assert_eq!(neutralise(osc52), "copy^[]52;c;aGVsbG8=^G^[[2J^M\tend^?");
        assert_eq!(
            neutralise("a\u{9b}31mb\u{9d}0;t\u{9c}"),
            "a<U+009B>31mb<U+009D>0;t<U+009C>"
        );
        assert_eq!(neutralise("x\u{202e}y\u{2066}"), "x<U+202E>y<U+2066>");
        assert_eq!(neutralise("\0\n"), "^@^J");
        assert!(matches!(neutralise("plain ünïcode\ttab"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_terminal_decides_unless_a_flag_does() {
        assert_eq!(Escapes::choose(false, false, true), Escapes::Neutralise);
        assert_eq!(Escapes::choose(false, false, false), Escapes::Raw);
        assert_eq!(Escapes::choose(false, true, false), Escapes::Neutralise);
        assert_eq!(Escapes::choose(true, false, true), Escapes::Raw);
    }
}
