//! Browser frames of the browse-list benchmark (`browse_bench`): distinct
//! HostAnnouncements (a template whose 16-byte ServerName field is patched in place) and
//! GetBackupListRequest / Response, built and parsed with `nbdgm_wire`.

use anyhow::{bail, Context};
use nbdgm_wire::browser::{Announcement, BrowserFrame, GetBackupListRequest, ServerType};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::Name;
use std::net::SocketAddrV4;

/// Offset of the 16-byte ServerName field in a HostAnnouncement frame (opcode, update
/// count, periodicity), MS-BRWS §2.2.1.
const SERVER_NAME_AT: usize = 6;

/// Server type of the flood: workstation + server + NT (0x00001003).
pub const FLOOD_TYPE: u32 = ServerType::WORKSTATION | ServerType::SERVER | ServerType::NT;

/// Periodicity announced by the flood: 12 minutes, so nothing expires during a run
/// (entries live 3 × periodicity).
pub const FLOOD_PERIODICITY_MS: u32 = 720_000;

/// The flood's server name number `i`: `FL` + 7 digits (9 characters).
pub fn flood_name(i: u64) -> String {
    format!("FL{:07}", i % 10_000_000)
}

/// A HostAnnouncement frame (mailslot data, no SMB header) whose server name can be
/// replaced in place with [`HostAnnouncementTemplate::set_name`].
#[derive(Debug, Clone)]
pub struct HostAnnouncementTemplate {
    pub frame: Vec<u8>,
}

impl HostAnnouncementTemplate {
    /// `server_type` with comment "file server", OS 6.1, periodicity 12 min.
    pub fn new(server_type: u32) -> anyhow::Result<Self> {
        let frame = BrowserFrame::HostAnnouncement(Announcement {
            periodicity_ms: FLOOD_PERIODICITY_MS,
            server_name: "FL0000000".into(),
            os_major: 6,
            os_minor: 1,
            server_type,
            comment: "file server".into(),
            ..Default::default()
        })
        .to_bytes()?;
        let mut t = HostAnnouncementTemplate { frame };
        // The patching must give what the codec would have written.
        t.set_name("CHECK12345");
        match BrowserFrame::parse(&t.frame)? {
            BrowserFrame::HostAnnouncement(a) if a.server_name == "CHECK12345" => Ok(t),
            other => bail!("patched HostAnnouncement parses as {other:?}"),
        }
    }

    /// Write `name` (≤ 15 ASCII bytes) NUL-padded into the ServerName field.
    pub fn set_name(&mut self, name: &str) {
        let field = &mut self.frame[SERVER_NAME_AT..SERVER_NAME_AT + 16];
        field.fill(0);
        let n = name.len().min(15);
        field[..n].copy_from_slice(&name.as_bytes()[..n]);
    }
}

/// A GetBackupListRequest frame (mailslot data): RequestedCount `count`, `token`.
pub fn backup_list_request_frame(count: u8, token: u32) -> anyhow::Result<Vec<u8>> {
    Ok(BrowserFrame::GetBackupListRequest(GetBackupListRequest {
        count,
        token,
        trailing: Vec::new(),
    })
    .to_bytes()?)
}

/// A DIRECT_GROUP datagram from `from` (header SOURCE_IP/PORT = the UDP source, B node)
/// and `source<00>` to `destination` carrying `frame` as a mailslot write to
/// `\MAILSLOT\BROWSE`.
pub fn browse_datagram(
    from: SocketAddrV4,
    source: &str,
    destination: &Name,
    id: u16,
    frame: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let smb = MailslotWrite::new(BROWSE, frame.to_vec()).to_bytes()?;
    Ok(Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        id,
        (*from.ip(), from.port()),
        Name::new(source, 0)?,
        destination.clone(),
        smb,
    )
    .to_bytes()?)
}

/// `(token, server names)` of a GetBackupListResponse datagram; `None` for anything else.
pub fn backup_list_response(datagram: &[u8]) -> Option<(u32, Vec<String>)> {
    let d = Datagram::parse(datagram).ok()?;
    let w = MailslotWrite::parse(d.user_data()?).ok()?;
    match BrowserFrame::parse(&w.data).ok()? {
        BrowserFrame::GetBackupListResponse(r) => Some((r.token, r.servers)),
        _ => None,
    }
}

/// Lines of an nmbd `browse.dat` whose server name (first quoted field) starts with
/// `prefix`.
pub fn browse_dat_count(dat: &str, prefix: &str) -> usize {
    let want = format!("\"{prefix}");
    dat.lines().filter(|l| l.starts_with(&want)).count()
}

/// Sum of the `drops` column of the UDP sockets on `port` (any address) in the network
/// namespace of process `pid` (`/proc/PID/net/udp`: `procfs::udp_drops` reads
/// `/proc/self`, which is the main thread's namespace, not a namespace joined by one
/// thread). Packets the kernel discarded because a receive buffer was full.
pub fn udp_drops_of(pid: u32, port: u16) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/udp")).ok()?;
    Some(crate::procfs::udp_port_drops(&text, port))
}

/// `name<suffix>` as a wire name, with context on error.
pub fn wire_name(name: &str, suffix: u8) -> anyhow::Result<Name> {
    Name::new(name, suffix).with_context(|| format!("name {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn frames_parse_back() {
        let mut t = HostAnnouncementTemplate::new(FLOOD_TYPE).unwrap();
        t.set_name(&flood_name(42));
        match BrowserFrame::parse(&t.frame).unwrap() {
            BrowserFrame::HostAnnouncement(a) => {
                assert_eq!(a.server_name, "FL0000042");
                assert_eq!(a.server_type, FLOOD_TYPE);
                assert_eq!(a.periodicity_ms, FLOOD_PERIODICITY_MS);
            }
            f => panic!("{f:?}"),
        }
        let from = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 40), 40000);
        let dst = wire_name("TESTGROUP", 0x1D).unwrap();
        let req = backup_list_request_frame(4, 7).unwrap();
        let d = browse_datagram(from, "BENCHCLI", &dst, 1, &req).unwrap();
        assert_eq!(Datagram::parse(&d).unwrap().msg_type, MsgType::DirectGroup);
        assert_eq!(backup_list_response(&d), None);
        assert_eq!(
            browse_dat_count("\"FL0000001\" \"x\"\n\"SAMBAA\" \"y\"\n", "FL"),
            1
        );
    }
}
