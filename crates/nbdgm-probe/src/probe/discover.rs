//! Host discovery before probing, for targets on a directly connected subnet (the route to
//! them has no gateway): ARP requests (RFC 826, [`super::arp`]) from an `AF_PACKET` socket
//! bound to the outgoing interface and to the ARP EtherType, as nmap does on a LAN
//! (docs/probe.md "Host discovery", docs/BENCHMARKS.md §4.5). Every request goes through
//! [`Scope::check`] and the run's [`RateLimiter`]; the replies read are bounded in count and
//! time. Without CAP_NET_RAW the socket cannot be opened and the caller probes every address
//! as before (discovery "none").

use super::arp::{self, Mac};
use super::{RateLimiter, Scope};
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests per address: the first and this many retransmissions to addresses still silent.
pub const ARP_RETRIES: u32 = 2;
/// Time between the rounds of requests (from the end of one round to the next).
pub const ARP_INTERVAL: Duration = Duration::from_millis(250);
/// Wait for late replies after the last round.
pub const ARP_FINAL_WAIT: Duration = Duration::from_millis(300);
/// The whole sweep stops after this, whatever the rate.
pub const MAX_SWEEP: Duration = Duration::from_secs(120);
/// At most this many ARP frames are read per target address (plus [`FRAME_SLACK`]): other
/// hosts' ARP traffic on the link, or a hostile neighbour flooding replies, cannot keep the
/// sweep reading.
pub const FRAMES_PER_TARGET: usize = 16;
pub const FRAME_SLACK: usize = 1024;
/// How often the sweep reads the ARP socket while it waits.
pub const RECV_POLL: Duration = Duration::from_millis(2);

/// The interface a directly connected target is reached on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link {
    pub iface: String,
    pub ifindex: u32,
    pub mac: Mac,
    /// Our address on it (the source the kernel picks for the target).
    pub source: Ipv4Addr,
}

/// One route of `/proc/net/route` (the main table of the current network namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub iface: String,
    pub dest: Ipv4Addr,
    pub mask: Ipv4Addr,
    pub gateway: Option<Ipv4Addr>,
    pub metric: u32,
}

/// Parse `/proc/net/route` (hexadecimal addresses in host byte order). Malformed lines and
/// routes that are not up are skipped.
pub fn parse_routes(text: &str) -> Vec<Route> {
    let addr = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            if flags & 1 == 0 {
                return None; // RTF_UP
            }
            let gw = addr(f.get(2)?)?;
            Some(Route {
                iface: (*f.first()?).to_owned(),
                dest: addr(f.get(1)?)?,
                gateway: (flags & 2 != 0 && !gw.is_unspecified()).then_some(gw),
                metric: f.get(6)?.parse().ok()?,
                mask: addr(f.get(7)?)?,
            })
        })
        .collect()
}

/// The route the main table uses for `dest`: longest prefix, then lowest metric.
pub fn route_for(routes: &[Route], dest: Ipv4Addr) -> Option<&Route> {
    let d = u32::from(dest);
    routes
        .iter()
        .filter(|r| d & u32::from(r.mask) == u32::from(r.dest) & u32::from(r.mask))
        .min_by_key(|r| (std::cmp::Reverse(u32::from(r.mask).count_ones()), r.metric))
}

/// The interfaces' index and MAC, by name (netlink, in the current namespace).
fn link_layer() -> HashMap<String, (u32, Mac)> {
    let mut out = HashMap::new();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return out;
    };
    for a in addrs {
        let Some(link) = a.address.as_ref().and_then(|s| s.as_link_addr()) else {
            continue;
        };
        if let Some(mac) = link.addr() {
            if let Ok(idx) = u32::try_from(link.ifindex()) {
                out.insert(a.interface_name.clone(), (idx, mac));
            }
        }
    }
    out
}

/// The source address the kernel would use towards `dest` (a UDP connect sends nothing).
fn source_for(dest: Ipv4Addr) -> Option<Ipv4Addr> {
    let s = std::net::UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    s.connect(SocketAddrV4::new(dest, 9)).ok()?;
    match s.local_addr().ok()? {
        SocketAddr::V4(a) => Some(*a.ip()),
        SocketAddr::V6(_) => None,
    }
}

