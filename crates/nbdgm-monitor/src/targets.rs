//! Check targets: IPv4 addresses, CIDR ranges and host names, validated at load time and
//! expanded (host names resolved) on each cycle, bounded by the config's target limit.

use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use std::time::Duration;

/// One address to probe, with the host name it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub address: Ipv4Addr,
    pub hostname: Option<String>,
}

fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        })
}

/// Why a target spec is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("{0:?} is not an IPv4 CIDR range")]
    NotACidr(String),
    #[error("{0:?} is not an IPv4 address, CIDR range or host name")]
    NotATarget(String),
}

/// How many addresses a target spec stands for (a host name counts 1).
pub fn count(spec: &str) -> Result<usize, TargetError> {
    let s = spec.trim();
    if s.parse::<Ipv4Addr>().is_ok() {
        return Ok(1);
    }
    if s.contains('/') {
        let net: Ipv4Net = s
            .parse()
            .map_err(|_| TargetError::NotACidr(spec.to_owned()))?;
        return Ok(if net.prefix_len() >= 31 {
            1usize << (32 - net.prefix_len())
        } else {
            (1usize << (32 - net.prefix_len())) - 2
        });
    }
    if valid_hostname(s) {
        Ok(1)
    } else {
        Err(TargetError::NotATarget(spec.to_owned()))
    }
}

/// Expand specs into addresses (host names resolved, IPv4 only, first address; a name
/// that does not resolve within 5 s is skipped and returned in the second list).
pub async fn expand(specs: &[String], limit: usize) -> (Vec<Target>, Vec<String>) {
    let mut out: Vec<Target> = Vec::new();
    let mut failed = Vec::new();
    for spec in specs {
        let s = spec.trim();
        if let Ok(a) = s.parse::<Ipv4Addr>() {
            out.push(Target {
                address: a,
                hostname: None,
            });
        } else if let Ok(net) = s.parse::<Ipv4Net>() {
            let hosts: Box<dyn Iterator<Item = Ipv4Addr>> = if net.prefix_len() >= 31 {
                Box::new(
                    (u32::from(net.network())..=u32::from(net.broadcast())).map(Ipv4Addr::from),
                )
            } else {
                Box::new(net.hosts())
            };
            for a in hosts.take(limit.saturating_sub(out.len())) {
                out.push(Target {
                    address: a,
                    hostname: None,
                });
            }
        } else if valid_hostname(s) {
            let lookup = tokio::net::lookup_host((s, 0u16));
            match tokio::time::timeout(Duration::from_secs(5), lookup).await {
                Ok(Ok(addrs)) => {
                    let v4 = addrs.filter_map(|a| match a.ip() {
                        std::net::IpAddr::V4(v) => Some(v),
                        _ => None,
                    });
                    match v4.into_iter().next() {
                        Some(a) => out.push(Target {
                            address: a,
                            hostname: Some(s.to_owned()),
                        }),
                        None => failed.push(s.to_owned()),
                    }
                }
                _ => failed.push(s.to_owned()),
            }
        } else {
            failed.push(s.to_owned());
        }
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|t| seen.insert(t.address));
    (out, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(count("127.0.0.1").unwrap(), 1);
        assert_eq!(count("198.51.100.0/30").unwrap(), 2);
        assert_eq!(count("198.51.100.0/32").unwrap(), 1);
        assert_eq!(count("fileserver.example").unwrap(), 1);
        assert!(count("bad name!").is_err());
        assert!(count("1.2.3.4/40").is_err());
    }

    #[tokio::test]
    async fn expands() {
        let (t, f) = expand(&["198.51.100.0/30".into(), "127.0.0.1".into()], 10).await;
        assert!(f.is_empty());
        let a: Vec<_> = t.iter().map(|t| t.address.to_string()).collect();
        assert_eq!(a, ["198.51.100.1", "198.51.100.2", "127.0.0.1"]);
        let (t, _) = expand(&["198.51.100.0/24".into()], 5).await;
        assert_eq!(t.len(), 5);
    }
}
