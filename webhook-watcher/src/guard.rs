//! The SSRF guard: which addresses a rule may reach.
//!
//! A rule's URL comes from configuration, but its host may be rendered
//! from event data and any name may resolve anywhere (including to the
//! cloud metadata endpoint or the database next door). So every address
//! is checked at connect time: [`GuardedResolver`] resolves the host,
//! refuses the whole name if ANY address is refused, and hands the client
//! only the checked addresses (no second lookup that could answer
//! differently). Literal-IP hosts never reach a resolver; the caller
//! checks them with [`check_literal_host`].

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A destination the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} refused: {reason}")]
pub struct AddressRefused {
    pub host: String,
    pub reason: String,
}

/// Why an address is refused, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    /// Internal but real: reachable with `allow_private`.
    Private(&'static str),
    /// Never a sensible unicast HTTP destination (`0.0.0.0` even reaches
    /// the local host on Linux), refused regardless.
    Always(&'static str),
}

/// Whether a request may connect to `ip`.
pub fn address_allowed(ip: IpAddr, allow_private: bool) -> bool {
    refusal(ip, allow_private).is_none()
}

/// Why `ip` is refused, if it is.
fn refusal(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    match blocked(ip) {
        None => None,
        Some(Blocked::Private(_)) if allow_private => None,
        Some(Blocked::Private(reason) | Blocked::Always(reason)) => Some(reason),
    }
}

fn blocked(ip: IpAddr) -> Option<Blocked> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => blocked_v6(v6),
    }
}

fn blocked_v4(ip: Ipv4Addr) -> Option<Blocked> {
    let [a, b, c, _] = ip.octets();
    let found = if a == 0 {
        Blocked::Always("unspecified address")
    } else if ip.is_broadcast() {
        Blocked::Always("broadcast address")
    } else if ip.is_multicast() {
        Blocked::Always("multicast address")
    } else if a >= 240 {
        Blocked::Always("reserved address")
    } else if ip.is_loopback() {
        Blocked::Private("loopback address")
    } else if ip.is_private() {
        Blocked::Private("private address")
    } else if ip.is_link_local() {
        Blocked::Private("link-local address")
    } else if a == 100 && (b & 0xc0) == 64 {
        Blocked::Private("shared (CGNAT) address")
    } else if a == 192 && b == 0 && c == 0 {
        Blocked::Private("IETF protocol assignment address")
    } else if a == 198 && (b & 0xfe) == 18 {
        Blocked::Private("benchmarking address")
    } else {
        return None;
    };
    Some(found)
}

fn blocked_v6(ip: Ipv6Addr) -> Option<Blocked> {
    if let Some(v4) = embedded_v4(ip) {
        return blocked_v4(v4);
    }
    let first = ip.segments()[0];
    let found = if ip.is_unspecified() {
        Blocked::Always("unspecified address")
    } else if ip.is_multicast() {
        Blocked::Always("multicast address")
    } else if ip.is_loopback() {
        Blocked::Private("loopback address")
    } else if first & 0xffc0 == 0xfe80 {
        Blocked::Private("link-local address")
    } else if first & 0xffc0 == 0xfec0 {
        Blocked::Private("site-local address")
    } else if first & 0xfe00 == 0xfc00 {
        Blocked::Private("unique-local address")
    } else {
        return None;
    };
    Some(found)
}

/// The IPv4 address inside an IPv6 form that reaches it: mapped
/// (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`)
/// and 6to4 (`2002::/16`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let mapped = s[..5] == [0; 5] && s[5] == 0xffff;
    // `::` and `::1` are IPv6's own unspecified and loopback addresses.
    let compatible = s[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback();
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4];
    if mapped || compatible || nat64 {
        return Some(low);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    None
}

/// Checks every address of `host`; all must be allowed.
pub fn check_addresses(host: &str, addrs: &[SocketAddr], allow_private: bool) -> Result<(), AddressRefused> {
    if addrs.is_empty() {
        return Err(AddressRefused { host: host.to_owned(), reason: "resolves to no address".to_owned() });
    }
    for addr in addrs {
        if let Some(reason) = refusal(addr.ip(), allow_private) {
            return Err(AddressRefused { host: host.to_owned(), reason: format!("{} is a {reason}", addr.ip()) });
        }
    }
    Ok(())
}

/// Checks a URL host that is an IP literal (`127.0.0.1`, `[::1]`), which
/// the client connects to without asking the resolver. Names pass here;
/// [`GuardedResolver`] checks them.
pub fn check_literal_host(host: &str, allow_private: bool) -> Result<(), AddressRefused> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => check_addresses(host, &[SocketAddr::new(ip, 0)], allow_private),
        Err(_) => Ok(()),
    }
}

/// A resolver that refuses names resolving to a refused address.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            check_addresses(&host, &addrs, allow_private)?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(ip: &str, allow_private: bool) -> bool {
        address_allowed(ip.parse().unwrap(), allow_private)
    }

    #[test]
    fn public_addresses_pass() {
        for ip in
            ["93.184.216.34", "8.8.8.8", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:8.8.8.8", "64:ff9b::808:808"]
        {
            assert!(allowed(ip, false), "{ip}");
        }
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let internal = [
            "127.0.0.1",
            "127.3.2.1",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
        ];
        for ip in internal {
            assert!(!allowed(ip, false), "{ip} must be refused");
            assert!(allowed(ip, true), "{ip} must pass with allow_private");
        }
    }

    #[test]
    fn never_destinations_are_refused_even_with_allow_private() {
        for ip in ["0.0.0.0", "0.1.2.3", "255.255.255.255", "224.0.0.1", "240.0.0.1", "::", "ff02::1", "::ffff:0.0.0.0"]
        {
            assert!(!allowed(ip, true), "{ip}");
        }
    }

    #[test]
    fn range_edges_are_exact() {
        assert!(allowed("172.15.255.255", false));
        assert!(allowed("172.32.0.0", false));
        assert!(allowed("100.63.255.255", false));
        assert!(allowed("100.128.0.0", false));
        assert!(allowed("11.0.0.0", false));
        assert!(allowed("fbff::1", false));
        assert!(allowed("fe00::1", false));
    }

    #[test]
    fn one_refused_address_refuses_the_host() {
        let addrs: Vec<SocketAddr> = vec!["8.8.8.8:0".parse().unwrap(), "10.0.0.1:0".parse().unwrap()];
        let err = check_addresses("mixed.example", &addrs, false).unwrap_err();
        assert_eq!(err.host, "mixed.example");
        assert!(err.reason.contains("10.0.0.1"), "{err}");
        assert!(check_addresses("mixed.example", &addrs, true).is_ok());
        assert!(check_addresses("none.example", &[], true).is_err());
    }

    #[test]
    fn literal_hosts_are_checked_and_names_left_to_the_resolver() {
        assert!(check_literal_host("[::1]", false).is_err());
        assert!(check_literal_host("[::ffff:127.0.0.1]", false).is_err());
        assert!(check_literal_host("169.254.169.254", false).is_err());
        assert!(check_literal_host("127.0.0.1", true).is_ok());
        assert!(check_literal_host("hooks.example.com", false).is_ok());
    }
}
