//! Host inventory as a by-product of watching (RFC 1002 §4.2 registrations and node
//! status, §4.4 datagrams; MS-BRWS §2.2.1 announcements): per address its names,
//! workgroup, roles, OS version, MAC, mailslots, protocols, times and port counts, and a
//! summary of who still uses port 138 and for what.

use crate::browser::{announcement_info, mailslot};
use crate::config::WatchConfig;
use crate::engine::Engine;
use crate::packet::{mac_string, Packet};
use crate::state::{CappedMap, NameTable, Proto};
use nbdgm_capture::Timestamp;
use nbdgm_wire::browser::{opcode, server_type_names};
use nbdgm_wire::datagram::Datagram;
use nbdgm_wire::nbns::{self, Opcode, RData};
use nbdgm_wire::payload::{classify, Application};
use nbdgm_wire::text::escape;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Names kept per host.
const MAX_NAMES: usize = 64;
/// Mailslot names kept per host.
const MAX_SLOTS: usize = 16;

/// Uses of port 138, for the summary.
pub const USES: [&str; 6] = [
    "browser-announcements",
    "elections",
    "browser-other",
    "netlogon",
    "messenger",
    "other-mailslots",
];

/// One host.
#[derive(Debug, Clone)]
pub struct Host {
    /// NetBIOS names (`NAME<xx>`) it registered, answered in node status or sent from.
    pub names: BTreeSet<String>,
    /// Server name of its browser announcements.
    pub server_name: Option<String>,
    /// Workgroup it announced in.
    pub workgroup: Option<String>,
    /// Last announced server type.
    pub server_type: Option<u32>,
    /// Announced OS version.
    pub os: Option<(u8, u8)>,
    /// MAC address (node status unit id or link layer).
    pub mac: Option<[u8; 6]>,
    /// Mailslots written, with counts.
    pub mailslots: BTreeMap<String, u64>,
    /// `nbns`, `datagram`, `llmnr`, `mdns`.
    pub protocols: BTreeSet<&'static str>,
    /// First packet.
    pub first_seen: Timestamp,
    /// Last packet.
    pub last_seen: Timestamp,
    /// Packets per service port.
    pub ports: BTreeMap<u16, u64>,
    /// Datagrams sent on 138 per use (index into [`USES`]).
    pub uses: [u64; 6],
    /// Names or slots not kept because a per-host cap was hit.
    pub dropped: u64,
}

impl Host {
    fn new(t: Timestamp) -> Host {
        Host {
            names: BTreeSet::new(),
            server_name: None,
            workgroup: None,
            server_type: None,
            os: None,
            mac: None,
            mailslots: BTreeMap::new(),
            protocols: BTreeSet::new(),
            first_seen: t,
            last_seen: t,
            ports: BTreeMap::new(),
            uses: [0; 6],
            dropped: 0,
        }
    }

    fn add_name(&mut self, n: String) {
        if self.names.len() < MAX_NAMES || self.names.contains(&n) {
            self.names.insert(n);
        } else {
            self.dropped += 1;
        }
    }
}

/// Hosts seen, by address.
#[derive(Debug)]
pub struct Inventory {
    /// The hosts.
    pub hosts: CappedMap<IpAddr, Host>,
}

impl Inventory {
    pub(crate) fn new(cfg: &WatchConfig) -> Self {
        Inventory {
            hosts: CappedMap::new(cfg.max_hosts),
        }
    }

    pub(crate) fn stats(&self) -> Value {
        json!({"len": self.hosts.len(), "max": self.hosts.max(), "evicted": self.hosts.evicted})
    }

    fn touch(&mut self, p: &Packet<'_>, port: u16, proto: &'static str) -> &mut Host {
        let h = self
            .hosts
            .entry(p.src.ip(), p.time.secs, || Host::new(p.time));
        h.last_seen = p.time;
        *h.ports.entry(port).or_insert(0) += 1;
        h.protocols.insert(proto);
        if let Some(m) = p.src_mac {
            h.mac = Some(m);
        }
        h
    }

