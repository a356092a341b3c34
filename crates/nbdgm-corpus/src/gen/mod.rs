//! The generator: vocabulary, hosts, the weighted kind tables of both mixes, and the
//! helpers every builder uses (hosts, ids, ports, names).

mod browser;
mod datagram;
mod malformed;
mod nbns;
mod payloads;

use crate::rng::Rng;
use crate::{Generated, Mix};
use nbdgm_wire::name::Name;
use std::net::Ipv4Addr;

// ---------------------------------------------------------------------------------------------
// Vocabulary

const COMPUTERS: &[&str] = &[
    "FRED",
    "BARNEY",
    "WILMA",
    "DC01",
    "FILESRV",
    "PRINTSRV",
    "LAPTOP-7Q2K",
    "WORKSTATION6",
    "SAMBAA",
    "RUSTHOST",
    "ABCDEFGHIJKLMNO",
    "X",
    "MY PC",
    "HOST_01",
    "SRV$",
    "TEST-F7DFBC3FE9",
    "WIN10-PC",
    "CLIENT-WIN-FR",
    "DJP95S0J",
    "NAS.LOCAL",
];

const GROUPS: &[&str] = &[
    "WORKGROUP",
    "MSHOME",
    "CORP",
    "ARBEITSGRUPPE",
    "TESTGROUP",
    "LAB-NET",
    "DOMAIN01",
    "W",
    "GROUP_WITH_15CH",
];

const SUBNETS: &[[u8; 3]] = &[[192, 168, 1], [10, 0, 0], [198, 51, 100], [172, 16, 5]];

/// Scopes: short ones, dotted ones, and long ones near the 255-byte limit (RFC 1002 §4.1).
fn scopes() -> Vec<String> {
    let l63 = |c: char| c.to_string().repeat(63);
    vec![
        "corp".into(),
        "NETBIOS.COM".into(),
        "example.com".into(),
        "a.b.c.d".into(),
        "lab-1.test_net".into(),
        // 34 + 220 + 1 = 255 bytes encoded: the largest legal name.
        format!("{}.{}.{}.{}", l63('a'), l63('b'), l63('c'), "d".repeat(28)),
        // 254 and 250 bytes.
        format!("{}.{}.{}.{}", l63('x'), l63('y'), l63('z'), "w".repeat(27)),
        format!("{}.{}.{}.{}", l63('s'), l63('t'), l63('v'), "u".repeat(23)),
        l63('q'),
    ]
}

/// Suffixes that matter on a LAN (MS-BRWS §2.1.1.1, MS-NBTE <2>) plus a few others.
const SUFFIXES: &[u8] = &[
    0x00, 0x03, 0x20, 0x1B, 0x1C, 0x1D, 0x1E, 0x01, 0x06, 0x1F, 0x21, 0x22, 0x23, 0x24, 0x30, 0x31,
    0x43, 0x44, 0x45, 0x46, 0x4C, 0x52, 0x53, 0x6A, 0x87, 0xBE, 0xBF, 0xFF,
];

#[derive(Clone)]
struct Host {
    name: &'static str,
    ip: Ipv4Addr,
    bcast: Ipv4Addr,
    group: &'static str,
}

pub(crate) struct Gen {
    rng: Rng,
    mix: Mix,
    hosts: Vec<Host>,
    scopes: Vec<String>,
    dgm_id: u16,
    trn_id: u16,
}

type Builder = fn(&mut Gen) -> Vec<Generated>;

/// Kinds of the Mixed corpus with their weights.
const MIXED: &[(Builder, u32)] = &[
    (Gen::host_announcement, 30),
    (Gen::local_master_announcement, 10),
    (Gen::announcement_request, 8),
    (Gen::request_election, 10),
    (Gen::get_backup_list_request, 8),
    (Gen::get_backup_list_response, 10),
    (Gen::become_backup, 6),
    (Gen::domain_announcement, 8),
    (Gen::master_announcement, 6),
    (Gen::reset_state_request, 6),
    (Gen::browser_unknown, 6),
    (Gen::browse_layout_on_lanman, 4),
    (Gen::lanman_announcement, 8),
    (Gen::netlogon_primary_query, 6),
    (Gen::netlogon_primary_response, 5),
    (Gen::netlogon_sam_logon_request, 6),
    (Gen::netlogon_sam_logon_response, 4),
    (Gen::messenger, 5),
    (Gen::mailslot_other, 6),
    (Gen::non_smb_data, 5),
    (Gen::empty_user_data, 5),
    (Gen::fragments, 8),
    (Gen::dgm_error, 8),
    (Gen::dgm_query, 10),
    (Gen::nbns_query_request, 10),
    (Gen::nbns_positive_query_response, 7),
    (Gen::nbns_negative_query_response, 5),
    (Gen::nbns_registration_request, 7),
    (Gen::nbns_registration_response, 6),
    (Gen::nbns_conflict_demand, 4),
    (Gen::nbns_release, 5),
    (Gen::nbns_refresh, 4),
    (Gen::nbns_wack, 4),
    (Gen::nbns_node_status_request, 5),
    (Gen::nbns_node_status_response, 8),
    (Gen::nbns_unknown_opcode, 2),
    (Gen::malformed_truncated, 4),
    (Gen::malformed_bad_first_level, 3),
    (Gen::malformed_pointer_name, 3),
    (Gen::malformed_bad_msg_type, 3),
    (Gen::malformed_bad_label, 2),
];

