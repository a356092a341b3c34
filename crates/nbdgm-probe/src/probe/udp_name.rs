//! 137/udp, the name service: a unicast NODE STATUS REQUEST (RFC 1002 §4.2.17–4.2.18,
//! DIGEST §4.3) and what its answer says about the host (names, workgroup, roles, MAC).

use super::evidence::{clean, port_result, Evidence};
use super::udp::{random_u32, udp_exchange, BuildError};
use super::{HostInfo, Port, PortResult, ProbeOptions, RateLimiter, Scope, ServiceName};
use nbdgm_wire::nbns::{self, NodeStatus, Packet, RData, TYPE_NBSTAT};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Names kept from one NODE STATUS answer (a 576-byte answer holds about 24).
pub const MAX_NAMES: usize = 64;

/// `NAME<XX>` with the suffix in upper-case hex.
pub fn display_name(n: &Name) -> String {
    format!("{}<{:02X}>", n.name(), n.suffix())
}

pub(super) fn is_msbrowse(n: &Name) -> bool {
    n.raw()[..15] == Name::msbrowse().raw()[..15]
}

/// What a NODE STATUS answer says about the host (DIGEST §4.3, §6.6).
pub fn host_info(status: &NodeStatus) -> HostInfo {
    let names: Vec<&nbns::NodeName> = status.names.iter().take(MAX_NAMES).collect();
    let group = |n: &nbns::NodeName| n.flags & nbns::NB_GROUP != 0;
    let has = |suffix: u8, want_group: bool| {
        names
            .iter()
            .any(|n| n.name.suffix() == suffix && group(n) == want_group && !is_msbrowse(&n.name))
    };
    let workgroup = names
        .iter()
        .find(|n| n.name.suffix() == 0x00 && group(n) && !is_msbrowse(&n.name))
        .map(|n| clean(&n.name.name()));
    let mut roles = Vec::new();
    if has(0x1D, false) {
        roles.push("LMB".to_string());
    }
    if has(0x1B, false) {
        roles.push("DMB".to_string());
    }
    if has(0x1C, true) {
        roles.push("DC".to_string());
    }
    if has(0x1E, true) || names.iter().any(|n| is_msbrowse(&n.name)) {
        roles.push("browser".to_string());
    }
    if has(0x20, false) {
        roles.push("file-server".to_string());
    }
    if has(0x03, false) {
        roles.push("messenger".to_string());
    }
    let mac = status.statistics.as_ref().map(|s| {
        s.unit_id
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    });
    HostInfo {
        names: names
            .iter()
            .map(|n| ServiceName {
                name: clean(&display_name(&n.name)),
                group: group(n),
            })
            .collect(),
        workgroup,
        roles,
        mac,
    }
}

pub(super) fn node_status_request(id: u16) -> Packet {
    Packet::request(id, 0, Name::wildcard(), TYPE_NBSTAT)
}

/// Judge an answer on 137: a NODE STATUS RESPONSE with our id gives the host info; any
/// other datagram from the port still proves it open.
pub(super) fn judge_ns(id: u16, d: &[u8]) -> (String, Option<HostInfo>) {
    match Packet::parse(d) {
        Ok(p) if p.is_response() && p.id == id => {
            let status = p.answers.iter().find_map(|rr| match &rr.rdata {
                RData::NodeStatus(s) => Some(s),
                _ => None,
            });
            match status {
                Some(s) => {
                    let info = host_info(s);
                    let mut text = format!("NODE STATUS response: {} name(s)", s.names.len());
                    if let Some(w) = &info.workgroup {
                        text.push_str(&format!(", workgroup {w}"));
                    }
                    if !info.roles.is_empty() {
                        text.push_str(&format!(", roles {}", info.roles.join(" ")));
                    }
                    (text, Some(info))
                }
                None => (
                    format!(
                        "name-service response without a node status ({}, rcode {})",
                        p.kind(),
                        p.rcode()
                    ),
                    None,
                ),
            }
        }
        Ok(p) => (
            format!("name-service packet {} (id {:#06x})", p.kind(), p.id),
            None,
        ),
        Err(_) => (
            format!("{}-byte UDP answer (not a name-service packet)", d.len()),
            None,
        ),
    }
}

/// 137/udp: a unicast NODE STATUS REQUEST for `*` from an ephemeral port.
pub async fn probe_ns(
    scope: &Scope,
    target: Ipv4Addr,
    opts: &ProbeOptions,
    limiter: &RateLimiter,
) -> (PortResult, Option<HostInfo>) {
    // 16 unpredictable bits (SipHash under the process's random key), never 0.
    let id = (random_u32() as u16).max(1);
    let bytes = node_status_request(id).to_bytes();
    let out = udp_exchange(
        scope,
        SocketAddrV4::new(target, nbns::NS_PORT),
        opts,
        limiter,
        "NODE STATUS request(s)",
        |_, _| bytes.clone().map_err(BuildError::NodeStatus),
        |d| Some(judge_ns(id, d)),
    )
    .await;
    match out.result {
        Ok((text, info)) => (
            port_result(
                Port::Ns137Udp,
                &Evidence::Answer(text),
                false,
                out.rtt,
                out.attempts,
            ),
            info,
        ),
        Err(ev) => (
            port_result(Port::Ns137Udp, &ev, false, out.rtt, out.attempts),
            None,
        ),
    }
}
