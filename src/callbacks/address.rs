//! Purpose: which addresses a callback may reach (SSRF). A callback URL is checked when the job is requested and
//! again at every try, after resolving its host then, since DNS can change: loopback, private (RFC 1918,
//! `fc00::/7`), link-local, CGNAT, reserved ranges and the IPv4 addresses embedded in IPv6 forms (mapped,
//! compatible, NAT64, 6to4) are refused unless `CALLBACK_ALLOW_PRIVATE=true`; unspecified, broadcast and multicast
//! addresses always are. At a try, reqwest connects only to the addresses [`GuardedResolver`] vetted, so a name
//! cannot resolve to one address for the check and another for the connection.

use crate::text::callbacks::{self as text, kind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long resolving a callback host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an address is off limits: the words for it, and whether `CALLBACK_ALLOW_PRIVATE=true` lifts that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forbidden {
    /// How the refusal names it (one of [`kind`]).
    pub kind: &'static str,
    /// Whether the setting allows it.
    pub allowed_by_setting: bool,
}

const fn fenced(kind: &'static str) -> Option<Forbidden> {
    Some(Forbidden {
        kind,
        allowed_by_setting: true,
    })
}

const fn never(kind: &'static str) -> Option<Forbidden> {
    Some(Forbidden {
        kind,
        allowed_by_setting: false,
    })
}

/// Which addresses callbacks may reach.
#[derive(Clone, Copy, Debug)]
pub struct AddressPolicy {
    /// `CALLBACK_ALLOW_PRIVATE`.
    pub allow_private: bool,
}

impl AddressPolicy {
    /// Why `ip` is refused under this policy, or `None` when a callback may reach it.
    pub fn refuses(self, ip: IpAddr) -> Option<Forbidden> {
        classify(ip).filter(|f| !(self.allow_private && f.allowed_by_setting))
    }

    /// Checks `url`'s host now: an IP address directly, a name by resolving it (bounded in time). The error is the
    /// sentence a caller reads.
    pub async fn check_url(self, url: &url::Url) -> Result<(), String> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => self.resolve(name).await.map(|_| ()),
            None => Err(text::no_address("")),
        }
    }

    /// Checks an address that the URL names directly.
    pub fn check_ip(self, ip: IpAddr) -> Result<(), String> {
        match self.refuses(ip) {
            Some(f) => Err(text::address_refused(ip, f.kind, f.allowed_by_setting)),
            None => Ok(()),
        }
    }

    /// Resolves `host` and returns its addresses if every one of them may be reached.
    pub async fn resolve(self, host: &str) -> Result<Vec<SocketAddr>, String> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let lookup = tokio::net::lookup_host((host, 0));
        let addrs: Vec<SocketAddr> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            Err(_) => return Err(text::resolve_timed_out(host, RESOLVE_TIMEOUT)),
            Ok(Err(e)) => return Err(text::unresolvable(host, &e.to_string())),
            Ok(Ok(found)) => found.take(64).collect(),
        };
        if addrs.is_empty() {
            return Err(text::no_address(host));
        }
        for a in &addrs {
            if let Some(f) = self.refuses(a.ip()) {
                return Err(text::host_refused(
                    host,
                    a.ip(),
                    f.kind,
                    f.allowed_by_setting,
                ));
            }
        }
        Ok(addrs)
    }
}

