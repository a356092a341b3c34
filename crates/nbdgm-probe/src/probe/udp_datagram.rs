//! 138/udp, the datagram service: a GetBackupListRequest mailslot write (MS-MAIL §2.2.1,
//! MS-BRWS §2.2.4–2.2.5, DIGEST §5–§6) in a DIRECT_GROUP datagram (RFC 1002 §4.4.2), and
//! the description of whatever comes back.

use super::evidence::{port_result, Evidence};
use super::udp::{random_u32, udp_exchange, BuildError};
use super::udp_announce::ask_announcement;
use super::udp_name::display_name;
use super::{Port, PortResult, ProbeOptions, RateLimiter, Scope, PROBE_NAME};
use nbdgm_wire::browser::BrowserFrame;
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{self, MailslotWrite};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The bytes of a GetBackupListRequest (count 4, `token`) in a DIRECT_GROUP datagram from
/// `NBDGMPROBE<00>` to `<workgroup><1D>` on `\MAILSLOT\BROWSE`.
pub fn backup_list_request(
    workgroup: &str,
    token: u32,
    id: u16,
    source: SocketAddrV4,
) -> Result<Vec<u8>, BuildError> {
    let frame = BrowserFrame::GetBackupListRequest(nbdgm_wire::browser::GetBackupListRequest {
        count: 4,
        token,
        trailing: Vec::new(),
    });
    let mut data = Vec::new();
    frame.emit(&mut data).map_err(BuildError::BackupList)?;
    let smb = MailslotWrite::new(mailslot::BROWSE, data)
        .to_bytes()
        .map_err(BuildError::Mailslot)?;
    let dest =
        Name::new(workgroup, 0x1D).map_err(|e| BuildError::Workgroup(workgroup.to_owned(), e))?;
    let src = Name::new(PROBE_NAME, 0x00).map_err(BuildError::SourceName)?;
    Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        id,
        (*source.ip(), source.port()),
        src,
        dest,
        smb,
    )
    .to_bytes()
    .map_err(BuildError::Datagram)
}

/// Describe any datagram that came back from 138.
pub fn describe_dgm_answer(d: &[u8]) -> String {
    let Ok(dgm) = Datagram::parse(d) else {
        return format!("{}-byte UDP answer (not a NetBIOS datagram)", d.len());
    };
    let src = dgm
        .source_name()
        .map(display_name)
        .unwrap_or_else(|| "?".into());
    let Some(user) = dgm.user_data() else {
        return format!("NetBIOS datagram {} from {src}", dgm.msg_type.name());
    };
    let Ok(ms) = MailslotWrite::parse(user) else {
        return format!(
            "NetBIOS datagram {} from {src} (not a mailslot write)",
            dgm.msg_type.name()
        );
    };
    if !ms.is(mailslot::BROWSE) {
        return format!("mailslot write to {} from {src}", ms.name);
    }
    match BrowserFrame::parse(&ms.data) {
        Ok(BrowserFrame::GetBackupListResponse(r)) => {
            let shown: Vec<String> = r.servers.iter().take(10).cloned().collect();
            let more = if r.servers.len() > 10 { ", …" } else { "" };
            format!(
                "GetBackupListResponse from {src}: {} server(s): {}{more}",
                r.servers.len(),
                shown.join(", ")
            )
        }
        Ok(other) => format!("browser frame {} from {src}", frame_name(&other)),
        Err(_) => format!("malformed browser frame from {src}"),
    }
}

pub(super) fn frame_name(f: &BrowserFrame) -> &'static str {
    match f {
        BrowserFrame::HostAnnouncement(_) => "HostAnnouncement",
        BrowserFrame::AnnouncementRequest(_) => "AnnouncementRequest",
        BrowserFrame::RequestElection(_) => "RequestElection",
        BrowserFrame::GetBackupListRequest(_) => "GetBackupListRequest",
        BrowserFrame::GetBackupListResponse(_) => "GetBackupListResponse",
        BrowserFrame::BecomeBackup(_) => "BecomeBackup",
        BrowserFrame::DomainAnnouncement(_) => "DomainAnnouncement",
        BrowserFrame::MasterAnnouncement(_) => "MasterAnnouncement",
        BrowserFrame::ResetStateRequest(_) => "ResetStateRequest",
        BrowserFrame::LocalMasterAnnouncement(_) => "LocalMasterAnnouncement",
        BrowserFrame::Unknown(_) => "unknown opcode",
    }
}

/// 138/udp: GetBackupListRequest to `<workgroup><1D>` from a connected ephemeral socket.
pub async fn probe_dgm(
    scope: &Scope,
    target: Ipv4Addr,
    workgroup: &str,
    ns_answered: bool,
    opts: &ProbeOptions,
    limiter: &RateLimiter,
) -> PortResult {
    let token0 = random_u32();
    let id0 = random_u32() as u16;
    let sent = format!(
        "GetBackupListRequest(s) to {}<1D>",
        workgroup.to_ascii_uppercase()
    );
    let out = udp_exchange(
        scope,
        SocketAddrV4::new(target, nbdgm_wire::datagram::DGM_PORT),
        opts,
        limiter,
        &sent,
        |attempt, local| {
            backup_list_request(
                workgroup,
                token0.wrapping_add(attempt),
                id0.wrapping_add(attempt as u16),
                local,
            )
        },
        |d| Some(describe_dgm_answer(d)),
    )
    .await;
    let (mut ev, mut rtt, mut attempts) = match out.result {
        Ok(text) => (Evidence::Answer(text), out.rtt, out.attempts),
        Err(ev) => (ev, out.rtt, out.attempts),
    };
    // Silent beside an answering 137: ask for the host's announcement (udp_announce).
    if let (Evidence::Silence { .. }, true) = (&ev, ns_answered) {
        if let Some((seen, n)) = ask_announcement(scope, target, workgroup, opts, limiter).await {
            attempts += n;
            match seen {
                Some((text, took)) => {
                    ev = Evidence::Answer(text);
                    rtt = Some(took);
                }
                None => {
                    // "no answer to 3 GetBackupListRequest(s) to W<1D> and 3 AnnouncementRequest(s)
                    // to W<00> in ... ms"; `attempts` of the result counts both.
                    if let Evidence::Silence {
                        waited_ms, sent, ..
                    } = &mut ev
                    {
                        let extra: u64 = (0..n).map(|i| opts.window(i).as_millis() as u64).sum();
                        *waited_ms += extra;
                        *sent += &format!(
                            " and {n} AnnouncementRequest(s) to {}<00>",
                            workgroup.to_ascii_uppercase()
                        );
                    }
                }
            }
        }
    }
    port_result(Port::Dgm138Udp, &ev, ns_answered, rtt, attempts)
}
