//! Purpose: the sentences about `callback_url` callbacks: why `POST /api/v1/jobs` refuses a callback URL (the
//! `reason` of its `422`), and what the delivery log (`GET /api/v1/jobs/{id}/callbacks`) says about a try that got
//! no answer. Values from outside (a host name, a resolver's message) are quoted in backticks, bounded in length.

use std::net::IpAddr;
use std::time::Duration;

/// Longest piece of outside text (a host, an error) quoted in a sentence.
const MAX_QUOTED: usize = 200;

fn quoted(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_QUOTED)
        .collect();
    if text.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    out
}

/// `callback_url` given to a server without `CALLBACK_SECRET`.
pub const NO_SECRET: &str =
    "callbacks are off on this server: it has no CALLBACK_SECRET to sign them with";

/// The kinds of address a callback may not reach, as the refusals name them (after "a").
pub mod kind {
    /// `127.0.0.0/8`, `::1`.
    pub const LOOPBACK: &str = "loopback";
    /// RFC 1918.
    pub const PRIVATE: &str = "private (RFC 1918)";
    /// `fc00::/7`, and the deprecated site-local `fec0::/10`.
    pub const UNIQUE_LOCAL: &str = "unique local (fc00::/7)";
    /// `169.254/16`, `fe80::/10`.
    pub const LINK_LOCAL: &str = "link-local";
    /// `100.64/10`.
    pub const SHARED_CGNAT: &str = "shared (CGNAT, 100.64.0.0/10)";
    /// Documentation, benchmarking, IETF-protocol and future-use ranges, Teredo, discard-only.
    pub const RESERVED: &str = "reserved";
    /// `0.0.0.0/8`, `::`.
    pub const UNSPECIFIED: &str = "unspecified";
    /// `255.255.255.255`.
    pub const BROADCAST: &str = "broadcast";
    /// `224/4`, `ff00::/8`.
    pub const MULTICAST: &str = "multicast";
}

/// What a refused address is followed by: how to allow it, when the setting can.
fn remedy(allowed_by_setting: bool) -> &'static str {
    if allowed_by_setting {
        "; callbacks may not reach it unless the server sets CALLBACK_ALLOW_PRIVATE=true"
    } else {
        "; callbacks never reach it"
    }
}

/// A host name that resolves to an address callbacks may not reach (`kind`: one of [`kind`]).
pub fn host_refused(host: &str, ip: IpAddr, kind: &str, allowed_by_setting: bool) -> String {
    format!(
        "`{}` resolves to {ip}, {} address{}",
        quoted(host),
        with_article(kind),
        remedy(allowed_by_setting)
    )
}

/// An IP address in the URL that callbacks may not reach (`kind`: one of [`kind`]).
pub fn address_refused(ip: IpAddr, kind: &str, allowed_by_setting: bool) -> String {
    format!(
        "{ip} is {} address{}",
        with_article(kind),
        remedy(allowed_by_setting)
    )
}

fn with_article(words: &str) -> String {
    let vowel = words.starts_with(['a', 'e', 'i', 'o'])
        || (words.starts_with('u') && !words.starts_with("uni"));
    match vowel {
        true => format!("an {words}"),
        false => format!("a {words}"),
    }
}

/// A `callback_url` longer than the server keeps.
pub fn url_too_long(max: usize) -> String {
    format!("must be at most {max} characters")
}

/// A host name that does not resolve.
pub fn unresolvable(host: &str, error: &str) -> String {
    format!("cannot resolve `{}`: {}", quoted(host), quoted(error))
}

/// A host name that resolves to no address at all.
pub fn no_address(host: &str) -> String {
    format!("`{}` resolves to no address", quoted(host))
}

/// A host name whose resolution took too long.
pub fn resolve_timed_out(host: &str, limit: Duration) -> String {
    format!(
        "resolving `{}` took longer than {}",
        quoted(host),
        humantime::format_duration(limit)
    )
}

/// A try that got no complete answer within `CALLBACK_TIMEOUT`.
pub fn try_timed_out(limit: Duration) -> String {
    format!("no answer within {}", humantime::format_duration(limit))
}

/// A try that could not reach the receiver.
pub fn try_failed(detail: &str) -> String {
    format!("not delivered: {}", quoted(detail))
}

/// A stored URL that no longer parses (it was checked when the job was requested).
pub fn not_a_url(error: &str) -> String {
    format!("not a URL: {}", quoted(error))
}

/// A try not sent because the server lost its `CALLBACK_SECRET`.
pub const NOT_SIGNED: &str =
    "not sent: the server has no CALLBACK_SECRET to sign it with (it was restarted without one)";

/// A delivery whose job's record is gone.
pub const JOB_MISSING: &str = "not sent: the job's record is missing from the store";