/// Why `ip` is off limits to callbacks without the setting, or `None` for a public unicast address.
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let o = ip.octets();
    if o[0] == 0 {
        return never(kind::UNSPECIFIED);
    }
    if ip.is_broadcast() {
        return never(kind::BROADCAST);
    }
    if ip.is_multicast() {
        return never(kind::MULTICAST);
    }
    if ip.is_loopback() {
        return fenced(kind::LOOPBACK);
    }
    if ip.is_private() {
        return fenced(kind::PRIVATE);
    }
    if ip.is_link_local() {
        return fenced(kind::LINK_LOCAL);
    }
    if in_v4(ip, [100, 64, 0, 0], 10) {
        return fenced(kind::SHARED_CGNAT);
    }
    let reserved: [([u8; 4], u32); 6] = [
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // TEST-NET-1
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // TEST-NET-2
        ([203, 0, 113, 0], 24),  // TEST-NET-3
        ([240, 0, 0, 0], 4),     // future use
    ];
    if reserved.iter().any(|(net, bits)| in_v4(ip, *net, *bits)) {
        return fenced(kind::RESERVED);
    }
    None
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return never(kind::UNSPECIFIED);
    }
    if ip.is_loopback() {
        return fenced(kind::LOOPBACK);
    }
    if s[0] & 0xff00 == 0xff00 {
        return never(kind::MULTICAST);
    }
    // IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible (::a.b.c.d): the IPv4 address decides.
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        return classify_v4(embedded_v4(s[6], s[7]));
    }
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address; the local-use prefix 64:ff9b:1::/48 is private.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return fenced(kind::UNIQUE_LOCAL);
    }
    // 6to4 (2002::/16) carries an IPv4 address in its next 32 bits.
    if s[0] == 0x2002 {
        return classify_v4(embedded_v4(s[1], s[2]));
    }
    if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
        return fenced(kind::UNIQUE_LOCAL);
    }
    if s[0] & 0xffc0 == 0xfe80 {
        return fenced(kind::LINK_LOCAL);
    }
    // Documentation (2001:db8::/32), Teredo (2001::/32, whose IPv4 part is obscured) and discard-only (100::/64).
    if (s[0] == 0x2001 && (s[1] == 0x0db8 || s[1] == 0)) || s[..4] == [0x100, 0, 0, 0] {
        return fenced(kind::RESERVED);
    }
    None
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// reqwest's resolver for callbacks: resolves a host under an [`AddressPolicy`] and hands reqwest only vetted
/// addresses, failing the connection (with the sentence the delivery log shows) when any address is refused.
pub struct GuardedResolver {
    /// The policy every resolved address must pass.
    pub policy: AddressPolicy,
}

