//! `nbdgm corpus`: a deterministic, seeded generator of NetBIOS traffic, written as a
//! classic pcap file (LINKTYPE_ETHERNET, Ethernet II + IPv4 + UDP with correct IPv4 header
//! and UDP checksums, strictly increasing timestamps).
//!
//! The same `(count, seed, mix)` always gives the same bytes. Two mixes:
//! - [`Mix::Mixed`] exercises everything the codec knows: the seven datagram types
//!   (RFC 1002 §4.4), every FLAGS combination, scopes up to the 255-byte name limit
//!   (RFC 1002 §4.1), fragments (RFC 1001 §17.1.2), DGM_LENGTH right and wrong, mailslot
//!   writes with and without alignment padding (MS-MAIL §2.2.1), all browser frames
//!   (MS-BRWS §2.2) and LAN Manager announcements, NETLOGON and WinPopup messages, the
//!   name-service packets a datagram node meets (RFC 1002 §4.2) and a small share of
//!   deliberately malformed packets (kinds starting with `malformed.`).
//! - [`Mix::Realistic`] looks like a quiet LAN: about 70 % HostAnnouncements, the rest
//!   other browser frames and name queries, all well-formed. It is meant for benchmarks.
//!
//! Every generated packet carries a `kind` naming what it is (`browser.host_announcement`,
//! `nbns.wack`, `dgm.fragment_middle`, `malformed.truncated`, ...).

use crate::exit;
use clap::{Args as ClapArgs, ValueEnum};
use nbdgm_wire::browser::{
    Announcement, AnnouncementRequest, BecomeBackup, BrowserFrame, DomainAnnouncement,
    GetBackupListRequest, GetBackupListResponse, LanmanAnnouncement, LanmanFrame,
    MasterAnnouncement, RequestElection, ResetStateRequest, UnknownFrame,
};
use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use nbdgm_wire::mailslot::{self, MailslotWrite};
use nbdgm_wire::messenger::{self, Message};
use nbdgm_wire::name::Name;
use nbdgm_wire::nbns::{
    NbAddress, NodeName, NodeStatus, Packet, Question, RData, Record, Statistics, CLASS_IN,
    TYPE_NB, TYPE_NBSTAT, TYPE_NULL,
};
use nbdgm_wire::netlogon::{
    NetlogonMessage, PrimaryQuery, PrimaryResponse, SamLogonRequest, SamLogonResponse,
};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

/// Command-line arguments of `nbdgm corpus`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Number of packets to write.
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Seed of the generator: the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output pcap file.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// What to generate.
    #[arg(long, value_enum, default_value = "mixed")]
    pub mix: Mix,
}

/// What the corpus contains.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// Every packet kind the codec knows, odd flag and length values, and a small share of
    /// malformed packets.
    Mixed,
    /// Traffic as on a real LAN (about 70 % HostAnnouncements, the rest other browser
    /// frames and name queries), all well-formed; for benchmarks.
    Realistic,
}

/// One generated UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Vec<u8>,
    /// What the packet is, e.g. `browser.host_announcement`; `malformed.*` for the
    /// deliberately broken ones.
    pub kind: &'static str,
}

impl Generated {
    /// True for the deliberately malformed packets.
    pub fn is_malformed(&self) -> bool {
        self.kind.starts_with("malformed.")
    }
}

/// Write the corpus file; prints a one-line summary to stderr. Returns an exit code.
pub fn run(args: &Args) -> u8 {
    let file = match File::create(&args.output) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "nbdgm corpus: {}: cannot create: {e}",
                args.output.display()
            );
            return exit::USAGE;
        }
    };
    let mut out = BufWriter::with_capacity(1 << 16, file);
    let written = write_pcap(&mut out, generate(args.count, args.seed, args.mix))
        .and_then(|n| out.flush().map(|()| n));
    match written {
        Ok(n) => {
            let bytes = std::fs::metadata(&args.output).map_or(0, |m| m.len());
            eprintln!(
                "nbdgm corpus: wrote {n} packets ({bytes} bytes, mix {:?}, seed {}) to {}",
                args.mix,
                args.seed,
                args.output.display()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("nbdgm corpus: {}: cannot write: {e}", args.output.display());
            exit::USAGE
        }
    }
}

/// The packets of a corpus, lazily generated. Deterministic in `(count, seed, mix)`.
pub fn generate(count: usize, seed: u64, mix: Mix) -> impl Iterator<Item = Generated> {
    Corpus {
        gen: Gen::new(seed, mix),
        left: count,
        pending: VecDeque::new(),
    }
}

