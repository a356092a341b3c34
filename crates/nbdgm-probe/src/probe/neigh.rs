//! Host discovery without CAP_NET_RAW, through the kernel's neighbour table (issue 16 §3,
//! docs/probe.md "Host discovery"): one empty UDP datagram to the discard port (9, RFC 863)
//! of each on-link target makes the kernel resolve it with its own ARP (RFC 826); the
//! neighbour states are then read with rtnetlink (`RTM_GETNEIGH` dump, no privilege needed):
//! `REACHABLE`, `STALE`, `DELAY`, `PROBE`, `PERMANENT` = up; `FAILED`, or still `INCOMPLETE`
//! when the kernel's resolution time is over, = host-down. Every datagram passes [`Scope`] and
//! the run's [`RateLimiter`]; every read is bounded in bytes, messages and time.

use super::{RateLimiter, Scope};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// The port the datagrams go to (discard; a live host answers ICMP port unreachable, which
/// nobody reads).
pub const DISCARD_PORT: u16 = 9;
/// How often the neighbour table is read while the sweep waits.
pub const POLL: Duration = Duration::from_millis(50);
/// Bounds of the wait for the kernel's resolution (`mcast_solicit` × `retrans_time_ms` of the
/// interface, plus [`SLACK`]).
pub const MIN_WAIT: Duration = Duration::from_secs(1);
pub const MAX_WAIT: Duration = Duration::from_secs(30);
pub const SLACK: Duration = Duration::from_millis(500);
/// At most this many bytes and neighbour messages are read per dump.
pub const MAX_DUMP_BYTES: usize = 8 << 20;
pub const MAX_DUMP_ENTRIES: usize = 65_536;

// Neighbour states (linux/neighbour.h).
pub const NUD_INCOMPLETE: u16 = 0x01;
pub const NUD_REACHABLE: u16 = 0x02;
pub const NUD_STALE: u16 = 0x04;
pub const NUD_DELAY: u16 = 0x08;
pub const NUD_PROBE: u16 = 0x10;
pub const NUD_FAILED: u16 = 0x20;
pub const NUD_NOARP: u16 = 0x40;
pub const NUD_PERMANENT: u16 = 0x80;

const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NDA_DST: u16 = 1;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;

/// One IPv4 neighbour entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub addr: Ipv4Addr,
    pub ifindex: u32,
    pub state: u16,
}

/// The name of a neighbour state, for the evidence.
pub fn state_name(state: u16) -> &'static str {
    match state {
        NUD_INCOMPLETE => "INCOMPLETE",
        NUD_REACHABLE => "REACHABLE",
        NUD_STALE => "STALE",
        NUD_DELAY => "DELAY",
        NUD_PROBE => "PROBE",
        NUD_FAILED => "FAILED",
        NUD_PERMANENT => "PERMANENT",
        NUD_NOARP => "NOARP",
        _ => "NONE",
    }
}