/// A refusal or resolution failure carried through reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ResolveRefused(pub String);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            match policy.resolve(name.as_str()).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(why) => {
                    Err(Box::new(ResolveRefused(why)) as Box<dyn std::error::Error + Send + Sync>)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(text: &str) -> Option<(&'static str, bool)> {
        let ip: IpAddr = text.parse().expect("an address");
        classify(ip).map(|f| (f.kind, f.allowed_by_setting))
    }

    /// Every refused range, its IPv6 disguises, and the public addresses next to them.
    #[test]
    fn addresses_table() {
        let cases: &[(&str, Option<(&str, bool)>)] = &[
            ("127.0.0.1", Some((kind::LOOPBACK, true))),
            ("127.255.255.254", Some((kind::LOOPBACK, true))),
            ("10.1.2.3", Some((kind::PRIVATE, true))),
            ("172.16.0.1", Some((kind::PRIVATE, true))),
            ("172.31.255.255", Some((kind::PRIVATE, true))),
            ("172.32.0.1", None),
            ("192.168.1.1", Some((kind::PRIVATE, true))),
            ("169.254.169.254", Some((kind::LINK_LOCAL, true))),
            ("100.64.0.1", Some((kind::SHARED_CGNAT, true))),
            ("100.127.255.255", Some((kind::SHARED_CGNAT, true))),
            ("100.128.0.1", None),
            ("0.0.0.0", Some((kind::UNSPECIFIED, false))),
            ("0.1.2.3", Some((kind::UNSPECIFIED, false))),
            ("255.255.255.255", Some((kind::BROADCAST, false))),
            ("224.0.0.1", Some((kind::MULTICAST, false))),
            ("239.255.255.250", Some((kind::MULTICAST, false))),
            ("240.0.0.1", Some((kind::RESERVED, true))),
            ("192.0.2.10", Some((kind::RESERVED, true))),
            ("198.18.0.1", Some((kind::RESERVED, true))),
            ("8.8.8.8", None),
            ("140.82.112.3", None),
            ("::1", Some((kind::LOOPBACK, true))),
            ("::", Some((kind::UNSPECIFIED, false))),
            ("fc00::1", Some((kind::UNIQUE_LOCAL, true))),
            ("fd12:3456::1", Some((kind::UNIQUE_LOCAL, true))),
            ("fec0::1", Some((kind::UNIQUE_LOCAL, true))),
            ("fe80::1", Some((kind::LINK_LOCAL, true))),
            ("febf::1", Some((kind::LINK_LOCAL, true))),
            ("ff02::1", Some((kind::MULTICAST, false))),
            ("::ffff:127.0.0.1", Some((kind::LOOPBACK, true))),
            ("::ffff:10.0.0.1", Some((kind::PRIVATE, true))),
            ("::ffff:169.254.169.254", Some((kind::LINK_LOCAL, true))),
            ("::ffff:100.64.1.1", Some((kind::SHARED_CGNAT, true))),
            ("::ffff:0.0.0.0", Some((kind::UNSPECIFIED, false))),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some((kind::LOOPBACK, true))),
            ("64:ff9b::7f00:1", Some((kind::LOOPBACK, true))),
            ("64:ff9b::808:808", None),
            ("64:ff9b:1::1", Some((kind::UNIQUE_LOCAL, true))),
            ("2002:7f00:1::1", Some((kind::LOOPBACK, true))),
            ("2002:c0a8:101::1", Some((kind::PRIVATE, true))),
            ("2002:808:808::1", None),
            ("2001:db8::1", Some((kind::RESERVED, true))),
            ("2001:0:4136:e378::1", Some((kind::RESERVED, true))),
            ("100::1", Some((kind::RESERVED, true))),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001::200e", None),
        ];
        for (ip, expected) in cases {
            assert_eq!(kind_of(ip), *expected, "{ip}");
        }
    }

    /// The setting lifts every refusal but unspecified, broadcast and multicast.
    #[test]
    fn the_setting_allows_private_ranges_only() {
        let open = AddressPolicy {
            allow_private: true,
        };
        let closed = AddressPolicy {
            allow_private: false,
        };
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "100.64.0.1",
        ] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert!(open.refuses(ip).is_none(), "{ip}");
            assert!(closed.refuses(ip).is_some(), "{ip}");
        }
        for ip in ["0.0.0.0", "::", "255.255.255.255", "224.0.0.1", "ff02::1"] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert!(open.refuses(ip).is_some(), "{ip}");
        }
    }

    /// A name is checked after resolution: `localhost` is loopback; the URL forms of an address are normalised by
    /// the URL parser first (`0x7f.1`, a decimal `2130706433`, a bracketed mapped IPv6).
    #[tokio::test]
    async fn urls_are_checked_after_resolution_and_normalisation() {
        let closed = AddressPolicy {
            allow_private: false,
        };
        for url in [
            "http://localhost:8080/hook",
            "http://127.0.0.1/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::1]:9/",
            "https://169.254.169.254/latest/meta-data/",
        ] {
            let parsed = url::Url::parse(url).expect("a URL");
            let err = closed.check_url(&parsed).await.expect_err(url);
            assert!(
                err.contains("loopback") || err.contains("link-local"),
                "{url}: {err}"
            );
        }
        let open = AddressPolicy {
            allow_private: true,
        };
        let parsed = url::Url::parse("http://localhost:8080/hook").expect("a URL");
        assert_eq!(open.check_url(&parsed).await, Ok(()));
        let resolver = GuardedResolver { policy: closed };
        let name: reqwest::dns::Name = "localhost".parse().expect("a name");
        let refused = reqwest::dns::Resolve::resolve(&resolver, name).await;
        assert!(
            refused.is_err(),
            "the resolver refuses loopback at send time"
        );
    }
}
