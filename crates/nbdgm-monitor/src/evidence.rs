//! What a result proves (issue 15 §1, "never claim what was not seen"): the `host` key is
//! `up` only on evidence from the host itself (an answer, a TCP reset, an ICMP error sent
//! by the target address, a NODE STATUS answer), and a silence that may only mean the
//! kernel's neighbour (ARP) resolution has not finished is recorded as `unknown`.
//!
//! The neighbour resolution time of a device is `(mcast_solicit + app_solicit) ×
//! retrans_time_ms` from `/proc/sys/net/ipv4/neigh/DEV/` (default 3 × 1 s). A check whose
//! probe waits less than that per port (`timeout` with its `retries`: the probe's
//! `total_wait`, plus a margin of [`MARGIN`]) is warned about at start-up; its silent
//! results of on-link targets (a directly connected route, read from the calling thread's
//! `/proc/thread-self/net/route`) become `unknown` unless the host gave evidence in the
//! same probe or its ARP entry is complete (`/proc/net/arp` flag `0x2`): then the neighbour
//! was resolved and the silence is real. Off-link targets resolve the gateway, whose
//! entry is normally complete, so they are left alone.

use crate::config::Check;
use nbdgm_probe::probe::{
    by_silence, clean, icmp_sender, HostResult, PortResult, PortState, ProbeOptions,
};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

pub use crate::store::HostObservation;

/// The kernel default: 3 multicast solicitations 1 s apart.
pub const DEFAULT_RESOLUTION: Duration = Duration::from_secs(3);
/// A wait must exceed the resolution time by this much to see the kernel's verdict.
pub const MARGIN: Duration = Duration::from_millis(250);
/// Most lines read of a `/proc` table.
const MAX_LINES: usize = 4096;

/// Whether one port result is evidence from the host itself.
pub fn is_host_evidence(target: Ipv4Addr, p: &PortResult) -> bool {
    match p.state {
        PortState::Open => true,
        PortState::Closed => match icmp_sender(&p.evidence) {
            Some(from) => from == target,
            None => p.evidence.starts_with("TCP reset"),
        },
        _ => false,
    }
}

/// The evidence that the host is up, if any: `PORT: EVIDENCE` of the first port that
/// proves it, or the NODE STATUS answer.
pub fn host_evidence(h: &HostResult) -> Option<String> {
    if let Some(p) = h.ports.iter().find(|p| is_host_evidence(h.address, p)) {
        return Some(format!(
            "{} {}: {}",
            crate::config::port_name(p.port),
            p.state,
            p.evidence
        ));
    }
    h.info
        .as_ref()
        .map(|_| "137/udp: NODE STATUS answer".to_owned())
}

/// The `host` row of one result: `up` with evidence, `down` when every port says
/// `host-down`, else `unknown` (no observation).
pub fn host_observation(h: &HostResult) -> HostObservation {
    let all_down = !h.ports.is_empty() && h.ports.iter().all(|p| p.state == PortState::HostDown);
    let (state, evidence) = if let Some(e) = host_evidence(h) {
        ("up", e)
    } else if all_down {
        (
            "down",
            format!("every port host-down: {}", h.ports[0].evidence),
        )
    } else {
        let seen: Vec<String> = h
            .ports
            .iter()
            .map(|p| format!("{} {}", crate::config::port_name(p.port), p.state))
            .collect();
        (
            "unknown",
            format!(
                "no answer, reset or ICMP error from the host itself ({})",
                seen.join(", ")
            ),
        )
    };
    HostObservation {
        address: h.address,
        state,
        evidence: clean(&evidence),
    }
}

/// A duration as `300ms`, `1s`, `1.5s`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// One route of `/proc/net/route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dev: String,
    pub dest: u32,
    pub mask: u32,
    pub gateway: u32,
}