    /// Hosts with at least one datagram on 138, per use: `{use: {"hosts": n, "datagrams": n}}`.
    fn summary(&self) -> BTreeMap<&'static str, (u64, u64)> {
        let mut s = BTreeMap::new();
        for (_, h, _) in self.hosts.iter() {
            for (i, &n) in h.uses.iter().enumerate() {
                if n > 0 {
                    let e = s.entry(USES[i]).or_insert((0, 0));
                    e.0 += 1;
                    e.1 += n;
                }
            }
        }
        s
    }

    /// `{"hosts": [...sorted by ip...], "summary": {...}}`. Names owned in `names` are
    /// merged into each host's names.
    pub fn to_json(&self, names: &NameTable) -> Value {
        let mut owned: BTreeMap<IpAddr, BTreeSet<&str>> = BTreeMap::new();
        for ((proto, n), e, _) in names.names.iter() {
            if *proto != Proto::Nbns {
                continue;
            }
            for o in &e.owners {
                let set = owned.entry(o.addr).or_default();
                if set.len() < MAX_NAMES {
                    set.insert(n.as_str());
                }
            }
        }
        let mut hosts: Vec<(&IpAddr, &Host)> = self.hosts.iter().map(|(k, v, _)| (k, v)).collect();
        hosts.sort_by_key(|(ip, _)| **ip);
        let list: Vec<Value> = hosts
            .iter()
            .map(|(ip, h)| {
                let mut all: BTreeSet<&str> = h.names.iter().map(String::as_str).collect();
                if let Some(o) = owned.get(ip) {
                    all.extend(o.iter().copied());
                }
                let uses: BTreeMap<&str, u64> = h
                    .uses
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(i, n)| (USES[i], *n))
                    .collect();
                json!({
                    "ip": ip.to_string(),
                    "names": all,
                    "server_name": h.server_name,
                    "workgroup": h.workgroup,
                    "server_type": h.server_type.map(|t| format!("0x{t:08x}")),
                    "roles": h.server_type.map(server_type_names).unwrap_or_default(),
                    "os_version": h.os.map(|(a, b)| format!("{a}.{b}")),
                    "mac": h.mac.as_ref().map(mac_string),
                    "mailslots": h.mailslots,
                    "protocols": h.protocols,
                    "first_seen": h.first_seen.to_rfc3339_micros(),
                    "last_seen": h.last_seen.to_rfc3339_micros(),
                    "packets": h.ports.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
                    "port_138_uses": uses,
                    "dropped": h.dropped,
                })
            })
            .collect();
        let summary: BTreeMap<&str, Value> = self
            .summary()
            .into_iter()
            .map(|(k, (h, d))| (k, json!({"hosts": h, "datagrams": d})))
            .collect();
        json!({
            "hosts": list,
            "summary": {
                "hosts": self.hosts.len(),
                "hosts_on_138": self.hosts.iter().filter(|(_, h, _)| h.uses.iter().any(|&n| n > 0)).count(),
                "port_138_uses": summary,
                "evicted": self.hosts.evicted,
            }
        })
    }

    /// Who still uses port 138 and for what, one line per use, then the hosts of each
    /// (at most 10 per use); network strings escaped.
    pub fn summary_text(&self) -> String {
        let mut s = format!("{} hosts seen", self.hosts.len());
        let sum = self.summary();
        if sum.is_empty() {
            s.push_str("; none sent on port 138\n");
            return s;
        }
        s.push_str("; port 138 in use for:\n");
        let mut hosts: Vec<(&IpAddr, &Host)> = self.hosts.iter().map(|(k, v, _)| (k, v)).collect();
        hosts.sort_by_key(|(ip, _)| **ip);
        for (i, u) in USES.iter().enumerate() {
            let Some((nh, nd)) = sum.get(u) else {
                continue;
            };
            s.push_str(&format!("  {u}: {nh} hosts, {nd} datagrams:"));
            for (ip, h) in hosts.iter().filter(|(_, h)| h.uses[i] > 0).take(10) {
                let name = h
                    .server_name
                    .as_ref()
                    .or_else(|| h.names.iter().next())
                    .map(|n| escape(n).into_owned());
                match name {
                    Some(n) => s.push_str(&format!(" {ip} ({n})")),
                    None => s.push_str(&format!(" {ip}")),
                }
            }
            if *nh > 10 {
                s.push_str(" ...");
            }
            s.push('\n');
        }
        s
    }
}

fn key(n: &nbdgm_wire::Name) -> String {
    crate::hygiene::nbns_key(n)
}

pub(crate) fn on_nbns(e: &mut Engine, p: &Packet<'_>, m: &nbns::Packet) {
    let h = e.inventory.touch(p, 137, "nbns");
    let registers = !m.is_response()
        && matches!(
            m.opcode(),
            Opcode::Registration | Opcode::MultiHomedRegistration | Opcode::Refresh(_)
        );
    if registers {
        for q in &m.questions {
            h.add_name(key(&q.name));
        }
    }
    if m.is_response() && m.rcode() == 0 {
        for r in &m.answers {
            if let RData::NodeStatus(ns) = &r.rdata {
                for n in &ns.names {
                    h.add_name(key(&n.name));
                }
                if let Some(st) = &ns.statistics {
                    if st.unit_id != [0; 6] {
                        h.mac = Some(st.unit_id);
                    }
                }
            }
        }
    }
}

