//! 138/udp, second try for a silent datagram service beside an answering name service: an
//! AnnouncementRequest (MS-BRWS §2.2.2) to `<workgroup><00>`, which a browser server answers
//! with its own HostAnnouncement (§2.2.1) — broadcast to the subnet from its port 138, not to
//! our source port. Samba nmbd sends it at once (SAMBA-LAB "AnnouncementRequest"); Windows
//! waits a random 0–30 s (MS-BRWS §3.2.5.1, DIGEST §6.5), mostly longer than our windows.
//! The broadcast is read on a socket bound to the target subnet's broadcast address and
//! port 138 (needs root or CAP_NET_BIND_SERVICE; skipped when the bind fails or the target
//! is not on a directly connected broadcast subnet), from the target's address only. Bound to
//! the broadcast address, not to 0.0.0.0: a daemon on this host (nbdgm serve, nmbd) keeps
//! every unicast datagram sent to its port 138 while the probe listens.

use super::udp::random_u32;
use super::udp_datagram::frame_name;
use super::udp_name::display_name;
use super::{ProbeOptions, RateLimiter, Scope, PROBE_NAME};
use nbdgm_wire::browser::{AnnouncementRequest, BrowserFrame};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType, DGM_PORT};
use nbdgm_wire::mailslot::{self, MailslotWrite};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

/// At most this many datagrams are read from the port-138 socket per attempt (other hosts'
/// broadcasts on a busy LAN cannot keep the probe reading).
pub const MAX_READS: usize = 256;

/// The bytes of an AnnouncementRequest in a DIRECT_GROUP datagram from `NBDGMPROBE<00>` to
/// `<workgroup><00>` on `\MAILSLOT\BROWSE`.
pub fn announcement_request(workgroup: &str, id: u16, source: SocketAddrV4) -> Option<Vec<u8>> {
    let frame = BrowserFrame::AnnouncementRequest(AnnouncementRequest {
        reserved: 0,
        response_name: PROBE_NAME.to_string(),
        trailing: Vec::new(),
    });
    let mut data = Vec::new();
    frame.emit(&mut data).ok()?;
    let smb = MailslotWrite::new(mailslot::BROWSE, data).to_bytes().ok()?;
    let dest = Name::new(workgroup, 0x00).ok()?;
    let src = Name::new(PROBE_NAME, 0x00).ok()?;
    let dgm = Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        id,
        (*source.ip(), source.port()),
        src,
        dest,
        smb,
    );
    dgm.to_bytes().ok()
}

/// A browser announcement (HostAnnouncement, LocalMasterAnnouncement) in `d`, described.
pub fn describe_announcement(d: &[u8]) -> Option<String> {
    let dgm = Datagram::parse(d).ok()?;
    let ms = MailslotWrite::parse(dgm.user_data()?).ok()?;
    if !ms.is(mailslot::BROWSE) {
        return None;
    }
    let f = BrowserFrame::parse(&ms.data).ok()?;
    let name = match &f {
        BrowserFrame::HostAnnouncement(a) | BrowserFrame::LocalMasterAnnouncement(a) => {
            a.server_name.clone()
        }
        _ => return None,
    };
    let src = dgm.source_name().map(display_name).unwrap_or_default();
    Some(format!(
        "{} from {src} (server {}), broadcast in answer to an AnnouncementRequest",
        frame_name(&f),
        name
    ))
}

/// The directed broadcast address (`address | !mask`, RFC 919) of the directly connected
/// subnet that holds `target`: the longest prefix among this host's broadcast-capable IPv4
/// interfaces (prefixes up to /30). Computed, not read from the interface: an address added
/// without `brd` has none, yet the kernel still receives that subnet's broadcasts.
pub fn subnet_broadcast(target: Ipv4Addr) -> Option<Ipv4Addr> {
    use nix::net::if_::InterfaceFlags;
    let v4 = |a: &Option<nix::sys::socket::SockaddrStorage>| {
        a.as_ref().and_then(|s| s.as_sockaddr_in()).map(|s| s.ip())
    };
    nix::ifaddrs::getifaddrs()
        .ok()?
        .filter(|a| {
            a.flags
                .contains(InterfaceFlags::IFF_BROADCAST | InterfaceFlags::IFF_UP)
        })
        .filter_map(|a| Some((u32::from(v4(&a.address)?), u32::from(v4(&a.netmask)?))))
        .filter(|(ip, mask)| {
            (1..=30).contains(&mask.count_ones()) && ip & mask == u32::from(target) & mask
        })
        .max_by_key(|(_, mask)| mask.count_ones())
        .map(|(ip, mask)| Ipv4Addr::from(ip | !mask))
        .filter(|b| *b != target)
}

fn listener(broadcast: Ipv4Addr) -> std::io::Result<tokio::net::UdpSocket> {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(SocketAddrV4::new(broadcast, DGM_PORT)).into())?;
    tokio::net::UdpSocket::from_std(s.into())
}

/// What the AnnouncementRequest got: the announcement seen (with its delay), the number of
/// requests sent, or `None` when it could not be tried (no port-138 socket on the target's
/// subnet broadcast address, no socket to the target, bad workgroup).
pub(super) async fn ask_announcement(
    scope: &Scope,
    target: Ipv4Addr,
    workgroup: &str,
    opts: &ProbeOptions,
    limiter: &RateLimiter,
) -> Option<(Option<(String, Duration)>, u32)> {
    let listen = listener(subnet_broadcast(target)?).ok()?;
    let udp = scope.udp(SocketAddrV4::new(target, DGM_PORT)).ok()?;
    let id0 = random_u32() as u16;
    let mut buf = vec![0u8; 1500];
    let mut sent_n = 0u32;
    for attempt in 0..=opts.retries {
        let bytes = announcement_request(workgroup, id0.wrapping_add(attempt as u16), udp.local)?;
        limiter.acquire().await;
        sent_n += 1;
        let sent = Instant::now();
        if udp.send(&bytes).await.is_err() {
            return Some((None, sent_n));
        }
        let deadline = tokio::time::Instant::now() + opts.window(attempt);
        for _ in 0..MAX_READS {
            let got = tokio::time::timeout_at(deadline, listen.recv_from(&mut buf)).await;
            let Ok(Ok((n, from))) = got else { break };
            let SocketAddr::V4(from) = from else { continue };
            if *from.ip() != target || from.port() != DGM_PORT {
                continue;
            }
            if let Some(text) = buf.get(..n).and_then(describe_announcement) {
                return Some((Some((text, sent.elapsed())), sent_n));
            }
        }
    }
    Some((None, sent_n))
}