/// For each address, the Ethernet link it is directly connected on, or `None` (routed through
/// a gateway, one of our own addresses, no route, or an interface without a MAC such as `lo`).
pub fn on_link(addrs: &[Ipv4Addr]) -> Vec<Option<Link>> {
    let routes = std::fs::read_to_string("/proc/net/route")
        .map(|t| parse_routes(&t))
        .unwrap_or_default();
    let ll = link_layer();
    addrs
        .iter()
        .map(|&a| {
            let r = route_for(&routes, a)?;
            if r.gateway.is_some() {
                return None;
            }
            let &(ifindex, mac) = ll.get(&r.iface)?;
            let source = source_for(a)?;
            (source != a && mac != [0; 6]).then(|| Link {
                iface: r.iface.clone(),
                ifindex,
                mac,
                source,
            })
        })
        .collect()
}

/// What the sweep of one link found.
#[derive(Debug, Clone, Default)]
pub struct Sweep {
    /// Requests sent per address.
    pub requests: HashMap<Ipv4Addr, u32>,
    /// Addresses that answered: MAC and the time from the last request to the reply.
    pub up: HashMap<Ipv4Addr, (Mac, Duration)>,
    /// ARP frames read and ignored (requests, replies to others, malformed, not a target).
    pub ignored: u64,
    /// The frame limit was reached and reading stopped early.
    pub frame_limit_hit: bool,
    /// Sends that failed.
    pub send_errors: u64,
}

fn open_socket(link: &Link) -> io::Result<socket2::Socket> {
    let proto = i32::from(arp::ETHERTYPE_ARP.to_be());
    let s = socket2::Socket::new(
        socket2::Domain::PACKET,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::from(proto)),
    )?;
    s.set_nonblocking(true)?;
    s.bind(&link_addr(link.ifindex, [0; 6])?)?;
    Ok(s)
}

/// A `sockaddr_ll` for the ARP EtherType on interface `ifindex`, to `mac`.
#[allow(unsafe_code)] // socket2 has no safe constructor for sockaddr_ll; see SAFETY below
fn link_addr(ifindex: u32, mac: Mac) -> io::Result<socket2::SockAddr> {
    let mut ll: libc::sockaddr_ll = zeroed_ll();
    ll.sll_family = libc::AF_PACKET as libc::c_ushort;
    ll.sll_protocol = arp::ETHERTYPE_ARP.to_be();
    ll.sll_ifindex = i32::try_from(ifindex).map_err(|_| io::ErrorKind::InvalidInput)?;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&mac);
    // SAFETY: `storage` is a sockaddr_storage, larger than and aligned for sockaddr_ll; the
    // write is in bounds and the length given is exactly the sockaddr_ll written.
    let (_, addr) = unsafe {
        socket2::SockAddr::try_init(|storage, len| {
            std::ptr::write(storage.cast::<libc::sockaddr_ll>(), ll);
            *len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            Ok(())
        })
    }?;
    Ok(addr)
}

fn zeroed_ll() -> libc::sockaddr_ll {
    libc::sockaddr_ll {
        sll_family: 0,
        sll_protocol: 0,
        sll_ifindex: 0,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    }
}

/// Open the ARP socket of `link`: fails without CAP_NET_RAW (the caller then probes without
/// discovery).
pub fn open(link: &Link) -> io::Result<socket2::Socket> {
    open_socket(link)
}