/// Whether a state shows the kernel has a link-layer address for the neighbour.
pub fn is_up(state: u16) -> bool {
    state & (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT) != 0
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Parse one buffer of netlink messages (a part of an `RTM_GETNEIGH` dump): the IPv4
/// neighbours in it, and whether the dump ended (`NLMSG_DONE` or an error). Malformed
/// messages end the parse; nothing panics on any input.
pub fn parse_dump(buf: &[u8], out: &mut Vec<Neighbour>) -> bool {
    let mut off = 0usize;
    while off + 16 <= buf.len() {
        let (Some(len), Some(ty)) = (u32_at(buf, off), u16_at(buf, off + 4)) else {
            return true;
        };
        let len = len as usize;
        if len < 16 || off + len > buf.len() {
            return true;
        }
        match ty {
            NLMSG_DONE | NLMSG_ERROR => return true,
            RTM_NEWNEIGH => {
                if let Some(n) = buf.get(off + 16..off + len).and_then(parse_ndmsg) {
                    if out.len() < MAX_DUMP_ENTRIES {
                        out.push(n);
                    }
                }
            }
            _ => {}
        }
        off += (len + 3) & !3;
    }
    false
}

/// `struct ndmsg` (12 bytes) and its attributes: the IPv4 `NDA_DST`.
fn parse_ndmsg(b: &[u8]) -> Option<Neighbour> {
    if *b.first()? != libc::AF_INET as u8 {
        return None;
    }
    let ifindex = u32_at(b, 4)?;
    let state = u16_at(b, 8)?;
    let mut off = 12usize;
    while off + 4 <= b.len() {
        let alen = usize::from(u16_at(b, off)?);
        let aty = u16_at(b, off + 2)?;
        if alen < 4 || off + alen > b.len() {
            return None;
        }
        if aty == NDA_DST && alen == 8 {
            let a: [u8; 4] = b.get(off + 4..off + 8)?.try_into().ok()?;
            return Some(Neighbour {
                addr: Ipv4Addr::from(a),
                ifindex,
                state,
            });
        }
        off += (alen + 3) & !3;
    }
    None
}

fn dump_request(seq: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(28);
    m.extend_from_slice(&28u32.to_ne_bytes());
    m.extend_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.push(libc::AF_INET as u8); // ndm_family
    m.extend_from_slice(&[0; 11]); // pads, ifindex, state, flags, type
    m
}

/// Read the IPv4 neighbour table of the current namespace (no privilege needed).
pub fn dump(seq: u32) -> io::Result<Vec<Neighbour>> {
    let s = socket2::Socket::new(
        socket2::Domain::from(libc::AF_NETLINK),
        socket2::Type::RAW,
        Some(socket2::Protocol::from(libc::NETLINK_ROUTE)),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    let kernel = netlink_kernel_addr()?;
    s.send_to(&dump_request(seq), &kernel)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0usize;
    while total < MAX_DUMP_BYTES {
        let n = (&s).read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n;
        if parse_dump(buf.get(..n).unwrap_or(&[]), &mut out) {
            break;
        }
    }
    Ok(out)
}

#[allow(unsafe_code)] // socket2 has no safe constructor for sockaddr_nl; see SAFETY below
fn netlink_kernel_addr() -> io::Result<socket2::SockAddr> {
    // SAFETY: `storage` is a sockaddr_storage, larger than and aligned for sockaddr_nl; the
    // zeroed sockaddr_nl (pid 0 = the kernel, no groups) is written in bounds and the length
    // given is exactly its size.
    let (_, addr) = unsafe {
        socket2::SockAddr::try_init(|storage, len| {
            let mut nl: libc::sockaddr_nl = std::mem::zeroed();
            nl.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            std::ptr::write(storage.cast::<libc::sockaddr_nl>(), nl);
            *len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            Ok(())
        })
    }?;
    Ok(addr)
}

/// How long the kernel takes to give up on a neighbour on `iface`: `mcast_solicit` ×
/// `retrans_time_ms` (defaults 3 × 1000 ms) plus [`SLACK`], within [`MIN_WAIT`]..[`MAX_WAIT`].
pub fn resolution_wait(iface: &str) -> Duration {
    let read = |f: &str, dflt: u64| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/neigh/{iface}/{f}"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(dflt)
    };
    let solicit = read("mcast_solicit", 3).clamp(1, 10);
    let retrans = read("retrans_time_ms", 1000).clamp(10, 10_000);
    (Duration::from_millis(solicit * retrans) + SLACK).clamp(MIN_WAIT, MAX_WAIT)
}

/// What the neighbour sweep of one link found.
#[derive(Debug, Clone, Default)]
pub struct NeighSweep {
    /// Datagrams sent.
    pub sent: u64,
    pub send_errors: u64,
    /// Addresses up, with the state that showed it.
    pub up: HashMap<Ipv4Addr, u16>,
    /// Addresses down, with the evidence.
    pub down: HashMap<Ipv4Addr, String>,
    /// Table reads, and those that failed.
    pub dumps: u64,
    pub dump_errors: u64,
}

/// Sweep `addrs` (all on interface `ifindex`) through the kernel's neighbour table: one
/// datagram each (scope-checked, rate-limited), then table reads every [`POLL`] until every
/// address is decided or `wait` has passed since the last datagram. `on_up` is called once
/// per address as it is seen up. Addresses that never got a table entry are in neither map
/// (the caller probes them directly).
pub async fn sweep(
    ifindex: u32,
    addrs: &[Ipv4Addr],
    wait: Duration,
    scope: &Scope,
    limiter: &RateLimiter,
    mut on_up: impl FnMut(Ipv4Addr, u16),
) -> NeighSweep {
    let mut sw = NeighSweep::default();
    let Ok(sock) = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)) else {
        sw.send_errors = addrs.len() as u64;
        return sw;
    };
    let _ = sock.set_nonblocking(true);
    let wanted: HashSet<Ipv4Addr> = addrs.iter().copied().collect();
    let mut pending: HashSet<Ipv4Addr> = HashSet::new();
    let mut seen_pending: HashSet<Ipv4Addr> = HashSet::new();
    let mut seq = 1u32;
    let mut poll = |sw: &mut NeighSweep,
                    pending: &mut HashSet<Ipv4Addr>,
                    seen: &mut HashSet<Ipv4Addr>,
                    last: bool| {
        seq = seq.wrapping_add(1);
        sw.dumps += 1;
        let table = match dump(seq) {
            Ok(t) => t,
            Err(_) => {
                sw.dump_errors += 1;
                return;
            }
        };
        let mut present = HashSet::new();
        let mine: Vec<Neighbour> = table
            .into_iter()
            .filter(|n| n.ifindex == ifindex && pending.contains(&n.addr))
            .collect();
        for n in mine {
            present.insert(n.addr);
            if is_up(n.state) {
                pending.remove(&n.addr);
                sw.up.insert(n.addr, n.state);
                on_up(n.addr, n.state);
            } else if n.state & NUD_NOARP != 0 {
                // No resolution on this link: neither up nor down, probed directly.
                pending.remove(&n.addr);
            } else if n.state == NUD_FAILED {
                pending.remove(&n.addr);
                sw.down.insert(n.addr, "neighbour entry FAILED".into());
            } else {
                seen.insert(n.addr);
            }
        }
        // An entry seen unresolved that has gone was garbage-collected after failing.
        let gone: Vec<Ipv4Addr> = pending
            .iter()
            .filter(|a| !present.contains(a) && (seen.contains(a) || last))
            .copied()
            .collect();
        for a in gone {
            if seen.contains(&a) {
                pending.remove(&a);
                sw.down
                    .insert(a, "neighbour entry unresolved, then removed".into());
            }
        }
        if last {
            for a in pending.iter().filter(|a| seen.contains(a)) {
                sw.down
                    .insert(*a, format!("neighbour entry INCOMPLETE after {wait:?}"));
            }
        }
    };
    let mut next_poll = Instant::now() + POLL;
    for &a in addrs {
        if !wanted.contains(&a) || scope.check(a).is_err() {
            continue;
        }
        limiter.acquire().await;
        match sock.send_to(&[], SocketAddrV4::new(a, DISCARD_PORT)) {
            Ok(_) => {
                sw.sent += 1;
                pending.insert(a);
            }
            Err(_) => sw.send_errors += 1,
        }
        if Instant::now() >= next_poll {
            poll(&mut sw, &mut pending, &mut seen_pending, false);
            next_poll = Instant::now() + POLL;
        }
    }
    let deadline = Instant::now() + wait;
    while !pending.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        poll(&mut sw, &mut pending, &mut seen_pending, false);
    }
    if !pending.is_empty() {
        poll(&mut sw, &mut pending, &mut seen_pending, true);
    }
    sw
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn neigh_msg(addr: [u8; 4], ifindex: u32, state: u16) -> Vec<u8> {
        let mut body = vec![libc::AF_INET as u8, 0, 0, 0];
        body.extend_from_slice(&ifindex.to_ne_bytes());
        body.extend_from_slice(&state.to_ne_bytes());
        body.extend_from_slice(&[0, 1]); // flags, type
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&NDA_DST.to_ne_bytes());
        body.extend_from_slice(&addr);
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&RTM_NEWNEIGH.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn dump_parses_entries_and_done() {
        let mut buf = neigh_msg([198, 51, 100, 10], 3, NUD_REACHABLE);
        buf.extend(neigh_msg([198, 51, 100, 20], 3, NUD_FAILED));
        let mut out = Vec::new();
        assert!(!parse_dump(&buf, &mut out));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].addr, Ipv4Addr::new(198, 51, 100, 10));
        assert!(is_up(out[0].state) && !is_up(out[1].state));
        let mut done = 20u32.to_ne_bytes().to_vec();
        done.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        done.extend_from_slice(&[0; 14]);
        assert!(parse_dump(&done, &mut out));
        assert_eq!(state_name(NUD_STALE), "STALE");
    }

    #[test]
    fn dump_parse_survives_garbage() {
        let good = neigh_msg([198, 51, 100, 10], 3, NUD_REACHABLE);
        for cut in 0..good.len() {
            let mut out = Vec::new();
            let _ = parse_dump(&good[..cut], &mut out);
            assert!(out.is_empty(), "a cut message is not an entry");
        }
        let mut bad = good.clone();
        bad[16] = 10; // AF_INET6: skipped
        let mut out = Vec::new();
        parse_dump(&bad, &mut out);
        assert!(out.is_empty());
        let mut zero_attr = good.clone();
        zero_attr[28] = 0; // attribute length 0: no loop, no entry
        zero_attr[29] = 0;
        parse_dump(&zero_attr, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn resolution_wait_is_bounded() {
        let w = resolution_wait("no-such-interface");
        assert_eq!(w, Duration::from_millis(3000) + SLACK);
        assert!((MIN_WAIT..=MAX_WAIT).contains(&resolution_wait("lo")));
    }
}
