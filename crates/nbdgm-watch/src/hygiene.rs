//! Datagram hygiene (RFC 1002 §4.4 header rules; NETLOGON replies, MS-ADTS §6.3.1 and
//! DIGEST §7): SOURCE_IP spoofing, traffic from outside the local subnets, DIRECT_UNIQUE
//! to unowned names, and logon responses from hosts that hold no DC name.

use crate::alert::{Alert, Severity};
use crate::config::WatchConfig;
use crate::engine::Engine;
use crate::packet::Packet;
use crate::signature;
use crate::state::{CappedMap, Proto};
use nbdgm_wire::datagram::{Datagram, MsgType};
use nbdgm_wire::name::Name;
use nbdgm_wire::nbns::{self, Opcode};
use nbdgm_wire::netlogon::{self, opcode as nl};
use nbdgm_wire::payload::{self, Application};
use serde_json::{json, Value};
use std::net::IpAddr;

/// Capture seconds the name table must have been learning before "nobody owns this
/// name" means something (cold-start noise otherwise).
pub const WARM_SECS: i64 = 60;

/// Hygiene state.
#[derive(Debug)]
pub struct HygieneState {
    /// Sources already reported off-subnet.
    off_subnet: CappedMap<IpAddr, ()>,
    /// Capture seconds of the first name registration seen (or of the first packet after
    /// the name table had entries).
    first_registration: Option<i64>,
    /// Per source: (capture secs of the lookup, holds a `<1C>`/`<1B>` name). The name
    /// table scan is repeated at most every [`DC_CACHE_SECS`] per source, so a flood of
    /// logon responses does not scan the table once per packet.
    dc_cache: CappedMap<IpAddr, (i64, bool)>,
    checked: u64,
}

/// Seconds a "holds a DC name" lookup is reused.
pub const DC_CACHE_SECS: i64 = 5;

impl HygieneState {
    pub(crate) fn new(cfg: &WatchConfig) -> Self {
        HygieneState {
            off_subnet: CappedMap::new(cfg.max_hosts),
            first_registration: None,
            dc_cache: CappedMap::new(cfg.max_hosts),
            checked: 0,
        }
    }

    pub(crate) fn stats(&self) -> Value {
        json!({
            "checked": self.checked,
            "off_subnet": {"len": self.off_subnet.len(), "max": self.off_subnet.max(), "evicted": self.off_subnet.evicted},
            "dc_cache": {"len": self.dc_cache.len(), "max": self.dc_cache.max(), "evicted": self.dc_cache.evicted},
            "first_registration_secs": self.first_registration,
        })
    }

    /// Has the name table been learning for at least [`WARM_SECS`] at `now`?
    pub fn warm(&self, now: i64) -> bool {
        self.first_registration
            .is_some_and(|t| now.saturating_sub(t) >= WARM_SECS)
    }
}

/// The name table's key of an NBNS name (`NAME<xx>`, plus `.scope`), as the poisoning
/// detectors learn it.
pub fn nbns_key(n: &Name) -> String {
    crate::poison::nbns_name(n)
}

fn note_names(e: &mut Engine, now: i64) {
    if e.hygiene.first_registration.is_none() && !e.names.names.is_empty() {
        e.hygiene.first_registration = Some(now);
    }
}