/// Kinds of the Realistic corpus with their weights (HostAnnouncement about 70 %).
const REALISTIC: &[(Builder, u32)] = &[
    (Gen::host_announcement, 700),
    (Gen::local_master_announcement, 40),
    (Gen::domain_announcement, 30),
    (Gen::request_election, 30),
    (Gen::announcement_request, 20),
    (Gen::get_backup_list_request, 20),
    (Gen::get_backup_list_response, 20),
    (Gen::nbns_query_request, 110),
    (Gen::nbns_positive_query_response, 30),
];

impl Gen {
    pub(crate) fn new(seed: u64, mix: Mix) -> Self {
        let mut rng = Rng(seed ^ 0x6E62_6467_6D2D_636F);
        let mut hosts = Vec::new();
        for (i, name) in COMPUTERS.iter().enumerate() {
            let net = SUBNETS[i % SUBNETS.len()];
            let host = 2 + rng.below(250) as u8;
            hosts.push(Host {
                name,
                ip: Ipv4Addr::new(net[0], net[1], net[2], host),
                bcast: Ipv4Addr::new(net[0], net[1], net[2], 255),
                group: GROUPS[rng.below(GROUPS.len())],
            });
        }
        Gen {
            dgm_id: rng.u16(),
            trn_id: rng.u16(),
            rng,
            mix,
            hosts,
            scopes: scopes(),
        }
    }

    fn mixed(&self) -> bool {
        self.mix == Mix::Mixed
    }

    pub(crate) fn next_batch(&mut self) -> Vec<Generated> {
        let table = match self.mix {
            Mix::Mixed => MIXED,
            Mix::Realistic => REALISTIC,
        };
        let total: u32 = table.iter().map(|&(_, w)| w).sum();
        let mut x = self.rng.below(total as usize) as u32;
        for &(build, w) in table {
            if x < w {
                return build(self);
            }
            x -= w;
        }
        unreachable!("weights cover the range")
    }

    fn host(&mut self) -> Host {
        self.hosts[self.rng.below(self.hosts.len())].clone()
    }

    fn other_host(&mut self, not: &Host) -> Host {
        loop {
            let h = self.host();
            if h.ip != not.ip {
                return h;
            }
        }
    }

    fn next_dgm_id(&mut self) -> u16 {
        self.dgm_id = self.dgm_id.wrapping_add(1 + self.rng.below(3) as u16);
        self.dgm_id
    }

    fn next_trn_id(&mut self) -> u16 {
        self.trn_id = self.trn_id.wrapping_add(1 + self.rng.below(5) as u16);
        self.trn_id
    }

    fn ephemeral_port(&mut self) -> u16 {
        self.rng.range(49_152, 65_535) as u16
    }

    // -----------------------------------------------------------------------------------------
    // Names

    fn scope(&mut self) -> String {
        if self.mixed() && self.rng.pct(12) {
            let i = self.rng.below(self.scopes.len());
            self.scopes[i].clone()
        } else {
            String::new()
        }
    }

    fn scoped(&mut self, n: Name) -> Name {
        let s = self.scope();
        n.with_scope(&s).expect("generator scopes are valid")
    }

    fn name(&mut self, name: &str, suffix: u8) -> Name {
        Name::new(name, suffix).expect("generator names are valid")
    }

    /// A NetBIOS name for an NBT header: mostly `<name>[suffix]`, sometimes odd.
    fn nbt_name(&mut self, name: &str, suffix: u8) -> Name {
        let n = if self.mixed() && self.rng.pct(8) {
            self.odd_name()
        } else {
            self.name(name, suffix)
        };
        self.scoped(n)
    }

    /// Names with non-printable octets, NUL padding, lower case, or an unusual suffix.
    fn odd_name(&mut self) -> Name {
        match self.rng.below(7) {
            0 => Name::msbrowse(),
            1 => Name::wildcard(),
            2 => {
                // Non-printable bytes inside a space-padded name.
                let mut raw = *b"ODD\x01NAME\x7f       ";
                raw[15] = *self.rng.pick(SUFFIXES);
                if self.rng.pct(50) {
                    raw[8] = 0x80 | self.rng.u8();
                }
                Name::from_raw(raw)
            }
            3 => {
                // NUL-padded instead of space-padded.
                let mut raw = [0u8; 16];
                raw[..5].copy_from_slice(b"NULPD");
                raw[15] = *self.rng.pick(SUFFIXES);
                Name::from_raw(raw)
            }
            4 => Name::from_raw(*b"lower case name\x00"),
            5 => {
                let mut raw = [0u8; 16];
                for b in raw.iter_mut() {
                    *b = self.rng.u8();
                }
                // Keep '<' out: it would make the `<xx>` notation ambiguous.
                for b in raw.iter_mut().take(15) {
                    if *b == b'<' {
                        *b = b'L';
                    }
                }
                Name::from_raw(raw)
            }
            _ => {
                let s = *self.rng.pick(SUFFIXES);
                let h = self.host();
                self.name(h.name, s)
            }
        }
    }
}