/// Write `packets` as a classic pcap file (microsecond timestamps, LINKTYPE_ETHERNET).
/// Returns the number of packets written.
pub fn write_pcap<W: Write>(
    mut out: W,
    packets: impl Iterator<Item = Generated>,
) -> io::Result<u64> {
    // Global header: magic, version 2.4, thiszone, sigfigs, snaplen, linktype 1.
    let mut hdr = Vec::with_capacity(24);
    hdr.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&0i32.to_le_bytes());
    hdr.extend_from_slice(&0u32.to_le_bytes());
    hdr.extend_from_slice(&65_535u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    out.write_all(&hdr)?;
    // Timestamps: from 2020-09-13T12:26:40Z, 1..=20000 µs apart, chosen from the packet
    // bytes so that they depend on nothing but the packets.
    let mut usec: u64 = 1_600_000_000 * 1_000_000;
    let mut n = 0u64;
    let mut frame = Vec::with_capacity(2048);
    for (i, p) in packets.enumerate() {
        let step = 1 + (fnv1a(&p.payload) ^ i as u64) % 20_000;
        usec += step;
        frame.clear();
        ethernet_ipv4_udp(&mut frame, &p, i as u16);
        let len = u32::try_from(frame.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((usec / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((usec % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        out.write_all(&rec)?;
        out.write_all(&frame)?;
        n += 1;
    }
    Ok(n)
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

fn is_broadcast(ip: Ipv4Addr) -> bool {
    ip.octets()[3] == 255
}

/// One's-complement sum folded to 16 bits.
fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc
}

fn ethernet_ipv4_udp(out: &mut Vec<u8>, p: &Generated, ip_id: u16) {
    let src_ip = *p.src.ip();
    let dst_ip = *p.dst.ip();
    // Ethernet II.
    if is_broadcast(dst_ip) {
        out.extend_from_slice(&[0xFF; 6]);
    } else {
        out.extend_from_slice(&mac_for(dst_ip));
    }
    out.extend_from_slice(&mac_for(src_ip));
    out.extend_from_slice(&0x0800u16.to_be_bytes());
    // IPv4 (RFC 791), no options.
    let udp_len = 8 + p.payload.len();
    let total = 20 + udp_len;
    let ip_start = out.len();
    out.push(0x45);
    out.push(0);
    out.extend_from_slice(&(total as u16).to_be_bytes());
    out.extend_from_slice(&ip_id.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.push(if is_broadcast(dst_ip) { 64 } else { 128 });
    out.push(17);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&src_ip.octets());
    out.extend_from_slice(&dst_ip.octets());
    let csum = !(ones_sum(0, &out[ip_start..ip_start + 20]) as u16);
    out[ip_start + 10..ip_start + 12].copy_from_slice(&csum.to_be_bytes());
    // UDP (RFC 768) with the pseudo-header checksum.
    let udp_start = out.len();
    out.extend_from_slice(&p.src.port().to_be_bytes());
    out.extend_from_slice(&p.dst.port().to_be_bytes());
    out.extend_from_slice(&(udp_len as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&p.payload);
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src_ip.octets());
    pseudo[4..8].copy_from_slice(&dst_ip.octets());
    pseudo[9] = 17;
    pseudo[10..12].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let sum = ones_sum(ones_sum(0, &pseudo), &out[udp_start..]);
    let mut csum = !(sum as u16);
    if csum == 0 {
        csum = 0xFFFF;
    }
    out[udp_start + 6..udp_start + 8].copy_from_slice(&csum.to_be_bytes());
}

// ---------------------------------------------------------------------------------------------
// Random numbers: SplitMix64 (Steele, Lea, Flood 2014), enough for test data.

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + ((u128::from(self.next_u64()) * u128::from(hi - lo + 1)) >> 64) as u64
    }

    /// True with probability `percent`/100.
    fn pct(&mut self, percent: u32) -> bool {
        self.below(100) < percent as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn u8(&mut self) -> u8 {
        self.next_u64() as u8
    }

    fn u16(&mut self) -> u16 {
        self.next_u64() as u16
    }

    fn u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }

    /// `n` printable ASCII characters (0x20..=0x7E).
    fn printable(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| (0x20 + self.below(0x5F) as u8) as char)
            .collect()
    }
}

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

struct Gen {
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

struct Corpus {
    gen: Gen,
    left: usize,
    pending: VecDeque<Generated>,
}

impl Iterator for Corpus {
    type Item = Generated;

    fn next(&mut self) -> Option<Generated> {
        if self.left == 0 {
            return None;
        }
        while self.pending.is_empty() {
            let batch = self.gen.next_batch();
            self.pending.extend(batch);
        }
        self.left -= 1;
        self.pending.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl Gen {
    fn new(seed: u64, mix: Mix) -> Self {
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

    fn next_batch(&mut self) -> Vec<Generated> {
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

    // -----------------------------------------------------------------------------------------
    // Datagrams

    fn node_type(&mut self) -> NodeType {
        match self.rng.below(10) {
            0..=3 => NodeType::B,
            4 => NodeType::P,
            5..=6 => NodeType::M,
            _ => NodeType::H,
        }
    }

    /// The FLAGS of an unfragmented datagram; in the Mixed corpus sometimes with reserved bits.
    fn single_flags(&mut self) -> Flags {
        let mut f = Flags::single(self.node_type());
        if self.mixed() && self.rng.pct(4) {
            f.reserved = 1 + self.rng.below(15) as u8;
        }
        f
    }

    /// UDP source and the header's SOURCE_IP/SOURCE_PORT for a datagram from `from`.
    fn dgm_source(&mut self, from: &Host) -> (SocketAddrV4, Ipv4Addr, u16) {
        let mut port = 138;
        if self.rng.pct(6) {
            port = self.ephemeral_port();
        }
        let udp = SocketAddrV4::new(from.ip, port);
        let mut hdr_ip = from.ip;
        let mut hdr_port = port;
        if self.mixed() {
            if self.rng.pct(3) {
                hdr_ip = self.host().ip; // relayed, or a sender that lies
            }
            if self.rng.pct(3) {
                hdr_port = 0; // macOS senders
            }
        }
        (udp, hdr_ip, hdr_port)
    }

    /// A data datagram (0x10–0x12) carrying `user_data`, to `to` (None: the broadcast address).
    #[allow(clippy::too_many_arguments)]
    fn data_datagram(
        &mut self,
        kind: &'static str,
        from: &Host,
        msg_type: MsgType,
        source_name: Name,
        destination_name: Name,
        user_data: Vec<u8>,
        to: Option<Ipv4Addr>,
    ) -> Generated {
        let (src, source_ip, source_port) = self.dgm_source(from);
        let mut msg_type = msg_type;
        if self.mixed() && self.rng.pct(8) {
            msg_type = *self.rng.pick(&[
                MsgType::DirectUnique,
                MsgType::DirectGroup,
                MsgType::Broadcast,
            ]);
        }
        let section = source_name.encoded_len() + destination_name.encoded_len() + user_data.len();
        let mut length = None;
        let mut offset = 0;
        if self.mixed() && self.rng.pct(5) {
            let s = section as u16;
            let random = self.rng.u16();
            let wrong = *self.rng.pick(&[
                s.wrapping_add(1),
                s.wrapping_sub(1),
                s.wrapping_add(14),
                0,
                0xFFFF,
                random,
            ]);
            if wrong != s {
                length = Some(wrong);
            }
        }
        if self.mixed() && self.rng.pct(2) {
            offset = self.rng.u16();
        }
        let d = Datagram {
            msg_type,
            flags: self.single_flags(),
            id: self.next_dgm_id(),
            source_ip,
            source_port,
            body: Body::Data {
                length,
                offset,
                body: DataBody::Names {
                    source_name,
                    destination_name,
                    user_data,
                },
            },
        };
        let dst = match to {
            Some(ip) => SocketAddrV4::new(ip, 138),
            None if self.mixed() && self.rng.pct(5) => SocketAddrV4::new(Ipv4Addr::BROADCAST, 138),
            None => SocketAddrV4::new(from.bcast, 138),
        };
        Generated {
            src,
            dst,
            payload: d.to_bytes().expect("generated datagram emits"),
            kind,
        }
    }

    /// A mailslot write of `data` on `slot`, with the odd values MS-MAIL allows in Mixed.
    fn mailslot(&mut self, slot: &str, data: Vec<u8>) -> Vec<u8> {
        let mut w = MailslotWrite::new(slot, data);
        if self.mixed() {
            if self.rng.pct(25) {
                w = w.aligned();
            }
            w.priority = match self.rng.below(10) {
                0..=3 => 0,
                4..=6 => 1,
                7 => self.rng.range(2, 9) as u16,
                8 => self.rng.u16(),
                _ => 9,
            };
            w.class = match self.rng.below(20) {
                0..=15 => 2,
                16..=17 => 1,
                18 => 0,
                _ => self.rng.range(3, 0xFFFF) as u16,
            };
            w.timeout = match self.rng.below(4) {
                0 => 0,
                1 => 1000,
                2 => self.rng.u32(),
                _ => 0xFFFF_FFFF,
            };
            if self.rng.pct(15) {
                // A Windows client application (MS-MAIL §4 example).
                w.header.flags = 0x18;
                w.header.flags2 = 0x0004;
                w.header.pid_low = 0xFEFF;
                w.max_parameter_count = 2;
                w.transaction_flags = 2;
                w.parameter_offset = w.data_offset() as u16;
            }
        } else {
            w.priority = *self.rng.pick(&[0, 1]);
            w.timeout = *self.rng.pick(&[0, 1000]);
        }
        w.to_bytes().expect("generated mailslot write emits")
    }

    fn browse(&mut self, frame: &BrowserFrame) -> Vec<u8> {
        let data = frame.to_bytes().expect("generated browser frame emits");
        // Mailslot names compare case-insensitively (MS-MAIL 3.2.5.1).
        let slot = if self.mixed() && self.rng.pct(3) {
            "\\mailslot\\Browse"
        } else {
            mailslot::BROWSE
        };
        self.mailslot(slot, data)
    }

    fn group_dgm(
        &mut self,
        kind: &'static str,
        from: &Host,
        dst_suffix: u8,
        user_data: Vec<u8>,
    ) -> Generated {
        let src = self.nbt_name(from.name, 0x00);
        let dst = self.nbt_name(from.group, dst_suffix);
        self.data_datagram(kind, from, MsgType::DirectGroup, src, dst, user_data, None)
    }

    fn unique_dgm(
        &mut self,
        kind: &'static str,
        from: &Host,
        to: &Host,
        dst_suffix: u8,
        user_data: Vec<u8>,
    ) -> Generated {
        let src = self.nbt_name(from.name, 0x00);
        let dst = self.nbt_name(to.name, dst_suffix);
        self.data_datagram(
            kind,
            from,
            MsgType::DirectUnique,
            src,
            dst,
            user_data,
            Some(to.ip),
        )
    }

    // -----------------------------------------------------------------------------------------
    // Browser frames (MS-BRWS §2.2)

    fn periodicity_ms(&mut self) -> u32 {
        *self
            .rng
            .pick(&[60_000, 120_000, 240_000, 480_000, 720_000, 900_000, 0, 1])
    }

    fn server_type(&mut self) -> u32 {
        match self.rng.below(8) {
            0 => 0x0001_1003,
            1 => 0x0005_1003,
            2 => 0x0004_9A03,
            3 => 0x0084_9A03,
            4 => 0x0040_1003,
            5 if self.mixed() => 0,
            6 if self.mixed() => self.rng.u32(),
            _ => 0x0001_0003,
        }
    }

    fn comment(&mut self) -> String {
        match self.rng.below(8) {
            0 | 1 => String::new(),
            2 => "rust nbdgm test host".into(),
            3 => "Samba 4.17.12-Debian".into(),
            4 => "0123456789abcdefghijklmnopqrstuvwxyzABCDEF".into(), // 42, the maximum
            5 => "File & print server, room 2.14".into(),
            // Latin-1 (an OEM code page in practice): a German or Spanish LAN.
            6 if self.mixed() && self.rng.pct(30) => (*self.rng.pick(&[
                "B\u{fc}ro-PC von J\u{fc}rgen",
                "\u{d1}and\u{fa}",
                "caf\u{e9}",
            ]))
            .into(),
            _ => {
                let n = self.rng.below(43);
                self.rng.printable(n)
            }
        }
    }

    fn announcement(&mut self, h: &Host) -> Announcement {
        let mut a = Announcement {
            update_count: 0,
            periodicity_ms: self.periodicity_ms(),
            server_name: h.name.into(),
            os_major: 6,
            os_minor: 1,
            server_type: self.server_type(),
            comment: self.comment(),
            ..Announcement::default()
        };
        (a.os_major, a.os_minor) =
            *self
                .rng
                .pick(&[(6, 1), (10, 0), (5, 1), (4, 9), (6, 2), (6, 3)]);
        if self.mixed() {
            if self.rng.pct(10) {
                a.update_count = self.rng.u8();
            }
            if self.rng.pct(5) {
                a.server_name = String::new();
            }
            if self.rng.pct(5) {
                a.os_major = self.rng.u8();
                a.os_minor = self.rng.u8();
            }
            if self.rng.pct(5) {
                a.browser_version_major = self.rng.u8();
                a.browser_version_minor = self.rng.u8();
            }
            if self.rng.pct(3) {
                a.signature = self.rng.u16();
            }
            if self.rng.pct(3) {
                a.periodicity_ms = self.rng.u32();
            }
            if self.rng.pct(4) && a.server_name.len() < 14 {
                // Garbage after the NUL inside the 16-byte ServerName field.
                let room = 15 - a.server_name.len();
                let n = self.rng.range(1, room as u64) as usize;
                let mut pad = self.rng.bytes(n);
                if let Some(last) = pad.last_mut() {
                    *last |= 1;
                }
                a.server_name_padding = pad;
            }
            match self.rng.below(40) {
                0 => a.comment_unterminated = true,
                1 => {
                    let n = 1 + self.rng.below(8);
                    a.trailing = self.rng.bytes(n);
                }
                _ => {}
            }
        }
        a
    }

    fn host_announcement(&mut self) -> Vec<Generated> {
        let h = self.host();
        let f = BrowserFrame::HostAnnouncement(self.announcement(&h));
        let data = self.browse(&f);
        vec![self.group_dgm("browser.host_announcement", &h, 0x1D, data)]
    }

    fn local_master_announcement(&mut self) -> Vec<Generated> {
        let h = self.host();
        let mut a = self.announcement(&h);
        a.server_type |= 0x0004_0000;
        let f = BrowserFrame::LocalMasterAnnouncement(a);
        let data = self.browse(&f);
        vec![self.group_dgm("browser.local_master_announcement", &h, 0x1E, data)]
    }

    fn announcement_request(&mut self) -> Vec<Generated> {
        let h = self.host();
        let f = BrowserFrame::AnnouncementRequest(AnnouncementRequest {
            reserved: if self.rng.pct(70) { 0 } else { self.rng.u8() },
            response_name: if self.rng.pct(10) {
                String::new()
            } else {
                h.name.into()
            },
            trailing: Vec::new(),
        });
        let data = self.browse(&f);
        let suffix = *self.rng.pick(&[0x00, 0x1D, 0x1E]);
        vec![self.group_dgm("browser.announcement_request", &h, suffix, data)]
    }

    fn request_election(&mut self) -> Vec<Generated> {
        let h = self.host();
        let mut e = RequestElection {
            election_version: 1,
            criteria: match self.rng.below(6) {
                0 => 0x2001_0F04,
                1 => 0x1001_0F00,
                2 => 0x1401_0F02,
                3 => 0x2001_0FA7,
                4 => 0x0101_0F01,
                _ => self.rng.u32(),
            },
            uptime_ms: if self.rng.pct(50) {
                self.rng.range(0, 3_600_000) as u32
            } else {
                self.rng.u32()
            },
            unused: 0,
            server_name: h.name.into(),
            trailing: Vec::new(),
        };
        if self.rng.pct(10) {
            // A forced election: version 0, criteria 0 (MS-BRWS §3.1.6).
            e.election_version = 0;
            e.criteria = 0;
        }
        if self.mixed() {
            if self.rng.pct(5) {
                e.unused = self.rng.u32();
            }
            if self.rng.pct(5) {
                e.election_version = self.rng.u8();
            }
        }
        let f = BrowserFrame::RequestElection(e);
        let data = self.browse(&f);
        vec![self.group_dgm("browser.request_election", &h, 0x1E, data)]
    }

    fn get_backup_list_request(&mut self) -> Vec<Generated> {
        let h = self.host();
        let f = BrowserFrame::GetBackupListRequest(GetBackupListRequest {
            count: if self.rng.pct(80) { 4 } else { self.rng.u8() },
            token: if self.rng.pct(50) {
                self.rng.range(0, 10) as u32
            } else {
                self.rng.u32()
            },
            trailing: Vec::new(),
        });
        let data = self.browse(&f);
        let suffix = if self.rng.pct(85) { 0x1D } else { 0x1B };
        vec![self.group_dgm("browser.get_backup_list_request", &h, suffix, data)]
    }

    fn get_backup_list_response(&mut self) -> Vec<Generated> {
        let lmb = self.host();
        let to = self.other_host(&lmb);
        let n = match self.rng.below(10) {
            0 => 0,
            1..=5 => 1,
            6..=8 => self.rng.range(2, 4) as usize,
            _ => self.rng.range(5, 12) as usize,
        };
        let mut servers = Vec::with_capacity(n);
        for i in 0..n {
            servers.push(if i == 0 {
                lmb.name.to_string()
            } else {
                self.host().name.to_string()
            });
        }
        let trailing = if self.mixed() && self.rng.pct(5) {
            let n = 1 + self.rng.below(6);
            self.rng.bytes(n)
        } else {
            Vec::new()
        };
        let f = BrowserFrame::GetBackupListResponse(GetBackupListResponse {
            count: n as u8,
            token: self.rng.range(0, 20) as u32,
            servers,
            trailing,
        });
        let data = self.browse(&f);
        vec![self.unique_dgm("browser.get_backup_list_response", &lmb, &to, 0x00, data)]
    }

    fn become_backup(&mut self) -> Vec<Generated> {
        let lmb = self.host();
        let to = self.other_host(&lmb);
        let f = BrowserFrame::BecomeBackup(BecomeBackup {
            browser_to_promote: to.name.into(),
            trailing: Vec::new(),
        });
        let data = self.browse(&f);
        if self.rng.pct(50) {
            vec![self.group_dgm("browser.become_backup", &lmb, 0x1E, data)]
        } else {
            vec![self.unique_dgm("browser.become_backup", &lmb, &to, 0x00, data)]
        }
    }

    fn domain_announcement(&mut self) -> Vec<Generated> {
        let h = self.host();
        let mut d = DomainAnnouncement {
            periodicity_ms: self.periodicity_ms(),
            machine_group: h.group.into(),
            local_master_name: h.name.into(),
            ..DomainAnnouncement::default()
        };
        match self.rng.below(3) {
            0 => {}
            1 => {
                // Samba: its OS version in the config version bytes.
                d.browser_config_version_major = 6;
                d.browser_config_version_minor = 1;
            }
            _ => {
                // Windows leaves bytes 28..31 uninitialised (Wireshark's "Mysterious Field").
                let v = self.rng.u32().to_le_bytes();
                d.browser_version_major = v[0];
                d.browser_version_minor = v[1];
                d.signature = u16::from_le_bytes([v[2], v[3]]);
            }
        }
        if self.mixed() && self.rng.pct(20) {
            d.server_type = self.server_type() | 0x8000_0000;
        }
        let f = BrowserFrame::DomainAnnouncement(d);
        let data = self.browse(&f);
        let src = self.nbt_name(h.name, 0x00);
        let dst = self.scoped(Name::msbrowse());
        vec![self.data_datagram(
            "browser.domain_announcement",
            &h,
            MsgType::DirectGroup,
            src,
            dst,
            data,
            None,
        )]
    }

    fn master_announcement(&mut self) -> Vec<Generated> {
        let lmb = self.host();
        let pdc = self.other_host(&lmb);
        let f = BrowserFrame::MasterAnnouncement(MasterAnnouncement {
            master_name: lmb.name.into(),
            trailing: Vec::new(),
        });
        let data = self.browse(&f);
        vec![self.unique_dgm("browser.master_announcement", &lmb, &pdc, 0x00, data)]
    }

    fn reset_state_request(&mut self) -> Vec<Generated> {
        let from = self.host();
        let to = self.other_host(&from);
        let f = BrowserFrame::ResetStateRequest(ResetStateRequest {
            reset_type: *self
                .rng
                .pick(&[0x01, 0x02, 0x04, 0x03, 0x07, 0x00, 0x80, 0xFF]),
            trailing: Vec::new(),
        });
        let data = self.browse(&f);
        vec![self.unique_dgm("browser.reset_state_request", &from, &to, 0x1D, data)]
    }

    fn browser_unknown(&mut self) -> Vec<Generated> {
        let h = self.host();
        let opcode = *self.rng.pick(&[
            0x00, 0x03, 0x04, 0x05, 0x06, 0x07, 0x10, 0x11, 0x20, 0x7F, 0xFF,
        ]);
        let n = self.rng.below(24);
        let f = BrowserFrame::Unknown(UnknownFrame {
            opcode,
            data: self.rng.bytes(n),
        });
        let data = self.browse(&f);
        vec![self.group_dgm("browser.unknown_opcode", &h, 0x1D, data)]
    }

    /// An MS-BRWS HostAnnouncement sent on `\MAILSLOT\LANMAN` (MS-BRWS §2.2.1 "SHOULD", <9>).
    fn browse_layout_on_lanman(&mut self) -> Vec<Generated> {
        let h = self.host();
        let mut a = self.announcement(&h);
        a.signature = 0xAA55;
        a.comment_unterminated = false; // keep the 33 bytes the LANMAN heuristic needs
        let f = LanmanFrame::Browser(BrowserFrame::HostAnnouncement(a));
        let data = f.to_bytes().expect("browse layout on LANMAN emits");
        let data = self.mailslot(mailslot::LANMAN, data);
        vec![self.group_dgm("lanman.browse_layout", &h, 0x1D, data)]
    }

    /// A LAN Manager announcement (DIGEST §6.7).
    fn lanman_announcement(&mut self) -> Vec<Generated> {
        let h = self.host();
        loop {
            let a = LanmanAnnouncement {
                opcode: *self.rng.pick(&[0x01, 0x01, 0x01, 0x0F, 0x0C]),
                update_count: if self.rng.pct(80) { 0 } else { self.rng.u8() },
                server_type: self.server_type(),
                os_major: *self.rng.pick(&[4, 5, 6, 10]),
                os_minor: *self.rng.pick(&[0, 1, 9]),
                periodicity_s: *self.rng.pick(&[60, 720, 900, 0, 0xFFFF]),
                server_name: h.name.into(),
                comment: self.comment(),
                ..LanmanAnnouncement::default()
            };
            // Retry in the unlikely case bytes 30..31 come out as 55 AA.
            if let Ok(data) = LanmanFrame::Announcement(a).to_bytes() {
                let data = self.mailslot(mailslot::LANMAN, data);
                return vec![self.group_dgm("lanman.announcement", &h, 0x00, data)];
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // NETLOGON (MS-ADTS §6.3.1), WinPopup, other mailslots

    fn reply_slot(&mut self) -> String {
        if self.rng.pct(30) {
            "\\MAILSLOT\\TEMP\\NETLOGON".into()
        } else {
            format!("\\MAILSLOT\\NET\\GETDC{:03X}", self.rng.below(0x1000))
        }
    }

    /// The host's name, or in the Mixed corpus sometimes one with OEM (Latin-1) letters.
    fn netlogon_computer(&mut self, h: &Host) -> &'static str {
        if self.mixed() && self.rng.pct(10) {
            "B\u{dc}RO-PC-\u{c9}T\u{c9}"
        } else {
            h.name
        }
    }

    fn netlogon(&mut self, m: &NetlogonMessage, slot: &str) -> Vec<u8> {
        let data = m.to_bytes().expect("generated NETLOGON message emits");
        self.mailslot(slot, data)
    }

    fn netlogon_primary_query(&mut self) -> Vec<Generated> {
        let h = self.host();
        let reply = self.reply_slot();
        let computer = self.netlogon_computer(&h);
        let mut q = PrimaryQuery::new(computer, &reply);
        match self.rng.below(4) {
            0 => {
                // LAN Manager 2.0 / Windows 9x form: only the Lm20Token.
                q.unicode_computer_name = None;
                q.nt_version = None;
                q.lmnt_token = None;
            }
            1 => q.nt_version = Some(*self.rng.pick(&[0x0B, 0x2000_0006, 0x1000_0001])),
            _ => {}
        }
        let data = self.netlogon(&NetlogonMessage::PrimaryQuery(q), mailslot::NETLOGON);
        let suffix = if self.rng.pct(50) { 0x1B } else { 0x1C };
        vec![self.group_dgm("netlogon.primary_query", &h, suffix, data)]
    }

    fn netlogon_primary_response(&mut self) -> Vec<Generated> {
        let pdc = self.host();
        let to = self.other_host(&pdc);
        let mut p = PrimaryResponse {
            primary_dc_name: pdc.name.into(),
            unicode_primary_dc_name: Some(pdc.name.into()),
            unicode_domain_name: Some(pdc.group.into()),
            nt_version: Some(1),
            lmnt_token: Some(0xFFFF),
            lm20_token: Some(0xFFFF),
            trailing: Vec::new(),
        };
        if self.rng.pct(20) {
            // An old PDC: only the OEM name.
            p.unicode_primary_dc_name = None;
            p.unicode_domain_name = None;
            p.nt_version = None;
            p.lmnt_token = None;
            p.lm20_token = None;
        }
        let reply = self.reply_slot();
        let data = self.netlogon(&NetlogonMessage::PrimaryResponse(p), &reply);
        vec![self.unique_dgm("netlogon.primary_response", &pdc, &to, 0x00, data)]
    }

    fn domain_sid(&mut self) -> Vec<u8> {
        // S-1-5-21-a-b-c (MS-DTYP §2.4.2).
        let mut sid = vec![1, 4, 0, 0, 0, 0, 0, 5];
        sid.extend_from_slice(&21u32.to_le_bytes());
        for _ in 0..3 {
            sid.extend_from_slice(&self.rng.u32().to_le_bytes());
        }
        sid
    }

    fn netlogon_sam_logon_request(&mut self) -> Vec<Generated> {
        let h = self.host();
        let reply = self.reply_slot();
        let user = *self
            .rng
            .pick(&["", "administrator", "alice", "WORKSTATION6$"]);
        let ntv = *self
            .rng
            .pick(&[0x0000_000B, 0x2000_0006, 0x0000_0001, 0x0100_0016]);
        let computer = self.netlogon_computer(&h);
        let mut q = SamLogonRequest::new(computer, user, &reply, ntv);
        q.request_count = self.rng.range(0, 3) as u16;
        q.allowable_account_control_bits = *self.rng.pick(&[0, 0x80, 0x10, 0x200]);
        if self.rng.pct(40) {
            q.domain_sid = self.domain_sid();
        }
        let data = self.netlogon(&NetlogonMessage::SamLogonRequest(q), mailslot::NETLOGON);
        vec![self.group_dgm("netlogon.sam_logon_request", &h, 0x1C, data)]
    }

    fn netlogon_sam_logon_response(&mut self) -> Vec<Generated> {
        let dc = self.host();
        let to = self.other_host(&dc);
        let p = SamLogonResponse {
            unicode_logon_server: format!("\\\\{}", dc.name),
            user_name: (*self.rng.pick(&["", "alice", "administrator"])).into(),
            unicode_domain_name: dc.group.into(),
            v5: None,
            nt_version: Some(1),
            lmnt_token: Some(0xFFFF),
            lm20_token: Some(0xFFFF),
            trailing: Vec::new(),
        };
        let m = if self.rng.pct(70) {
            NetlogonMessage::SamLogonResponse(p)
        } else {
            NetlogonMessage::SamUserUnknown(p)
        };
        let reply = self.reply_slot();
        let data = self.netlogon(&m, &reply);
        vec![self.unique_dgm("netlogon.sam_logon_response", &dc, &to, 0x00, data)]
    }

    fn messenger(&mut self) -> Vec<Generated> {
        let from = self.host();
        let to = self.other_host(&from);
        let recipient = if self.rng.pct(20) { "*" } else { to.name };
        const TEXTS: [&str; 4] = [
            "Hello",
            "The printer on floor 2 is out of paper.\nPlease refill it.",
            "",
            "Meeting moved to 15:00",
        ];
        let text = TEXTS[self.rng.below(TEXTS.len())];
        let text = messenger::crlf(text);
        let m = Message::new(from.name, recipient, &text);
        let data = self.mailslot(
            mailslot::MESSNGR,
            m.to_bytes().expect("generated message emits"),
        );
        vec![self.unique_dgm("messenger", &from, &to, 0x03, data)]
    }

    /// A write to a mailslot nbdgm does not decode, often padded (MS-MAIL §4 example).
    fn mailslot_other(&mut self) -> Vec<Generated> {
        let from = self.host();
        let to = self.other_host(&from);
        let slot = *self.rng.pick(&[
            "\\MAILSLOT\\test1\\sample_mailslot",
            "\\MAILSLOT\\FOO",
            "\\MAILSLOT\\APP\\X",
            "\\MAILSLOT\\abc",
        ]);
        let n = self.rng.below(80);
        let mut w = MailslotWrite::new(slot, self.rng.bytes(n));
        if self.rng.pct(60) {
            w = w.aligned();
        }
        w.priority = self.rng.range(0, 9) as u16;
        let data = w.to_bytes().expect("generated mailslot write emits");
        vec![self.unique_dgm("mailslot.other", &from, &to, 0x00, data)]
    }

    /// User data that is not an SMB mailslot write.
    fn non_smb_data(&mut self) -> Vec<Generated> {
        let from = self.host();
        let n = self.rng.range(1, 60) as usize;
        let mut data = if self.rng.pct(50) {
            self.rng.printable(n).into_bytes()
        } else {
            self.rng.bytes(n)
        };
        if data[0] == 0xFF || data[0] == 0xFE {
            data[0] = 0x42;
        }
        let src = self.nbt_name(from.name, 0x00);
        let dst = self.scoped(Name::wildcard());
        vec![self.data_datagram(
            "dgm.non_smb_data",
            &from,
            MsgType::Broadcast,
            src,
            dst,
            data,
            None,
        )]
    }

    fn empty_user_data(&mut self) -> Vec<Generated> {
        let from = self.host();
        let to = self.other_host(&from);
        vec![self.unique_dgm("dgm.empty_user_data", &from, &to, 0x00, Vec::new())]
    }

    /// One datagram split into 2 or 3 fragments (RFC 1001 §17.1.2): names first, every
    /// fragment with the full header, the same DGM_ID and DGM_LENGTH (the total), and
    /// PACKET_OFFSET counting data-section bytes already sent.
    fn fragments(&mut self) -> Vec<Generated> {
        let from = self.host();
        let to = self.other_host(&from);
        let src_name = self.nbt_name(from.name, 0x00);
        let dst_name = self.nbt_name(to.name, 0x00);
        let n = self.rng.range(300, 900) as usize;
        let payload = self.rng.bytes(n);
        let user_data = MailslotWrite::new("\\MAILSLOT\\BIG\\DATA", payload)
            .to_bytes()
            .expect("mailslot write emits");
        let names_len = src_name.encoded_len() + dst_name.encoded_len();
        let total = names_len + user_data.len();
        let mut section = Vec::with_capacity(total);
        src_name.emit(&mut section);
        dst_name.emit(&mut section);
        section.extend_from_slice(&user_data);
        let parts = if self.rng.pct(50) { 2 } else { 3 };
        // Cut points inside the user data.
        let first_end = names_len + self.rng.range(1, (user_data.len() / parts) as u64) as usize;
        let mut cuts = vec![0, first_end];
        if parts == 3 {
            let mid = first_end + self.rng.range(1, ((total - first_end) / 2) as u64) as usize;
            cuts.push(mid);
        }
        cuts.push(total);
        let id = self.next_dgm_id();
        let (src, source_ip, source_port) = self.dgm_source(&from);
        let node_type = self.node_type();
        let mut out = Vec::new();
        for i in 0..parts {
            let (a, b) = (cuts[i], cuts[i + 1]);
            let first = i == 0;
            let more = i + 1 < parts;
            let body = if first {
                DataBody::Names {
                    source_name: src_name.clone(),
                    destination_name: dst_name.clone(),
                    user_data: user_data[..b - names_len].to_vec(),
                }
            } else {
                DataBody::Continuation {
                    data: section[a..b].to_vec(),
                }
            };
            let d = Datagram {
                msg_type: MsgType::DirectUnique,
                flags: Flags {
                    more,
                    first,
                    node_type,
                    reserved: 0,
                },
                id,
                source_ip,
                source_port,
                body: Body::Data {
                    length: Some(total as u16),
                    offset: a as u16,
                    body,
                },
            };
            let kind = match (first, more) {
                (true, _) => "dgm.fragment_first",
                (false, true) => "dgm.fragment_middle",
                (false, false) => "dgm.fragment_last",
            };
            out.push(Generated {
                src,
                dst: SocketAddrV4::new(to.ip, 138),
                payload: d.to_bytes().expect("fragment emits"),
                kind,
            });
        }
        out
    }

    /// Any FLAGS byte: the RFC gives no rule for ERROR and QUERY packets.
    fn any_flags(&mut self) -> Flags {
        let mut b = self.rng.u8();
        if !self.rng.pct(10) {
            b &= 0x0F;
        }
        Flags::from_byte(b)
    }

    fn dgm_error(&mut self) -> Vec<Generated> {
        let from = self.host();
        let to = self.other_host(&from);
        let code = if self.rng.pct(75) {
            *self.rng.pick(&[0x82, 0x83, 0x84])
        } else {
            *self.rng.pick(&[0x00, 0x01, 0x80, 0x81, 0x85, 0x90, 0xFF])
        };
        let mut flags = self.any_flags();
        if self.rng.pct(50) {
            // RFC 1002 §5.3.3: F and M cleared.
            flags.first = false;
            flags.more = false;
        }
        let (src, source_ip, source_port) = self.dgm_source(&from);
        let d: Datagram = Datagram {
            msg_type: MsgType::Error,
            flags,
            id: self.rng.u16(),
            source_ip,
            source_port,
            body: Body::Error { code },
        };
        vec![Generated {
            src,
            dst: SocketAddrV4::new(to.ip, 138),
            payload: d.to_bytes().expect("error datagram emits"),
            kind: "dgm.error",
        }]
    }

    fn dgm_query(&mut self) -> Vec<Generated> {
        let node = self.host();
        let nbdd = self.other_host(&node);
        let (msg_type, kind, from, to) = match self.rng.below(3) {
            0 => (
                MsgType::QueryRequest,
                "dgm.query_request",
                node.clone(),
                nbdd.clone(),
            ),
            1 => (
                MsgType::PositiveQueryResponse,
                "dgm.positive_query_response",
                nbdd.clone(),
                node.clone(),
            ),
            _ => (
                MsgType::NegativeQueryResponse,
                "dgm.negative_query_response",
                nbdd.clone(),
                node.clone(),
            ),
        };
        let suffix = *self.rng.pick(&[0x00, 0x1E, 0x1C, 0x20, 0x1D]);
        let destination_name = self.nbt_name(node.group, suffix);
        let (src, source_ip, source_port) = self.dgm_source(&from);
        let d: Datagram = Datagram {
            msg_type,
            flags: self.any_flags(),
            id: self.next_dgm_id(),
            source_ip,
            source_port,
            body: Body::Query { destination_name },
        };
        vec![Generated {
            src,
            dst: SocketAddrV4::new(to.ip, 138),
            payload: d.to_bytes().expect("query datagram emits"),
            kind,
        }]
    }

    // -----------------------------------------------------------------------------------------
    // Name service (RFC 1002 §4.2)

    fn nbns_name(&mut self) -> Name {
        let h = self.host();
        let (n, s) = match self.rng.below(6) {
            0 => (h.group, *self.rng.pick(&[0x00, 0x1B, 0x1C, 0x1D, 0x1E])),
            _ => (h.name, *self.rng.pick(SUFFIXES)),
        };
        self.nbt_name(n, s)
    }

    fn nb_flags(&mut self) -> u16 {
        let mut f = *self
            .rng
            .pick(&[0x0000, 0x2000, 0x4000, 0x6000, 0x8000, 0xE000]);
        if self.mixed() && self.rng.pct(5) {
            f |= self.rng.u16() & 0x1FFF;
        }
        f
    }

    fn nb_record(&mut self, name: Name, ttl: u32, addrs: usize) -> Record {
        let mut list = Vec::with_capacity(addrs);
        for _ in 0..addrs {
            let ip = self.host().ip;
            list.push(NbAddress {
                flags: self.nb_flags(),
                ip,
            });
        }
        Record {
            name,
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl,
            rdata: RData::Nb(list),
        }
    }

    fn ttl(&mut self) -> u32 {
        *self
            .rng
            .pick(&[300_000, 0, 259_200, 3600, 1, 0xFFFF_FFFF, 0x7FFF_FFFF])
    }

    fn nbns_packet(
        &mut self,
        kind: &'static str,
        p: &Packet,
        src: SocketAddrV4,
        dst: SocketAddrV4,
    ) -> Vec<Generated> {
        vec![Generated {
            src,
            dst,
            payload: p.to_bytes().expect("generated NBNS packet emits"),
            kind,
        }]
    }

    /// (requester's address, broadcast?) for a request from `h` to port 137.
    fn nbns_request_ends(&mut self, h: &Host, bcast: bool) -> (SocketAddrV4, SocketAddrV4) {
        let port = if self.rng.pct(70) {
            137
        } else {
            self.ephemeral_port()
        };
        let dst_ip = if bcast {
            h.bcast
        } else {
            self.other_host(h).ip
        };
        (
            SocketAddrV4::new(h.ip, port),
            SocketAddrV4::new(dst_ip, 137),
        )
    }

    fn nbns_response_ends(&mut self, responder: &Host) -> (SocketAddrV4, SocketAddrV4) {
        let to = self.other_host(responder);
        let port = if self.rng.pct(70) {
            137
        } else {
            self.ephemeral_port()
        };
        (
            SocketAddrV4::new(responder.ip, 137),
            SocketAddrV4::new(to.ip, port),
        )
    }

    fn question(&mut self, name: Name, qtype: u16) -> Question {
        Question {
            name,
            qtype,
            qclass: CLASS_IN,
        }
    }

    fn packet(&mut self, flags: u16) -> Packet {
        Packet {
            id: self.next_trn_id(),
            flags,
            questions: Vec::new(),
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            trailing: Vec::new(),
        }
    }

    fn nbns_query_request(&mut self) -> Vec<Generated> {
        let h = self.host();
        let bcast = self.rng.pct(70);
        let mut flags = if bcast { 0x0110 } else { 0x0100 };
        if self.mixed() && self.rng.pct(10) {
            flags &= !0x0100; // RD clear
        }
        let mut p = self.packet(flags);
        let name = self.nbns_name();
        p.questions.push(self.question(name, TYPE_NB));
        let (src, dst) = self.nbns_request_ends(&h, bcast);
        self.nbns_packet("nbns.query_request", &p, src, dst)
    }

    fn nbns_positive_query_response(&mut self) -> Vec<Generated> {
        let h = self.host();
        let flags = *self.rng.pick(&[0x8500, 0x8580, 0x8400, 0x8780]);
        let mut p = self.packet(flags);
        let name = self.nbns_name();
        let n = if self.rng.pct(80) {
            1
        } else {
            self.rng.range(2, 6) as usize
        };
        let ttl = self.ttl();
        if self.mixed() && self.rng.pct(8) {
            // The question echoed, DNS-style; the answer's name becomes the pointer C0 0C.
            p.questions.push(self.question(name.clone(), TYPE_NB));
        }
        let rec = self.nb_record(name, ttl, n);
        p.answers.push(rec);
        let (src, dst) = self.nbns_response_ends(&h);
        self.nbns_packet("nbns.positive_query_response", &p, src, dst)
    }

    fn nbns_negative_query_response(&mut self) -> Vec<Generated> {
        let h = self.host();
        let rcode = *self.rng.pick(&[3, 3, 3, 1, 2, 5]);
        let flags = *self.rng.pick(&[0x8580u16, 0x8500]) | rcode;
        let mut p = self.packet(flags);
        let name = self.nbns_name();
        let rr_type = if self.rng.pct(80) { TYPE_NULL } else { TYPE_NB };
        p.answers.push(Record {
            name,
            rr_type,
            rr_class: CLASS_IN,
            ttl: 0,
            rdata: RData::Raw(Vec::new()),
        });
        let (src, dst) = self.nbns_response_ends(&h);
        self.nbns_packet("nbns.negative_query_response", &p, src, dst)
    }

    /// A request with the question and one additional NB record whose name is the
    /// pointer C0 0C (RFC 1002 §4.2.2).
    fn nbns_name_request(
        &mut self,
        kind: &'static str,
        flags_bcast: u16,
        flags_unicast: u16,
        ttl: u32,
    ) -> Vec<Generated> {
        let h = self.host();
        let bcast = self.rng.pct(60);
        let mut p = self.packet(if bcast { flags_bcast } else { flags_unicast });
        let name = self.nbns_name();
        p.questions.push(self.question(name.clone(), TYPE_NB));
        let mut rec = self.nb_record(name, ttl, 1);
        if let RData::Nb(a) = &mut rec.rdata {
            a[0].ip = h.ip;
        }
        p.additional.push(rec);
        let (src, dst) = self.nbns_request_ends(&h, bcast);
        self.nbns_packet(kind, &p, src, dst)
    }

    fn nbns_registration_request(&mut self) -> Vec<Generated> {
        let ttl = if self.rng.pct(70) { 300_000 } else { 0 };
        match self.rng.below(8) {
            // NAME OVERWRITE REQUEST & DEMAND: RD clear (RFC 1002 §4.2.3).
            0 => self.nbns_name_request("nbns.overwrite_demand", 0x2810, 0x2800, ttl),
            // Microsoft multi-homed registration, opcode 15 (MS-NBTE §2.2.2).
            1 => self.nbns_name_request("nbns.multihomed_registration", 0x7910, 0x7900, ttl),
            _ => self.nbns_name_request("nbns.registration_request", 0x2910, 0x2900, ttl),
        }
    }

    fn nbns_release(&mut self) -> Vec<Generated> {
        if self.rng.pct(70) {
            return self.nbns_name_request("nbns.release_request", 0x3010, 0x3000, 0);
        }
        let h = self.host();
        let rcode = *self.rng.pick(&[0, 0, 3, 5, 6]);
        let mut p = self.packet(0xB400 | rcode);
        let name = self.nbns_name();
        let rec = self.nb_record(name, 0, 1);
        p.answers.push(rec);
        let (src, dst) = self.nbns_response_ends(&h);
        self.nbns_packet("nbns.release_response", &p, src, dst)
    }

    fn nbns_refresh(&mut self) -> Vec<Generated> {
        // Opcode 8, and 9 as the RFC 1002 §4.2.4 picture shows it.
        if self.rng.pct(60) {
            self.nbns_name_request("nbns.refresh_request", 0x4010, 0x4000, 300_000)
        } else {
            self.nbns_name_request("nbns.refresh_request", 0x4810, 0x4800, 300_000)
        }
    }

    fn nbns_registration_response(&mut self) -> Vec<Generated> {
        let h = self.host();
        let (flags, kind) = if self.rng.pct(35) {
            (0xAD00, "nbns.positive_registration_response")
        } else {
            let rcode = *self.rng.pick(&[6, 6, 6, 1, 2, 4, 5]);
            (0xAD80 | rcode, "nbns.negative_registration_response")
        };
        let mut p = self.packet(flags);
        let name = self.nbns_name();
        let ttl = if flags == 0xAD00 { 300_000 } else { 0 };
        let mut rec = self.nb_record(name, ttl, 1);
        if let RData::Nb(a) = &mut rec.rdata {
            a[0].ip = h.ip;
        }
        p.answers.push(rec);
        let (src, dst) = self.nbns_response_ends(&h);
        self.nbns_packet(kind, &p, src, dst)
    }

    /// NAME CONFLICT DEMAND (RFC 1002 §4.2.8): RCODE CFT_ERR, TTL 0, ONT only, 0.0.0.0.
    fn nbns_conflict_demand(&mut self) -> Vec<Generated> {
        let h = self.host();
        let mut p = self.packet(0xAD87);
        let name = self.nbns_name();
        let ont = *self.rng.pick(&[0x0000, 0x2000, 0x4000, 0x6000]);
        p.answers.push(Record {
            name,
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl: 0,
            rdata: RData::Nb(vec![NbAddress {
                flags: ont,
                ip: Ipv4Addr::UNSPECIFIED,
            }]),
        });
        let to = self.other_host(&h);
        let src = SocketAddrV4::new(h.ip, 137);
        let dst = SocketAddrV4::new(to.ip, 137);
        self.nbns_packet("nbns.conflict_demand", &p, src, dst)
    }

    /// WAIT FOR ACKNOWLEDGEMENT (RFC 1002 §4.2.16): RR type NB (Samba 4) or NULL (Samba 3),
    /// RDATA the request's flags word.
    fn nbns_wack(&mut self) -> Vec<Generated> {
        let h = self.host();
        let mut p = self.packet(0xBC00);
        let name = self.nbns_name();
        let rr_type = if self.rng.pct(60) { TYPE_NB } else { TYPE_NULL };
        let req = *self.rng.pick(&[0x2900u16, 0x2910, 0x3000, 0x4000, 0x7900]);
        p.answers.push(Record {
            name,
            rr_type,
            rr_class: CLASS_IN,
            ttl: self.rng.range(1, 120) as u32,
            rdata: RData::Wack(req),
        });
        let (src, dst) = self.nbns_response_ends(&h);
        self.nbns_packet("nbns.wack", &p, src, dst)
    }

    fn nbns_node_status_request(&mut self) -> Vec<Generated> {
        let h = self.host();
        let bcast = self.rng.pct(15);
        let mut p = self.packet(if bcast { 0x0010 } else { 0x0000 });
        let name = if self.rng.pct(60) {
            self.scoped(Name::wildcard())
        } else {
            self.nbns_name()
        };
        p.questions.push(self.question(name, TYPE_NBSTAT));
        let port = self.ephemeral_port();
        let to = if bcast {
            h.bcast
        } else {
            self.other_host(&h).ip
        };
        let src = SocketAddrV4::new(h.ip, if self.rng.pct(50) { 137 } else { port });
        let dst = SocketAddrV4::new(to, 137);
        self.nbns_packet("nbns.node_status_request", &p, src, dst)
    }

    fn name_flags(&mut self, group: bool) -> u16 {
        let mut f = 0x0400; // ACT
        if group {
            f |= 0x8000;
        }
        f |= *self.rng.pick(&[0x0000, 0x2000, 0x4000, 0x6000]);
        if self.rng.pct(10) {
            f |= 0x1000; // DRG
        }
        if self.rng.pct(10) {
            f |= 0x0800; // CNF
        }
        if self.rng.pct(10) {
            f |= 0x0200; // PRM
        }
        if self.mixed() && self.rng.pct(5) {
            f ^= 0x0400;
        }
        if self.mixed() && self.rng.pct(5) {
            f |= self.rng.u16() & 0x01FF;
        }
        f
    }

    fn statistics(&mut self) -> Statistics {
        let mut s = Statistics::default();
        if self.rng.pct(30) {
            return s; // Samba zeros everything
        }
        let mac = self.rng.bytes(6);
        s.unit_id.copy_from_slice(&mac);
        s.jumpers = self.rng.u8();
        s.test_result = self.rng.u8();
        s.version_number = self.rng.u16();
        s.period_of_statistics = self.rng.u16();
        s.number_of_crcs = self.rng.u16();
        s.number_alignment_errors = self.rng.u16();
        s.number_of_collisions = self.rng.u16();
        s.number_send_aborts = self.rng.u16();
        s.number_good_sends = self.rng.u32();
        s.number_good_receives = self.rng.u32();
        s.number_retransmits = self.rng.u16();
        s.number_no_resource_conditions = self.rng.u16();
        s.number_free_command_blocks = self.rng.u16();
        s.total_number_command_blocks = self.rng.u16();
        s.max_total_number_command_blocks = self.rng.u16();
        s.number_pending_sessions = self.rng.u16();
        s.max_number_pending_sessions = self.rng.u16();
        s.max_total_sessions_possible = self.rng.u16();
        s.session_data_packet_size = self.rng.u16();
        s
    }

    fn nbns_node_status_response(&mut self) -> Vec<Generated> {
        let h = self.host();
        let flags = *self.rng.pick(&[0x8400, 0x8400, 0x8500, 0x8480]);
        let mut p = self.packet(flags);
        let n = match self.rng.below(10) {
            0 => 0,
            1..=7 => self.rng.range(1, 8) as usize,
            _ => self.rng.range(9, 24) as usize,
        };
        let mut names = Vec::with_capacity(n);
        for i in 0..n {
            let (name, group) = match (i, self.rng.below(10)) {
                (0, _) => (self.name(h.name, 0x00), false),
                (_, 0) => (Name::msbrowse(), true),
                (_, 1) => (self.name(h.group, 0x1E), true),
                (_, 2) => (self.name(h.group, 0x00), true),
                (_, 3) if self.mixed() => {
                    let mut raw = *b"NP\x01\x02name\x7f\xff      ";
                    if self.rng.pct(40) {
                        // Nothing printable: 60 characters as <xx>.
                        for (i, b) in raw.iter_mut().enumerate() {
                            *b = 0x80 + i as u8;
                        }
                    }
                    raw[15] = self.rng.u8();
                    (Name::from_raw(raw), false)
                }
                _ => {
                    let s = *self.rng.pick(SUFFIXES);
                    (self.name(h.name, s), false)
                }
            };
            let flags = self.name_flags(group);
            names.push(NodeName { name, flags });
        }
        let question_name = if self.rng.pct(50) {
            Name::wildcard()
        } else {
            self.name(h.name, 0x00)
        };
        let question_name = self.scoped(question_name);
        p.answers.push(Record {
            name: question_name,
            rr_type: TYPE_NBSTAT,
            rr_class: CLASS_IN,
            ttl: 0,
            rdata: RData::NodeStatus(NodeStatus {
                names,
                statistics: Some(self.statistics()),
                extra: Vec::new(),
            }),
        });
        let (src, dst) = self.nbns_response_ends(&h);
        self.nbns_packet("nbns.node_status_response", &p, src, dst)
    }

    fn nbns_unknown_opcode(&mut self) -> Vec<Generated> {
        let h = self.host();
        let op = *self.rng.pick(&[1u16, 2, 3, 4, 10, 11, 12, 13, 14]);
        let mut p = self.packet(op << 11);
        let name = self.nbns_name();
        p.questions.push(self.question(name, TYPE_NB));
        let (src, dst) = self.nbns_request_ends(&h, false);
        self.nbns_packet("nbns.unknown_opcode", &p, src, dst)
    }

    // -----------------------------------------------------------------------------------------
    // Malformed packets

    /// A well-formed packet to damage: a browser datagram or an NBNS packet.
    fn victim(&mut self) -> Generated {
        let saved = self.mix;
        self.mix = Mix::Realistic; // plain shapes, so the damage is the only oddity
        let mut g = if self.rng.pct(70) {
            match self.rng.below(3) {
                0 => self.host_announcement(),
                1 => self.request_election(),
                _ => self.get_backup_list_response(),
            }
        } else {
            self.nbns_positive_query_response()
        };
        self.mix = saved;
        g.remove(0)
    }

    fn malformed_truncated(&mut self) -> Vec<Generated> {
        let mut g = self.victim();
        let keep = loop {
            let keep = self.rng.range(1, g.payload.len() as u64 - 1) as usize;
            // 82..=85 bytes of a datagram leave 0..3 bytes of user data: not an SMB
            // header at all, so not malformed.
            if g.dst.port() != 138 || !(82..86).contains(&keep) {
                break keep;
            }
        };
        g.payload.truncate(keep);
        g.kind = "malformed.truncated";
        vec![g]
    }

    fn dgm_victim(&mut self) -> Generated {
        loop {
            let g = self.victim();
            if g.dst.port() == 138 {
                return g;
            }
        }
    }

    /// A first-level character outside `A`..`P` in a datagram name (RFC 1001 §14.1).
    fn malformed_bad_first_level(&mut self) -> Vec<Generated> {
        let mut g = self.dgm_victim();
        // Source name at 14, destination name at 48 (no scope in victims).
        let base = if self.rng.pct(50) { 14 } else { 48 };
        let at = base + 1 + self.rng.below(32);
        g.payload[at] = *self.rng.pick(&[b'Z', b'a', b'0', b'Q', b'@', b' ', 0x00]);
        g.kind = "malformed.bad_first_level";
        vec![g]
    }

    /// A compression pointer as a datagram name (forbidden by RFC 1002 §4.1).
    fn malformed_pointer_name(&mut self) -> Vec<Generated> {
        let mut g = self.dgm_victim();
        // Replace the destination name (34 bytes at 48) by a pointer to the source name.
        let mut p = g.payload[..48].to_vec();
        p.extend_from_slice(&[0xC0, 0x0E]);
        p.extend_from_slice(&g.payload[82..]);
        let len = (p.len() - 14) as u16;
        p[10..12].copy_from_slice(&len.to_be_bytes());
        g.payload = p;
        g.kind = "malformed.pointer_name";
        vec![g]
    }

    /// A MSG_TYPE outside 0x10..=0x16.
    fn malformed_bad_msg_type(&mut self) -> Vec<Generated> {
        let mut g = self.dgm_victim();
        g.payload[0] = *self
            .rng
            .pick(&[0x00, 0x0F, 0x17, 0x18, 0x20, 0x80, 0xDE, 0xFF]);
        if self.rng.pct(30) {
            let n = self.rng.range(1, 20) as usize;
            g.payload = std::iter::once(g.payload[0])
                .chain(self.rng.bytes(n))
                .collect();
        }
        g.kind = "malformed.bad_msg_type";
        vec![g]
    }

    /// A first label that is not 32 bytes, or a reserved label type (RFC 1002 §4.1).
    fn malformed_bad_label(&mut self) -> Vec<Generated> {
        let mut g = self.dgm_victim();
        let at = if self.rng.pct(50) { 14 } else { 48 };
        g.payload[at] = *self.rng.pick(&[0x10, 0x21, 0x1F, 0x40, 0x80, 0x00]);
        g.kind = "malformed.bad_label";
        vec![g]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::record::{Meta, Protocol, Record as View};
    use nbdgm_wire::payload::{self, Payload};
    use std::collections::{BTreeMap, BTreeSet};

    fn corpus(n: usize, seed: u64, mix: Mix) -> Vec<Generated> {
        generate(n, seed, mix).collect()
    }

    #[test]
    fn deterministic() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        assert_eq!(
            write_pcap(&mut a, generate(2000, 7, Mix::Mixed)).unwrap(),
            2000
        );
        assert_eq!(
            write_pcap(&mut b, generate(2000, 7, Mix::Mixed)).unwrap(),
            2000
        );
        assert_eq!(a, b);
        let mut c = Vec::new();
        write_pcap(&mut c, generate(2000, 8, Mix::Mixed)).unwrap();
        assert_ne!(a, c);
        // A prefix of a longer corpus is the shorter corpus.
        let long = corpus(3000, 7, Mix::Mixed);
        assert_eq!(&long[..2000], &corpus(2000, 7, Mix::Mixed)[..]);
        assert_eq!(
            corpus(500, 3, Mix::Realistic),
            corpus(500, 3, Mix::Realistic)
        );
    }

    #[test]
    fn exact_count() {
        for n in [0, 1, 2, 3, 17, 1000] {
            assert_eq!(generate(n, 5, Mix::Mixed).count(), n);
        }
    }

    /// Checks the pcap framing and both checksums of every frame.
    #[test]
    fn pcap_framing_and_checksums() {
        let packets = corpus(500, 11, Mix::Mixed);
        let mut file = Vec::new();
        write_pcap(&mut file, packets.clone().into_iter()).unwrap();
        assert_eq!(&file[..4], &[0xD4, 0xC3, 0xB2, 0xA1]);
        assert_eq!(u32::from_le_bytes(file[20..24].try_into().unwrap()), 1);
        let mut pos = 24;
        let mut last_ts = 0u64;
        for p in &packets {
            let sec = u32::from_le_bytes(file[pos..pos + 4].try_into().unwrap());
            let usec = u32::from_le_bytes(file[pos + 4..pos + 8].try_into().unwrap());
            let len = u32::from_le_bytes(file[pos + 8..pos + 12].try_into().unwrap()) as usize;
            let ts = u64::from(sec) * 1_000_000 + u64::from(usec);
            assert!(usec < 1_000_000 && ts > last_ts);
            last_ts = ts;
            let f = &file[pos + 16..pos + 16 + len];
            assert_eq!(&f[12..14], &[0x08, 0x00]);
            let ip = &f[14..34];
            assert_eq!(ones_sum(0, ip), 0xFFFF, "IPv4 header checksum");
            let udp = &f[34..];
            assert_eq!(udp.len(), 8 + p.payload.len());
            let mut pseudo = [0u8; 12];
            pseudo[0..8].copy_from_slice(&ip[12..20]);
            pseudo[9] = 17;
            pseudo[10..12].copy_from_slice(&(udp.len() as u16).to_be_bytes());
            assert_eq!(ones_sum(ones_sum(0, &pseudo), udp), 0xFFFF, "UDP checksum");
            assert_eq!(&udp[8..], &p.payload[..]);
            pos += 16 + len;
        }
        assert_eq!(pos, file.len());
    }

    fn decode(p: &Generated) -> View {
        let meta = Meta {
            frame: 1,
            time: String::new(),
            time_epoch: 0.0,
            src: p.src.into(),
            dst: p.dst.into(),
        };
        let proto = Protocol::guess(p.src.port(), p.dst.port(), &p.payload);
        View::decode(meta, proto, &p.payload)
    }

    /// Every well-formed packet parses and re-emits byte for byte, layer by layer; every
    /// malformed one is reported malformed by the decode view.
    #[test]
    fn round_trip() {
        for mix in [Mix::Mixed, Mix::Realistic] {
            for p in generate(10_000, 1, mix) {
                let view = decode(&p);
                if p.is_malformed() {
                    assert!(
                        view.malformed.is_some(),
                        "{} not malformed: {view:?}",
                        p.kind
                    );
                    continue;
                }
                assert!(
                    view.malformed.is_none(),
                    "{}: {:?} {}",
                    p.kind,
                    view.malformed,
                    nbdgm_wire::hex::encode(&p.payload)
                );
                if p.dst.port() == 137 || p.src.port() == 137 {
                    let pkt = Packet::parse(&p.payload).unwrap();
                    assert_eq!(pkt.to_bytes().unwrap(), p.payload, "{}", p.kind);
                    continue;
                }
                let d = Datagram::parse(&p.payload).unwrap();
                assert_eq!(d.to_bytes().unwrap(), p.payload, "{}", p.kind);
                let Some(ud) = d.user_data() else { continue };
                if d.flags.more || !ud.starts_with(&mailslot::SMB_MAGIC) {
                    continue;
                }
                let w = MailslotWrite::parse(ud).unwrap();
                assert_eq!(w.to_bytes().unwrap(), ud, "{}", p.kind);
                let again = match payload::parse(&w.name, &w.data).unwrap() {
                    None => continue,
                    Some(Payload::Browser(f)) => f.to_bytes(),
                    Some(Payload::Lanman(f)) => f.to_bytes(),
                    Some(Payload::Netlogon(m)) => m.to_bytes(),
                    Some(Payload::Messenger(m)) => m.to_bytes(),
                };
                assert_eq!(again.unwrap(), w.data, "{}", p.kind);
            }
        }
    }

    /// Over 10,000 packets every kind and every variation appears many times.
    #[test]
    fn coverage() {
        let packets = corpus(10_000, 1, Mix::Mixed);
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        let mut features: BTreeMap<String, usize> = BTreeMap::new();
        let mut feat = |s: String| *features.entry(s).or_default() += 1;
        for p in &packets {
            *kinds.entry(p.kind).or_default() += 1;
            if p.is_malformed() {
                continue;
            }
            let v = decode(p);
            if let Some(n) = &v.nbns {
                feat(format!("nbns.opcode.{}", n.opcode));
                feat(format!("nbns.kind.{}", n.kind));
                feat(format!("nbns.broadcast.{}", n.broadcast));
                for q in &n.questions {
                    feat(format!("nbns.qtype.{}", q.qtype));
                }
                for r in n.answers.iter().chain(&n.additional) {
                    if let Some(ns) = &r.node_status {
                        feat(format!("nbns.node_status.names.{}", ns.names.len().min(9)));
                    }
                }
                continue;
            }
            let d = Datagram::parse(&p.payload).unwrap();
            feat(format!("dgm.type.{:02x}", d.msg_type.code()));
            feat(format!("dgm.flags.{:x}", d.flags.to_byte() & 0x0F));
            if d.flags.reserved != 0 {
                feat("dgm.flags.reserved".into());
            }
            if let Body::Error { code } = d.body {
                feat(match code {
                    0x82..=0x84 => format!("dgm.error.{code:02x}"),
                    _ => "dgm.error.unknown".into(),
                });
            }
            for n in [d.source_name(), d.destination_name()]
                .into_iter()
                .flatten()
            {
                if !n.scope().is_empty() {
                    feat("name.scope".into());
                }
                if n.encoded_len() >= 250 {
                    feat("name.long_scope".into());
                }
                if n.is_wildcard() {
                    feat("name.wildcard".into());
                }
                if *n == Name::msbrowse() {
                    feat("name.msbrowse".into());
                }
                if n.raw()[..15]
                    .iter()
                    .any(|&b| !(0x20..0x7F).contains(&b) && b != 0)
                {
                    feat("name.non_printable".into());
                }
                feat(format!("name.suffix.{:02x}", n.suffix()));
            }
            let mismatch = v.warnings.iter().any(|w| w.contains("DGM_LENGTH"));
            if mismatch {
                feat("dgm.length_wrong".into());
            }
            if let Some(m) = &v.mailslot {
                let w = MailslotWrite::parse(d.user_data().unwrap()).unwrap();
                feat(format!("mailslot.padded.{}", !w.padding.is_empty()));
                if m.priority > 1 {
                    feat("mailslot.priority_odd".into());
                }
                if m.class != 2 {
                    feat("mailslot.class_odd".into());
                }
            }
            if let Some(b) = &v.browser {
                feat(format!("browser.{:02x}.{}", b.command_code, b.command));
            }
            if let Some(n) = &v.netlogon {
                feat(format!("netlogon.{}", n.command));
            }
            if v.messenger.is_some() {
                feat("messenger".into());
            }
        }
        for (k, n) in &kinds {
            assert!(*n >= 20, "kind {k} only {n} times");
        }
        let expect_kinds = [
            "browser.host_announcement",
            "browser.local_master_announcement",
            "browser.announcement_request",
            "browser.request_election",
            "browser.get_backup_list_request",
            "browser.get_backup_list_response",
            "browser.become_backup",
            "browser.domain_announcement",
            "browser.master_announcement",
            "browser.reset_state_request",
            "browser.unknown_opcode",
            "lanman.announcement",
            "lanman.browse_layout",
            "netlogon.primary_query",
            "netlogon.primary_response",
            "netlogon.sam_logon_request",
            "netlogon.sam_logon_response",
            "messenger",
            "mailslot.other",
            "dgm.non_smb_data",
            "dgm.empty_user_data",
            "dgm.fragment_first",
            "dgm.fragment_middle",
            "dgm.fragment_last",
            "dgm.error",
            "dgm.query_request",
            "dgm.positive_query_response",
            "dgm.negative_query_response",
            "nbns.query_request",
            "nbns.positive_query_response",
            "nbns.negative_query_response",
            "nbns.registration_request",
            "nbns.overwrite_demand",
            "nbns.multihomed_registration",
            "nbns.positive_registration_response",
            "nbns.negative_registration_response",
            "nbns.conflict_demand",
            "nbns.release_request",
            "nbns.release_response",
            "nbns.refresh_request",
            "nbns.wack",
            "nbns.node_status_request",
            "nbns.node_status_response",
            "nbns.unknown_opcode",
            "malformed.truncated",
            "malformed.bad_first_level",
            "malformed.pointer_name",
            "malformed.bad_msg_type",
            "malformed.bad_label",
        ];
        for k in expect_kinds {
            assert!(kinds.contains_key(k), "kind {k} missing");
        }
        let mut expect: BTreeSet<String> = BTreeSet::new();
        for t in 0x10..=0x16 {
            expect.insert(format!("dgm.type.{t:02x}"));
        }
        for f in 0..16 {
            expect.insert(format!("dgm.flags.{f:x}"));
        }
        for s in [0x00, 0x03, 0x20, 0x1B, 0x1C, 0x1D, 0x1E, 0x01] {
            expect.insert(format!("name.suffix.{s:02x}"));
        }
        for c in ["82", "83", "84", "unknown"] {
            expect.insert(format!("dgm.error.{c}"));
        }
        for (op, name) in [
            (0x01, "HostAnnouncement"),
            (0x02, "AnnouncementRequest"),
            (0x08, "RequestElection"),
            (0x09, "GetBackupListRequest"),
            (0x0a, "GetBackupListResponse"),
            (0x0b, "BecomeBackup"),
            (0x0c, "DomainAnnouncement"),
            (0x0d, "MasterAnnouncement"),
            (0x0e, "ResetStateRequest"),
            (0x0f, "LocalMasterAnnouncement"),
        ] {
            expect.insert(format!("browser.{op:02x}.{name}"));
        }
        for op in [0, 5, 6, 7, 8, 9, 15] {
            expect.insert(format!("nbns.opcode.{op}"));
        }
        for s in [
            "dgm.flags.reserved",
            "name.scope",
            "name.long_scope",
            "name.wildcard",
            "name.msbrowse",
            "name.non_printable",
            "dgm.length_wrong",
            "mailslot.padded.true",
            "mailslot.padded.false",
            "mailslot.priority_odd",
            "mailslot.class_odd",
            "browser.01.LanmanAnnouncement",
            "netlogon.LOGON_PRIMARY_QUERY",
            "netlogon.LOGON_PRIMARY_RESPONSE",
            "netlogon.LOGON_SAM_LOGON_REQUEST",
            "messenger",
            "nbns.broadcast.true",
            "nbns.broadcast.false",
            "nbns.qtype.32",
            "nbns.qtype.33",
            "nbns.node_status.names.0",
            "nbns.node_status.names.9",
            "nbns.kind.NODE STATUS RESPONSE",
            "nbns.kind.NEGATIVE NAME QUERY RESPONSE",
            "nbns.kind.NAME CONFLICT DEMAND",
            "nbns.kind.WAIT FOR ACKNOWLEDGEMENT RESPONSE",
        ] {
            expect.insert(s.into());
        }
        let missing: Vec<_> = expect
            .iter()
            .filter(|e| !features.contains_key(e.as_str()))
            .collect();
        assert!(missing.is_empty(), "missing features: {missing:?}");
        let rare: Vec<_> = expect
            .iter()
            .filter(|e| features.get(e.as_str()).copied().unwrap_or(0) < 5)
            .collect();
        assert!(
            rare.is_empty(),
            "features seen fewer than 5 times: {rare:?}"
        );
        let malformed = packets.iter().filter(|p| p.is_malformed()).count();
        assert!((100..=800).contains(&malformed), "{malformed} malformed");
    }

    #[test]
    fn realistic_is_mostly_host_announcements() {
        let packets = corpus(10_000, 1, Mix::Realistic);
        let ha = packets
            .iter()
            .filter(|p| p.kind == "browser.host_announcement")
            .count();
        assert!((6_500..=7_500).contains(&ha), "{ha}");
        assert!(packets.iter().all(|p| !p.is_malformed()));
    }
}
