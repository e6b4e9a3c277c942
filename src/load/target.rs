//! The target URL: parsing `http://host[:port][/path][?query]`, resolving the
//! host, and the loopback-only guard.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use super::error::LoadError;

/// A parsed `http://` URL: what to connect to and what to put in the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The URL as given, for reports.
    pub url: String,
    /// The host as written in the URL (IPv6 without brackets).
    pub host: String,
    /// The port (80 when the URL names none).
    pub port: u16,
    /// The `Host` header value: the authority as written, port included when
    /// the URL has one.
    pub host_header: String,
    /// The request target: path and query, `/` when the URL has no path.
    pub path: String,
}

impl Target {
    /// Parses `url`; only `http` is supported (no TLS in a loopback lab).
    pub fn parse(url: &str) -> Result<Target, LoadError> {
        let invalid = |why: &str| LoadError::InvalidUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid("expected http://HOST[:PORT]/PATH"));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "http" => {}
            "https" => {
                return Err(LoadError::UnsupportedScheme {
                    url: url.to_string(),
                    scheme: scheme.to_string(),
                    why: "https (TLS) is not supported; use http://".to_string(),
                })
            }
            _ => {
                return Err(LoadError::UnsupportedScheme {
                    url: url.to_string(),
                    scheme: scheme.to_string(),
                    why: "only http:// is supported".to_string(),
                })
            }
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        if authority.is_empty() {
            return Err(invalid("no host"));
        }
        if authority.contains('@') {
            return Err(invalid("user information (user@host) is not supported"));
        }
        let (host, port) = split_host_port(authority).map_err(|why| invalid(&why))?;
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        if let Some(bad) = path.bytes().find(|&b| b <= b' ' || b == 0x7f) {
            return Err(invalid(&format!(
                "the path holds byte 0x{bad:02x}; percent-encode it"
            )));
        }
        Ok(Target {
            url: url.to_string(),
            host: host.to_string(),
            port,
            host_header: authority.to_string(),
            path,
        })
    }

    /// Resolves the host. Unless `allow_remote`, every address it resolves to
    /// must be loopback: a load generator aimed at someone else's machine by
    /// a typo is a denial-of-service attack.
    pub fn resolve(&self, allow_remote: bool) -> Result<Vec<SocketAddr>, LoadError> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| LoadError::Resolve {
                host: self.host.clone(),
                why: e.to_string(),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(LoadError::Resolve {
                host: self.host.clone(),
                why: "no addresses".to_string(),
            });
        }
        if !allow_remote && !addrs.iter().all(|a| is_loopback(a.ip())) {
            return Err(LoadError::Remote {
                host: self.host.clone(),
                addrs,
            });
        }
        Ok(addrs)
    }
}

/// Whether `ip` is 127.0.0.0/8, ::1, or an IPv4-mapped 127.0.0.0/8.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Splits `host[:port]` (RFC 3986 §3.2.2): the host an IPv6 address in
/// brackets (`[::1]`), or a name or IPv4 address (unreserved characters,
/// sub-delims and `%HH`). An IPv6 address without brackets is refused with
/// the bracketed form to use, not read as a host and a port.
fn split_host_port(authority: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("unclosed [ in an IPv6 host")?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("[{host}] is not an IPv6 address"));
        }
        match after {
            "" => (host, None),
            p if p.starts_with(':') => (host, Some(&p[1..])),
            _ => return Err("unexpected text after ]".to_string()),
        }
    } else {
        if authority.matches(':').count() > 1 {
            let example = match authority.rsplit_once(':') {
                _ if authority.parse::<Ipv6Addr>().is_ok() => format!("http://[{authority}]/"),
                Some((host, port)) if host.parse::<Ipv6Addr>().is_ok() => {
                    format!("http://[{host}]:{port}/")
                }
                _ => "http://[::1]:8080/".to_string(),
            };
            return Err(format!(
                "more than one ':' in the host: an IPv6 address goes in brackets, as {example}"
            ));
        }
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".to_string());
    }
    if host.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("the host holds a space or control character".to_string());
    }
    if let Some(bad) = host
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=%:".contains(c)))
    {
        return Err(format!("the host holds {bad:?}, which no host name may"));
    }
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("invalid port {p:?}: expected 1-65535")),
            Ok(p) => p,
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let t = Target::parse("http://127.0.0.1:9002/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 9002, "/")
        );
        assert_eq!(t.host_header, "127.0.0.1:9002");
        let t = Target::parse("HTTP://localhost").unwrap();
        assert_eq!(
            (t.port, t.path.as_str(), t.host_header.as_str()),
            (80, "/", "localhost")
        );
        let t = Target::parse("http://[::1]:8080/a/b?x=1#frag").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 8080, "/a/b?x=1")
        );
        assert_eq!(t.host_header, "[::1]:8080");
        let t = Target::parse("http://h?q").unwrap();
        assert_eq!(t.path, "/?q");
    }

    #[test]
    fn ipv6_loopback_in_brackets() {
        let t = Target::parse("http://[::1]/").unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.path.as_str(),
                t.host_header.as_str()
            ),
            ("::1", 80, "/", "[::1]")
        );
        let t = Target::parse("http://[::1]:8080/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        assert_eq!(t.resolve(false).unwrap()[0], "[::1]:8080".parse().unwrap());
        for bad in [
            "http://::1/",
            "http://::1:8080/",
            "http://[::1/",
            "http://[zz]/",
        ] {
            match Target::parse(bad) {
                Err(LoadError::InvalidUrl { why, .. }) => {
                    assert!(why.contains("IPv6"), "{bad}: {why}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "127.0.0.1:80/",
            "http://",
            "http:///x",
            "http://h:0/",
            "http://h:99999/",
            "http://h:x/",
            "http://u@h/",
            "http://[::1/",
            "http://h/a b",
            "http://::1/",
            "http://[::1]x/",
            "http://h<i>/",
            "http://h:1:2/",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(LoadError::InvalidUrl { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            Target::parse("https://127.0.0.1/"),
            Err(LoadError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            Target::parse("ftp://127.0.0.1/"),
            Err(LoadError::UnsupportedScheme { .. })
        ));
    }

    #[test]
    fn loopback_guard() {
        assert!(is_loopback("127.1.2.3".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_loopback("10.0.0.1".parse().unwrap()));
        assert!(!is_loopback("::ffff:10.0.0.1".parse().unwrap()));
        let remote = Target::parse("http://10.0.0.1/").unwrap();
        assert!(matches!(
            remote.resolve(false),
            Err(LoadError::Remote { .. })
        ));
        assert!(remote.resolve(true).is_ok());
    }
}