fn hex_addr(s: &str) -> Option<u32> {
    // The kernel prints the address in network byte order as a host-order hex number.
    u32::from_str_radix(s, 16).ok().map(u32::from_be)
}

/// Parse `/proc/net/route` (header line first; addresses in hex).
pub fn parse_routes(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .take(MAX_LINES)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            (flags & 1 == 1).then_some(())?; // RTF_UP
            Some(Route {
                dev: f[0].to_owned(),
                dest: hex_addr(f[1])?,
                gateway: hex_addr(f[2])?,
                mask: hex_addr(f.get(7)?)?,
            })
        })
        .collect()
}

/// The device of a directly connected route to `addr` (longest prefix), or `None` when
/// the best route goes through a gateway (off-link) or there is none.
pub fn on_link(routes: &[Route], addr: Ipv4Addr) -> Option<&str> {
    let a = u32::from(addr);
    routes
        .iter()
        .filter(|r| a & r.mask == r.dest & r.mask)
        .max_by_key(|r| r.mask.count_ones())
        .filter(|r| r.gateway == 0 && r.dev != "lo")
        .map(|r| r.dev.as_str())
}

/// Whether `/proc/net/arp` has a complete entry (flag `0x2`) for `addr`.
pub fn arp_complete(text: &str, addr: Ipv4Addr) -> bool {
    text.lines().skip(1).take(MAX_LINES).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.first().and_then(|a| a.parse::<Ipv4Addr>().ok()) == Some(addr)
            && f.get(2)
                .and_then(|x| u32::from_str_radix(x.trim_start_matches("0x"), 16).ok())
                .is_some_and(|flags| flags & 2 != 0)
    })
}

/// `(mcast_solicit + app_solicit) × retrans_time_ms` of a sysctl directory's values.
pub fn resolution_time(
    mcast_solicit: Option<u64>,
    app_solicit: Option<u64>,
    retrans_ms: Option<u64>,
) -> Duration {
    let probes = mcast_solicit
        .unwrap_or(3)
        .saturating_add(app_solicit.unwrap_or(0));
    Duration::from_millis(probes.max(1).saturating_mul(retrans_ms.unwrap_or(1000)))
}

fn read_proc(path: &str) -> String {
    use std::io::Read;
    let mut s = String::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(1 << 20).read_to_string(&mut s);
    }
    s
}

/// The neighbour tables of the calling thread's network namespace, read once per cycle.
#[derive(Debug, Default)]
pub struct Neighbours {
    routes: Vec<Route>,
    arp: String,
    resolution: HashMap<String, Duration>,
}

impl Neighbours {
    /// Read routes and the ARP table (`/proc/thread-self/net/…`: a thread that joined a
    /// namespace sees that namespace's tables).
    pub fn read() -> Neighbours {
        let net = |name: &str| {
            let s = read_proc(&format!("/proc/thread-self/net/{name}"));
            if s.is_empty() {
                read_proc(&format!("/proc/net/{name}"))
            } else {
                s
            }
        };
        Neighbours::from_tables(&net("route"), net("arp"))
    }

    /// From the text of `/proc/net/route` and `/proc/net/arp` (tests).
    pub fn from_tables(route: &str, arp: String) -> Neighbours {
        Neighbours {
            routes: parse_routes(route),
            arp,
            resolution: HashMap::new(),
        }
    }

    /// Set a device's resolution time (tests); otherwise read from `/proc/sys`.
    pub fn set_resolution(&mut self, dev: &str, d: Duration) {
        self.resolution.insert(dev.to_owned(), d);
    }

    fn resolution_of(&mut self, dev: &str) -> Duration {
        if let Some(d) = self.resolution.get(dev) {
            return *d;
        }
        let dir = if dev.is_empty() || dev.contains('/') || dev.starts_with('.') {
            "default"
        } else {
            dev
        };
        let read = |key: &str| {
            read_proc(&format!("/proc/sys/net/ipv4/neigh/{dir}/{key}"))
                .trim()
                .parse::<u64>()
                .ok()
        };
        let d = resolution_time(
            read("mcast_solicit"),
            read("app_solicit"),
            read("retrans_time_ms"),
        );
        if self.resolution.len() < 1024 {
            self.resolution.insert(dev.to_owned(), d);
        }
        d
    }