/// ARP-sweep `addrs` on `link`: each address gets a request, and up to [`ARP_RETRIES`]
/// more rounds go to those still silent, [`ARP_INTERVAL`] apart, then [`ARP_FINAL_WAIT`].
/// Every request passes `scope` and `limiter`. `on_up` is called once per address as its
/// first valid reply arrives (so probing can start while the sweep goes on).
pub async fn sweep(
    sock: &socket2::Socket,
    link: &Link,
    addrs: &[Ipv4Addr],
    scope: &Scope,
    limiter: &RateLimiter,
    mut on_up: impl FnMut(Ipv4Addr, Mac, Duration),
) -> Sweep {
    let state = Mutex::new(Sweep::default());
    let sent_at: Mutex<HashMap<Ipv4Addr, Instant>> = Mutex::new(HashMap::new());
    let lock = |m: &Mutex<Sweep>| -> Sweep { m.lock().map(|g| g.clone()).unwrap_or_default() };
    let wanted: std::collections::HashSet<Ipv4Addr> = addrs.iter().copied().collect();
    let stop = tokio::sync::Notify::new();
    let deadline = tokio::time::Instant::now() + MAX_SWEEP;
    let broadcast = link_addr(link.ifindex, [0xff; 6]);
    let send = async {
        for round in 0..=ARP_RETRIES {
            if round > 0 {
                tokio::time::sleep(ARP_INTERVAL).await;
            }
            for &a in addrs {
                let answered = state.lock().map(|s| s.up.contains_key(&a)).unwrap_or(false);
                if answered || tokio::time::Instant::now() >= deadline || scope.check(a).is_err() {
                    continue;
                }
                limiter.acquire().await;
                let frame = arp::request(link.mac, link.source, a);
                let ok = match &broadcast {
                    Ok(to) => sock.send_to(&frame, to).is_ok(),
                    Err(_) => false,
                };
                if let Ok(mut s) = state.lock() {
                    *s.requests.entry(a).or_default() += 1;
                    s.send_errors += u64::from(!ok);
                }
                if let Ok(mut t) = sent_at.lock() {
                    t.insert(a, Instant::now());
                }
            }
        }
        tokio::time::sleep(ARP_FINAL_WAIT).await;
        stop.notify_one();
    };
    let limit = addrs.len().saturating_mul(FRAMES_PER_TARGET) + FRAME_SLACK;
    let recv = async {
        let mut buf = [0u8; 128];
        let mut frames = 0usize;
        let mut stopping = false;
        loop {
            // Drain what is queued, then poll again after RECV_POLL (no epoll registration:
            // tokio's is `unsafe` for a raw socket).
            loop {
                if frames >= limit {
                    if let Ok(mut s) = state.lock() {
                        s.frame_limit_hit = true;
                    }
                    return;
                }
                let n = match (&*sock).read(&mut buf) {
                    Ok(n) => n,
                    Err(_) => break, // would block, or an error: poll again later
                };
                frames += 1;
                let got = buf.get(..n).and_then(|b| arp::parse_reply(b, link.source));
                let Ok(mut s) = state.lock() else { return };
                match got {
                    Some((ip, mac)) if wanted.contains(&ip) && !s.up.contains_key(&ip) => {
                        let sent = sent_at.lock().ok().and_then(|t| t.get(&ip).copied());
                        let rtt = sent.map_or(Duration::ZERO, |t| t.elapsed());
                        s.up.insert(ip, (mac, rtt));
                        drop(s);
                        on_up(ip, mac, rtt);
                    }
                    _ => s.ignored += 1,
                }
            }
            if stopping || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                _ = stop.notified() => stopping = true,
                _ = tokio::time::sleep(RECV_POLL) => {}
            }
        }
    };
    tokio::join!(send, recv);
    lock(&state)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ROUTES: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n\
veth1\t006433C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
veth1\t106433C6\t FE6433C6\t0003\t0\t0\t0\tF0FFFFFF\t0\t0\t0\n\
down0\t00CB0071\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
garbage line\n";

    #[test]
    fn routes_longest_prefix_and_gateway() {
        if cfg!(target_endian = "big") {
            return; // the sample is a little-endian host's file
        }
        let r = parse_routes(ROUTES);
        assert_eq!(r.len(), 4, "{r:?}");
        let on = |a: [u8; 4]| route_for(&r, Ipv4Addr::from(a)).cloned();
        let x = on([198, 51, 100, 7]).unwrap();
        assert_eq!((x.iface.as_str(), x.gateway), ("veth1", None));
        let y = on([198, 51, 100, 20]).unwrap();
        assert_eq!(y.gateway, Some(Ipv4Addr::new(198, 51, 100, 254)));
        let z = on([192, 168, 0, 9]).unwrap();
        assert_eq!((z.iface.as_str(), z.gateway), ("eth0", None));
        let d = on([8, 8, 8, 8]).unwrap();
        assert_eq!(d.gateway, Some(Ipv4Addr::new(192, 168, 0, 1)));
        assert!(
            on([203, 0, 113, 1]).unwrap().gateway.is_some(),
            "route down ignored"
        );
        assert!(route_for(&parse_routes(""), Ipv4Addr::LOCALHOST).is_none());
    }
}
