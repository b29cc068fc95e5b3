//! The outbound guard of the HTTP tools (`http.*`, user `http:` tools):
//! no request reaches a loopback, private, link-local (cloud metadata
//! included), carrier-grade NAT, unspecified or multicast address unless
//! the operator allows it (`AOS_HTTP_ALLOW=127.0.0.1:8080,intranet:443`).
//!
//! Checked three times: the request's URL before it is sent (a name is
//! resolved and every address it has is checked with the port); every
//! redirect's URL (an address written in it); and every address the
//! client's resolver hands to the connector, so a name that resolves
//! differently the second time (DNS rebinding) or a redirect to a name is
//! caught where the connection is made. Provider endpoints (the models) are
//! the operator's configuration and do not go through this client.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// One allowed destination: a host (a name or an address) and a port, or
/// any port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Allow {
    host: String,
    port: Option<u16>,
}

/// Which internal destinations are allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guard {
    allow: Vec<Allow>,
    /// `AOS_HTTP_ALLOW=*`: the guard is off.
    all: bool,
}

/// Why an address is internal, for the message.
pub fn internal_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_kind(v4);
            }
            let seg0 = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if seg0 & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if seg0 & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if seg0 == 0x0064 && v6.segments()[1] == 0xff9b {
                // NAT64 of an IPv4 address: judge the embedded address.
                let s = v6.segments();
                v4_kind(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
            } else {
                None
            }
        }
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if o == [169, 254, 169, 254] || o == [100, 100, 100, 200] {
        Some("cloud metadata")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_private() {
        Some("private")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("carrier-grade NAT")
    } else if o[0] == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Some("broadcast or multicast")
    } else {
        None
    }
}

impl Guard {
    /// `AOS_HTTP_ALLOW` (comma-separated `host:port`, `host`, `[v6]:port`, or `*`).
    pub fn from_env() -> Guard {
        Guard::parse(&std::env::var("AOS_HTTP_ALLOW").unwrap_or_default())
    }