fn off_subnet(e: &mut Engine, p: &Packet<'_>, port: u16, out: &mut Vec<Alert>) {
    if e.cfg.local_nets.is_empty() {
        return;
    }
    let src = p.src.ip();
    if src.is_unspecified() || e.cfg.local_nets.iter().any(|n| n.contains(&src)) {
        return;
    }
    if e.hygiene.off_subnet.get(&src).is_some() {
        return;
    }
    e.hygiene.off_subnet.entry(src, p.time.secs, || ());
    out.push(
        Alert::new(&signature::OFF_SUBNET, p)
            .with("port", port)
            .with(
                "local_nets",
                e.cfg
                    .local_nets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .key("off-subnet"),
    );
}

pub(crate) fn on_nbns(e: &mut Engine, p: &Packet<'_>, m: &nbns::Packet, out: &mut Vec<Alert>) {
    e.hygiene.checked += 1;
    off_subnet(e, p, 137, out);
    let registers = !m.is_response()
        && matches!(
            m.opcode(),
            Opcode::Registration | Opcode::MultiHomedRegistration | Opcode::Refresh(_)
        );
    if registers && e.hygiene.first_registration.is_none() {
        e.hygiene.first_registration = Some(p.time.secs);
    }
    note_names(e, p.time.secs);
}

/// NETLOGON opcodes only a DC sends (MS-ADTS §6.3.1.3).
fn is_logon_response(op: u16) -> bool {
    matches!(
        op,
        nl::LOGON_PRIMARY_RESPONSE
            | nl::LOGON_SAM_LOGON_RESPONSE
            | nl::LOGON_SAM_PAUSE_RESPONSE
            | nl::LOGON_SAM_USER_UNKNOWN
            | nl::LOGON_SAM_LOGON_RESPONSE_EX
            | nl::LOGON_SAM_PAUSE_RESPONSE_EX
            | nl::LOGON_SAM_USER_UNKNOWN_EX
    )
}

fn holds_dc_name(e: &mut Engine, ip: IpAddr, now: i64) -> bool {
    if let Some(&(t, v)) = e.hygiene.dc_cache.get(&ip) {
        if now.saturating_sub(t) < DC_CACHE_SECS && now >= t {
            return v;
        }
    }
    let v = e.names.owns_suffix(ip, &[0x1c, 0x1b]);
    *e.hygiene.dc_cache.entry(ip, now, || (now, v)) = (now, v);
    v
}

pub(crate) fn on_datagram(e: &mut Engine, p: &Packet<'_>, d: &Datagram, out: &mut Vec<Alert>) {
    e.hygiene.checked += 1;
    let now = p.time.secs;
    note_names(e, now);
    off_subnet(e, p, 138, out);
    if !matches!(
        d.msg_type,
        MsgType::DirectUnique | MsgType::DirectGroup | MsgType::Broadcast
    ) {
        return;
    }
    let udp = p.src.ip();
    let source_name = d.source_name().map(nbns_key);
    if IpAddr::V4(d.source_ip) != udp && !e.cfg.nbdd.contains(&udp) {
        out.push(
            Alert::new(&signature::SOURCE_IP_MISMATCH, p)
                .with("header_source_ip", d.source_ip.to_string())
                .with("udp_source", udp.to_string())
                .with("source_name", source_name.clone())
                .with("msg_type", d.msg_type.name())
                .key(d.source_ip.to_string()),
        );
    }
    let warm = e.hygiene.warm(now);
    if d.msg_type == MsgType::DirectUnique && warm {
        if let Some(dst) = d.destination_name() {
            let key = nbns_key(dst);
            if e.names.get(Proto::Nbns, &key).is_none() {
                out.push(
                    Alert::new(&signature::DIRECT_UNIQUE_UNKNOWN, p)
                        .with("destination_name", key.clone())
                        .with("source_name", source_name.clone())
                        .key(key),
                );
            }
        }
    }
    let Some(w) = crate::browser::mailslot(d) else {
        return;
    };
    if payload::classify(&w.name) != Application::Netlogon {
        return;
    }
    let Some(op) = w.data.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]])) else {
        return;
    };
    if !is_logon_response(op) || holds_dc_name(e, udp, now) {
        return;
    }
    let mut a = Alert::new(&signature::ROGUE_LOGON_RESPONSE, p)
        .with("opcode", op)
        .with("command", netlogon::command_name(op))
        .with("mailslot", w.name.clone())
        .with("source_name", source_name)
        .with("destination_name", d.destination_name().map(nbns_key))
        .with("cold", !warm)
        .key(format!("{op:04x}"));
    if !warm {
        a = a.severity(Severity::Low);
    }
    out.push(a);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Claim, Owner};
    use nbdgm_capture::Timestamp;
    use nbdgm_wire::datagram::NodeType;
    use nbdgm_wire::mailslot::MailslotWrite;
    use std::net::Ipv4Addr;

    fn pkt(src: [u8; 4], secs: i64, payload: &[u8]) -> Packet<'_> {
        Packet {
            frame: 1,
            time: Timestamp::new(secs, 0),
            src: (Ipv4Addr::from(src), 138).into(),
            dst: (Ipv4Addr::new(198, 51, 100, 255), 138).into(),
            src_mac: None,
            payload,
        }
    }

    fn logon_response(src: [u8; 4]) -> Vec<u8> {
        let mut data = vec![0x13, 0x00];
        data.extend_from_slice(&[0; 8]);
        let w = MailslotWrite::new("\\MAILSLOT\\NET\\GETDC42", data);
        Datagram::data(
            MsgType::DirectUnique,
            NodeType::B,
            1,
            (Ipv4Addr::from(src), 138),
            Name::new("DC1", 0).unwrap(),
            Name::new("CLIENT", 0).unwrap(),
            w.to_bytes().unwrap(),
        )
        .to_bytes()
        .unwrap()
    }

    #[test]
    fn logon_response_needs_a_dc_name() {
        let mut e = Engine::new(WatchConfig::default());
        let owner = |secs| Owner {
            addr: "198.51.100.9".parse().unwrap(),
            claim: Claim::Registered,
            frame: 1,
            secs,
        };
        e.names.claim(Proto::Nbns, "CORP<1C>", true, owner(0));
        e.names.claim(Proto::Nbns, "CLIENT<00>", false, owner(0));
        let mut out = Vec::new();
        // Warm-up: first packet notes the table, the next one 60 s later is warm.
        let b = logon_response([198, 51, 100, 9]);
        e.process(&pkt([198, 51, 100, 9], 0, &b), &mut out);
        assert!(out.is_empty(), "{out:?}");
        let rogue = logon_response([198, 51, 100, 66]);
        e.process(&pkt([198, 51, 100, 66], 100, &rogue), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].signature.slug, "rogue-logon-response");
        assert_eq!(out[0].severity, Severity::High);
        assert_eq!(out[0].evidence["cold"], false);
    }

    #[test]
    fn direct_unique_to_unowned_name_after_warmup() {
        let mut e = Engine::new(WatchConfig::default());
        e.names.claim(
            Proto::Nbns,
            "OTHER<00>",
            false,
            Owner {
                addr: "198.51.100.9".parse().unwrap(),
                claim: Claim::Registered,
                frame: 1,
                secs: 0,
            },
        );
        let w = MailslotWrite::new("\\MAILSLOT\\FOO", vec![1, 2]);
        let b = Datagram::data(
            MsgType::DirectUnique,
            NodeType::B,
            1,
            (Ipv4Addr::new(198, 51, 100, 5), 138),
            Name::new("A", 0).unwrap(),
            Name::new("GHOST", 0x20).unwrap(),
            w.to_bytes().unwrap(),
        )
        .to_bytes()
        .unwrap();
        let mut out = Vec::new();
        e.process(&pkt([198, 51, 100, 5], 10, &b), &mut out);
        assert!(out.is_empty(), "cold: {out:?}");
        e.process(&pkt([198, 51, 100, 5], 80, &b), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence["destination_name"], "GHOST<20>");
    }
}