pub(crate) fn on_datagram(e: &mut Engine, p: &Packet<'_>, d: &Datagram) {
    let orig = crate::browser::originator(&e.cfg, p, d);
    let h = e.inventory.touch(&orig, 138, "datagram");
    if let Some(n) = d.source_name() {
        h.add_name(key(n));
    }
    let Some(w) = mailslot(d) else {
        return;
    };
    let slot = w.name.to_ascii_uppercase();
    if h.mailslots.len() < MAX_SLOTS || h.mailslots.contains_key(&slot) {
        *h.mailslots.entry(slot).or_insert(0) += 1;
    } else {
        h.dropped += 1;
    }
    let app = classify(&w.name);
    let op = w.data.first().copied();
    let use_ix = match app {
        Application::Browser | Application::Lanman => match op {
            Some(opcode::REQUEST_ELECTION) => 1,
            Some(
                opcode::HOST_ANNOUNCEMENT
                | opcode::LOCAL_MASTER_ANNOUNCEMENT
                | opcode::DOMAIN_ANNOUNCEMENT,
            ) => 0,
            _ => 2,
        },
        Application::Netlogon => 3,
        Application::Messenger => 4,
        Application::Unknown => 5,
    };
    h.uses[use_ix] += 1;
    if let Some(a) = announcement_info(app, w.data) {
        if a.machine_group.is_none() {
            h.server_type = Some(a.server_type);
            h.os = a.os.or(h.os);
            if !a.server_name.is_empty() {
                h.server_name = Some(a.server_name);
            }
            if let Some(g) = d.destination_name() {
                if matches!(g.suffix(), 0x1d | 0x1e | 0x00) {
                    h.workgroup = Some(g.name().to_ascii_uppercase());
                }
            }
        } else {
            h.workgroup = a.machine_group.map(|g| g.to_ascii_uppercase());
        }
    }
}

pub(crate) fn on_dns(e: &mut Engine, p: &Packet<'_>, proto: Proto, _m: &crate::dns::Message) {
    let port = if proto == Proto::Mdns { 5353 } else { 5355 };
    e.inventory.touch(p, port, proto.as_str());
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_wire::browser::{Announcement, BrowserFrame};
    use nbdgm_wire::datagram::{MsgType, NodeType};
    use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
    use nbdgm_wire::Name;
    use std::net::Ipv4Addr;

    fn send(e: &mut Engine, src: [u8; 4], slot: &str, dest: (&str, u8), data: Vec<u8>) {
        let b = Datagram::data(
            MsgType::DirectGroup,
            NodeType::B,
            1,
            (Ipv4Addr::from(src), 138),
            Name::new("X", 0).unwrap(),
            Name::new(dest.0, dest.1).unwrap(),
            MailslotWrite::new(slot, data).to_bytes().unwrap(),
        )
        .to_bytes()
        .unwrap();
        let p = Packet {
            frame: 1,
            time: Timestamp::new(1, 0),
            src: (Ipv4Addr::from(src), 138).into(),
            dst: (Ipv4Addr::new(198, 51, 100, 255), 138).into(),
            src_mac: None,
            payload: &b,
        };
        e.process(&p, &mut Vec::new());
    }

    #[test]
    fn summary_text_groups_uses_and_escapes_names() {
        let mut e = Engine::new(WatchConfig::default());
        assert!(e.inventory.summary_text().contains("none sent on port 138"));
        let ann = |name: &str| {
            BrowserFrame::HostAnnouncement(Announcement {
                server_name: name.into(),
                server_type: 0x0001_1003,
                ..Default::default()
            })
            .to_bytes()
            .unwrap()
        };
        send(
            &mut e,
            [198, 51, 100, 7],
            BROWSE,
            ("CORP", 0x1d),
            ann("\x1bEVIL"),
        );
        send(
            &mut e,
            [198, 51, 100, 8],
            BROWSE,
            ("CORP", 0x1d),
            ann("WS8"),
        );
        send(
            &mut e,
            [198, 51, 100, 8],
            "\\MAILSLOT\\MESSNGR",
            ("WS7", 3),
            b"a\0b\0c\0".to_vec(),
        );
        send(
            &mut e,
            [198, 51, 100, 9],
            "\\MAILSLOT\\CUSTOM",
            ("CORP", 0),
            vec![1],
        );
        let t = e.inventory.summary_text();
        assert!(t.starts_with("3 hosts seen; port 138 in use for:"), "{t}");
        assert!(
            t.contains("browser-announcements: 2 hosts, 2 datagrams: 198.51.100.7 ("),
            "{t}"
        );
        assert!(t.contains("198.51.100.8 (WS8)"), "{t}");
        assert!(
            t.contains("messenger: 1 hosts, 1 datagrams: 198.51.100.8"),
            "{t}"
        );
        assert!(
            t.contains("other-mailslots: 1 hosts, 1 datagrams: 198.51.100.9"),
            "{t}"
        );
        assert!(!t.contains('\x1b'), "escaped: {t:?}");
        assert!(!t.contains("elections"), "{t}");
    }
}