    /// Parses an allow list; entries that cannot be read are ignored (they
    /// allow nothing).
    pub fn parse(spec: &str) -> Guard {
        let mut g = Guard::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                g.all = true;
                continue;
            }
            let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
                match rest.split_once(']') {
                    Some((h, p)) => (h.to_string(), p.strip_prefix(':').and_then(|p| p.parse().ok())),
                    None => continue,
                }
            } else {
                match entry.rsplit_once(':') {
                    Some((h, p)) if !h.contains(':') => match p.parse() {
                        Ok(port) => (h.to_string(), Some(port)),
                        Err(_) => continue,
                    },
                    // A bare IPv6 address.
                    Some(_) => (entry.to_string(), None),
                    None => (entry.to_string(), None),
                }
            };
            g.allow.push(Allow { host: normalize(&host), port });
        }
        g
    }

    /// Allows `host:port` besides what the list allows (tests, embedders).
    pub fn allowing(mut self, host: &str, port: Option<u16>) -> Guard {
        self.allow.push(Allow { host: normalize(host), port });
        self
    }

    /// With the port (a URL being checked): an entry for the host or the
    /// address, on that port or any. Without it (the resolver, which does
    /// not know the port): an entry for the name itself (its port was
    /// checked with the URL), or for the address on any port.
    fn allowed(&self, host: &str, ip: IpAddr, port: Option<u16>) -> bool {
        if self.all {
            return true;
        }
        let host = normalize(host);
        let ip_s = ip.to_string();
        match port {
            Some(p) => self.allow.iter().any(|a| (a.host == host || a.host == ip_s) && a.port.is_none_or(|ap| ap == p)),
            None => self.allow.iter().any(|a| (a.host == host && host != ip_s) || (a.host == ip_s && a.port.is_none())),
        }
    }

    /// Refuses `ip` (reached as `host`, on `port` when known) when it is
    /// internal and not allowed.
    pub fn check(&self, host: &str, ip: IpAddr, port: Option<u16>) -> Result<(), GuardError> {
        match internal_kind(ip) {
            Some(kind) if !self.allowed(host, ip, port) => {
                let dest = match port {
                    Some(p) => SocketAddr::new(ip, p).to_string(),
                    None => ip.to_string(),
                };
                let named = if normalize(host) == ip.to_string() { String::new() } else { format!(" (`{host}`)") };
                let allow = match port {
                    Some(p) if named.is_empty() => format!("{}:{p}", bracket(ip)),
                    Some(p) => format!("{host}:{p}"),
                    None => host.to_string(),
                };
                Err(GuardError::Refused(format!(
                    "refused: {dest}{named} is a {kind} address; outbound HTTP to loopback, private, link-local and metadata addresses is refused unless the operator allows it (AOS_HTTP_ALLOW={allow})"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Checks a URL before it is requested: an address in it, or every
    /// address its name resolves to.
    pub async fn check_url(&self, url: &reqwest::Url) -> Result<(), GuardError> {
        if self.all {
            return Ok(());
        }
        let port = url.port_or_known_default();
        match host_of(url) {
            Some(Host::Ip(ip)) => self.check(&ip.to_string(), ip, port),
            Some(Host::Name(name)) => {
                let name = name.as_str();
                let addrs = tokio::net::lookup_host((name, port.unwrap_or(0)))
                    .await
                    .map_err(|e| GuardError::Unresolved { name: name.to_string(), message: e.to_string() })?;
                for a in addrs {
                    self.check(name, a.ip(), port)?;
                }
                Ok(())
            }
            None => Err(GuardError::NoHost(url.to_string())),
        }
    }

    /// Checks a redirect's target when it names an address (a name is
    /// checked by the resolver when the connection is made).
    fn check_redirect(&self, url: &reqwest::Url) -> Result<(), GuardError> {
        let port = url.port_or_known_default();
        match host_of(url) {
            Some(Host::Ip(ip)) => self.check(&ip.to_string(), ip, port),
            // A name allowed on other ports only: the resolver would let
            // its addresses through, so the port is checked here.
            Some(Host::Name(name)) if !self.all => {
                let n = normalize(&name);
                let entries: Vec<&Allow> = self.allow.iter().filter(|a| a.host == n).collect();
                if !entries.is_empty() && !entries.iter().any(|a| a.port.is_none() || a.port == port) {
                    return Err(GuardError::Refused(format!(
                        "refused: `{name}` is allowed on other ports only; outbound HTTP to internal addresses is refused unless the operator allows it (AOS_HTTP_ALLOW={name}:{})",
                        port.unwrap_or(0)
                    )));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Why the guard stopped a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// An internal destination the operator did not allow.
    #[error("{0}")]
    Refused(String),
    #[error("cannot resolve `{name}`: {message}")]
    Unresolved { name: String, message: String },
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error("`{0}` has no address")]
    NoAddress(String),
}

enum Host {
    Ip(IpAddr),
    Name(String),
}

fn host_of(url: &reqwest::Url) -> Option<Host> {
    let h = url.host_str()?;
    let bare = h.trim_start_matches('[').trim_end_matches(']');
    Some(match bare.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Name(h.to_string()),
    })
}

fn normalize(host: &str) -> String {
    host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

fn bracket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The client's resolver: the system's, with internal addresses removed
/// unless allowed for that name; a name with nothing left is refused.
struct GuardedResolver(Arc<Guard>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let kept: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match guard.check(&host, a.ip(), None) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                })
                .collect();
            if kept.is_empty() {
                let why = refused.unwrap_or(GuardError::NoAddress(host));
                return Err(why.into());
            }
            let it: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(it)
        })
    }
}

/// Puts the guard into a client being built: its resolver and a redirect
/// policy (at most `max_redirects`) that checks every hop.
pub fn install(builder: reqwest::ClientBuilder, guard: Arc<Guard>, max_redirects: usize) -> reqwest::ClientBuilder {
    let g = guard.clone();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= max_redirects {
            return attempt.error(format!("redirected more than {max_redirects} times"));
        }
        match g.check_redirect(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(e) => {
                let to = crate::redact::url_passwords(attempt.url().as_str());
                attempt.error(format!("redirect to {to} {e}"))
            }
        }
    });
    builder.dns_resolver(Arc::new(GuardedResolver(guard))).redirect(policy).no_proxy()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn internal_addresses_are_named() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("fd00:ec2::254", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
        ] {
            assert_eq!(internal_kind(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "172.32.0.1"] {
            assert_eq!(internal_kind(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn the_allow_list_matches_host_and_port() {
        let g = Guard::parse("127.0.0.1:8080, localhost:9000,10.0.0.5,[::1]:81, bad:port");
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(g.check("127.0.0.1", lo, Some(8080)).is_ok());
        assert!(g.check("127.0.0.1", lo, Some(8081)).unwrap_err().to_string().contains("AOS_HTTP_ALLOW=127.0.0.1:8081"));
        assert!(g.check("localhost", lo, Some(9000)).is_ok());
        assert!(g.check("10.0.0.5", "10.0.0.5".parse().unwrap(), Some(1)).is_ok());
        assert!(g.check("::1", "::1".parse().unwrap(), Some(81)).is_ok());
        assert!(g.check("x", "169.254.169.254".parse().unwrap(), Some(80)).unwrap_err().to_string().contains("cloud metadata"));
        assert!(g.check("example.com", "93.184.216.34".parse().unwrap(), Some(80)).is_ok());
        assert!(Guard::parse("*").check("x", lo, Some(1)).is_ok());
        assert!(Guard::default().check("x", lo, None).is_err());
    }
}