    /// For an on-link `addr`: its device and that device's resolution time.
    pub fn resolution_for(&mut self, addr: Ipv4Addr) -> Option<(String, Duration)> {
        let dev = on_link(&self.routes, addr)?.to_owned();
        let d = self.resolution_of(&dev);
        Some((dev, d))
    }

    /// The devices with a directly connected route (for host-name targets).
    fn on_link_devices(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .routes
            .iter()
            .filter(|r| r.gateway == 0 && r.dev != "lo")
            .map(|r| r.dev.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Whether a probe with `opts` waits too little for a neighbour that takes `resolution`.
pub fn too_short(opts: &ProbeOptions, resolution: Duration) -> bool {
    opts.total_wait() < resolution.saturating_add(MARGIN)
}

/// The start-up warnings: one per check whose probe waits less than the neighbour
/// resolution time of a device its targets are on (literal addresses and ranges; a
/// host name may be on any directly connected subnet).
pub fn short_timeout_warnings(checks: &[Check], nb: &mut Neighbours) -> Vec<String> {
    let mut out = Vec::new();
    for c in checks {
        let mut devs: Vec<String> = Vec::new();
        for spec in &c.targets {
            let s = spec.trim();
            let addr = s.parse::<Ipv4Addr>().ok().or_else(|| {
                s.parse::<ipnet::Ipv4Net>()
                    .ok()
                    .map(|n| n.hosts().next().unwrap_or(n.network()))
            });
            match addr {
                Some(a) => devs.extend(on_link(&nb.routes, a).map(str::to_owned)),
                None => devs.extend(nb.on_link_devices()),
            }
        }
        devs.sort();
        devs.dedup();
        let opts = c.probe_options();
        let worst = devs
            .iter()
            .map(|d| (d.clone(), nb.resolution_of(d)))
            .max_by_key(|(_, d)| *d);
        if let Some((dev, res)) = worst.filter(|(_, r)| too_short(&opts, *r)) {
            out.push(format!(
                "check {:?}: timeout {} with {} retries waits {} per port, shorter than the \
                 neighbour resolution time {} of {} (on-link targets); silent results of a \
                 host that gives no other sign are recorded as unknown",
                nbdgm_wire::text::escape(&c.name),
                human(c.timeout),
                c.retries,
                human(opts.total_wait()),
                human(res),
                nbdgm_wire::text::escape(&dev),
            ));
        }
    }
    out
}

/// Turn the silent results of `h` into `unknown` when the probe waited less than the
/// neighbour resolution time of its on-link target, the host gave no evidence in this
/// probe and its ARP entry is not complete. Returns how many ports changed.
pub fn mark_unknown(h: &mut HostResult, opts: &ProbeOptions, nb: &mut Neighbours) -> usize {
    let Some((dev, res)) = nb.resolution_for(h.address) else {
        return 0;
    };
    if !too_short(opts, res) || host_evidence(h).is_some() || arp_complete(&nb.arp, h.address) {
        return 0;
    }
    let mut n = 0;
    for p in &mut h.ports {
        if !by_silence(p.state, &p.evidence) {
            continue;
        }
        p.evidence = clean(&format!(
            "no answer within {}; shorter than the neighbour resolution time {} of {} \
             (the probe said {}: {})",
            human(opts.total_wait()),
            human(res),
            dev,
            p.state,
            p.evidence
        ));
        p.state = PortState::Unknown;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_probe::probe::{HostInfo, Port};

    const T: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const ROUTES: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t00000000\t016433C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
        eth0\t006433C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        eth1\t007100CB\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
    const ARP: &str =
        "IP address       HW type     Flags       HW address            Mask     Device\n\
        198.51.100.10    0x1         0x2         02:00:00:00:00:01     *        eth0\n\
        198.51.100.11    0x1         0x0         00:00:00:00:00:00     *        eth0\n";

    fn port(port: Port, state: PortState, evidence: &str) -> PortResult {
        PortResult {
            port,
            state,
            evidence: evidence.into(),
            rtt_ms: None,
            attempts: 1,
        }
    }

    fn host(addr: Ipv4Addr, ports: Vec<PortResult>) -> HostResult {
        HostResult {
            address: addr,
            hostname: None,
            ports,
            info: None,
            duration_ms: 1.0,
        }
    }

    const SILENT_UDP: &str = "no answer to 1 NODE STATUS request(s) in 1000 ms and no ICMP error";
    const SILENT_TCP: &str = "no answer to 1 SYN(s) in 1000 ms (no SYN-ACK, no reset, no ICMP)";

    #[test]
    fn host_up_needs_evidence_from_the_host() {
        let silent = host(
            T,
            vec![
                port(Port::Ns137Udp, PortState::OpenFiltered, SILENT_UDP),
                port(Port::Ssn139Tcp, PortState::Filtered, SILENT_TCP),
            ],
        );
        let o = host_observation(&silent);
        assert_eq!(o.state, "unknown", "{o:?}");
        assert!(o.evidence.contains("139/tcp filtered"), "{o:?}");
        // A router's port unreachable is no sign of the host; the host's own is.
        let router = "ICMP type 3 code 3 (port unreachable) from 198.51.100.1";
        let own = "ICMP type 3 code 3 (port unreachable) from 198.51.100.10";
        let h = host(T, vec![port(Port::Ns137Udp, PortState::Closed, router)]);
        assert_eq!(host_observation(&h).state, "unknown");
        let h = host(T, vec![port(Port::Ns137Udp, PortState::Closed, own)]);
        let o = host_observation(&h);
        assert_eq!(o.state, "up");
        assert_eq!(o.evidence, format!("137/udp closed: {own}"));
        // A reset, an answer, a NODE STATUS answer.
        let h = host(
            T,
            vec![port(
                Port::Smb445Tcp,
                PortState::Closed,
                "TCP reset (connection refused)",
            )],
        );
        assert_eq!(host_observation(&h).state, "up");
        let h = host(
            T,
            vec![port(
                Port::Smb445Tcp,
                PortState::Open,
                "TCP handshake completed (SYN-ACK)",
            )],
        );
        assert_eq!(host_observation(&h).state, "up");
        let mut h = host(
            T,
            vec![port(Port::Dgm138Udp, PortState::LikelyOpen, SILENT_UDP)],
        );
        assert_eq!(host_observation(&h).state, "unknown");
        h.info = Some(HostInfo::default());
        assert_eq!(host_observation(&h).state, "up");
        // Closed by errno alone (no sender known) proves nothing.
        let h = host(
            T,
            vec![port(
                Port::Ns137Udp,
                PortState::Closed,
                "Connection refused (ECONNREFUSED)",
            )],
        );
        assert_eq!(host_observation(&h).state, "unknown");
        // Down: every port host-down.
        let down = "ICMP type 3 code 1 (host unreachable) from 198.51.100.20 (this host: no ARP answer from the target)";
        let h = host(
            T,
            vec![
                port(Port::Ns137Udp, PortState::HostDown, down),
                port(Port::Smb445Tcp, PortState::HostDown, down),
            ],
        );
        assert_eq!(host_observation(&h).state, "down");
        let h = host(
            T,
            vec![
                port(Port::Ns137Udp, PortState::HostDown, down),
                port(Port::Smb445Tcp, PortState::Filtered, SILENT_TCP),
            ],
        );
        assert_eq!(host_observation(&h).state, "unknown");
    }

    #[test]
    fn routes_and_arp() {
        let r = parse_routes(ROUTES);
        assert_eq!(r.len(), 2, "the route without RTF_UP is skipped: {r:?}");
        assert_eq!(on_link(&r, T), Some("eth0"));
        assert_eq!(
            on_link(&r, Ipv4Addr::new(203, 0, 113, 5)),
            None,
            "off-link: via the gateway"
        );
        assert!(arp_complete(ARP, T));
        assert!(!arp_complete(ARP, Ipv4Addr::new(198, 51, 100, 11)));
        assert!(!arp_complete(ARP, Ipv4Addr::new(198, 51, 100, 12)));
        assert_eq!(resolution_time(None, None, None), DEFAULT_RESOLUTION);
        assert_eq!(
            resolution_time(Some(1), Some(1), Some(500)),
            Duration::from_secs(1)
        );
        assert_eq!(
            resolution_time(Some(0), Some(0), Some(500)),
            Duration::from_millis(500)
        );
        assert_eq!(human(Duration::from_millis(300)), "300ms");
        assert_eq!(human(Duration::from_secs(3)), "3s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }

    fn opts(timeout_ms: u64, retries: u32) -> ProbeOptions {
        ProbeOptions {
            timeout: Duration::from_millis(timeout_ms),
            retries,
            ..ProbeOptions::default()
        }
    }

    #[test]
    fn short_waits_turn_silence_into_unknown() {
        let silent = |addr| {
            host(
                addr,
                vec![
                    port(Port::Ns137Udp, PortState::OpenFiltered, SILENT_UDP),
                    port(Port::Dgm138Udp, PortState::HostDown, "host unreachable"),
                    port(Port::Ssn139Tcp, PortState::Filtered, SILENT_TCP),
                    port(Port::Smb445Tcp, PortState::Filtered, "ICMP type 3 code 13 (communication administratively prohibited) from 198.51.100.1"),
                ],
            )
        };
        let no_arp = Ipv4Addr::new(198, 51, 100, 11);
        let mut nb = Neighbours::from_tables(ROUTES, ARP.into());
        nb.set_resolution("eth0", DEFAULT_RESOLUTION);
        let mut h = silent(no_arp);
        assert_eq!(mark_unknown(&mut h, &opts(1000, 0), &mut nb), 2);
        let states: Vec<_> = h.ports.iter().map(|p| p.state).collect();
        use PortState::*;
        assert_eq!(states, [Unknown, HostDown, Unknown, Filtered]);
        assert!(h.ports[0].evidence.starts_with("no answer within 1s; shorter than the neighbour resolution time 3s of eth0 (the probe said open|filtered: no answer"), "{}", h.ports[0].evidence);
        assert_eq!(host_observation(&h).state, "unknown");
        // Long enough (1 + 2 + 4 s), a complete ARP entry, evidence in the same probe,
        // or an off-link target: nothing changes.
        let mut h = silent(no_arp);
        assert_eq!(mark_unknown(&mut h, &opts(1000, 2), &mut nb), 0);
        let mut h = silent(T);
        assert_eq!(mark_unknown(&mut h, &opts(1000, 0), &mut nb), 0);
        let mut h = silent(no_arp);
        h.ports.push(port(
            Port::Dgm138Tcp,
            PortState::Closed,
            "TCP reset (connection refused)",
        ));
        assert_eq!(mark_unknown(&mut h, &opts(1000, 0), &mut nb), 0);
        let mut h = silent(Ipv4Addr::new(203, 0, 113, 5));
        assert_eq!(mark_unknown(&mut h, &opts(1000, 0), &mut nb), 0);
        // A faster neighbour setting makes 1 s enough.
        nb.set_resolution("eth0", Duration::from_millis(500));
        let mut h = silent(no_arp);
        assert_eq!(mark_unknown(&mut h, &opts(1000, 0), &mut nb), 0);
    }
}
