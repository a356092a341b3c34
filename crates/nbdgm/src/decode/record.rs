//! One decoded UDP datagram as the `decode` command reports it. The serde field
//! names here are the JSON contract documented in `docs/json-schema.md`.

use nbdgm_wire::browser::{server_type_names, BrowserFrame, LanmanFrame};
use nbdgm_wire::datagram::{self, Body, DataBody, Datagram, Flags};
use nbdgm_wire::mailslot::MailslotWrite;
use nbdgm_wire::messenger::Message;
use nbdgm_wire::name::Name;
use nbdgm_wire::nbns;
use nbdgm_wire::netlogon::NetlogonMessage;
use nbdgm_wire::payload::{self, Payload};
use serde::Serialize;
use std::net::SocketAddr;

/// Which decoder a UDP datagram goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Nbdgm,
    Nbns,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Nbdgm => "nbdgm",
            Protocol::Nbns => "nbns",
        }
    }

    /// Destination port first, then source: 138 is the datagram service, 137 the name
    /// service. For other ports (added with `--port`) the first byte decides: 0x10–0x16
    /// is a datagram MSG_TYPE, anything else is taken as a name-service packet.
    pub fn guess(src_port: u16, dst_port: u16, payload: &[u8]) -> Protocol {
        for p in [dst_port, src_port] {
            match p {
                datagram::DGM_PORT => return Protocol::Nbdgm,
                nbns::NS_PORT => return Protocol::Nbns,
                _ => {}
            }
        }
        match payload.first() {
            Some(0x10..=0x16) => Protocol::Nbdgm,
            _ => Protocol::Nbns,
        }
    }
}

/// `{name, suffix, scope}`.
#[derive(Debug, Clone, Serialize)]
pub struct NameView {
    pub name: String,
    pub suffix: u8,
    pub scope: String,
}

impl From<&Name> for NameView {
    fn from(n: &Name) -> Self {
        NameView {
            name: n.name(),
            suffix: n.suffix(),
            scope: n.scope().to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DgmView {
    pub type_code: u8,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub flags: Flags,
    pub id: u16,
    pub source_ip: String,
    pub source_port: u16,
    pub length: Option<u16>,
    pub offset: Option<u16>,
    pub source_name: Option<NameView>,
    pub destination_name: Option<NameView>,
    pub error_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data_len: Option<usize>,
    /// Raw bytes of a non-first fragment (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment_data: Option<String>,
}

impl DgmView {
    pub fn new<T: AsRef<[u8]>>(d: &Datagram<T>) -> Self {
        let (length, offset) = match &d.body {
            Body::Data { offset, .. } => (d.dgm_length(), Some(*offset)),
            _ => (None, None),
        };
        let error_code = match d.body {
            Body::Error { code } => Some(code),
            _ => None,
        };
        DgmView {
            type_code: d.msg_type.code(),
            kind: d.msg_type.name(),
            flags: d.flags,
            id: d.id,
            source_ip: {
                let mut s = String::with_capacity(15);
                push_ipv4(&mut s, d.source_ip);
                s
            },
            source_port: d.source_port,
            length,
            offset,
            source_name: d.source_name().map(NameView::from),
            destination_name: d.destination_name().map(NameView::from),
            error_code,
            error: error_code.and_then(datagram::error_code_name),
            user_data_len: d.user_data().map(<[u8]>::len),
            fragment_data: match &d.body {
                Body::Data {
                    body: DataBody::Continuation { data },
                    ..
                } => Some(nbdgm_wire::hex::encode(data.as_ref())),
                _ => None,
            },
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MailslotView {
    pub name: String,
    pub opcode: u16,
    pub priority: u16,
    pub class: u16,
    pub timeout: u32,
    pub data_offset: usize,
    pub data_len: usize,
}

impl<B: AsRef<[u8]>> From<&MailslotWrite<B>> for MailslotView {
    fn from(w: &MailslotWrite<B>) -> Self {
        MailslotView {
            name: w.name.clone(),
            opcode: w.opcode,
            priority: w.priority,
            class: w.class,
            timeout: w.timeout,
            data_offset: w.data_offset(),
            data_len: w.data.as_ref().len(),
        }
    }
}

/// `{command_code, command, server_type_names?, ...frame fields}`.
#[derive(Debug, Clone, Serialize)]
pub struct BrowserView {
    pub command_code: u8,
    pub command: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_type_names: Option<Vec<&'static str>>,
    #[serde(flatten)]
    pub frame: BrowserPayload,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum BrowserPayload {
    Browse(BrowserFrame),
    Lanman(LanmanFrame),
}

#[derive(Debug, Clone, Serialize)]
pub struct NetlogonView {
    pub opcode: u16,
    pub command: &'static str,
    #[serde(flatten)]
    pub message: NetlogonMessage,
}

/// Name-service packet view.
#[derive(Debug, Clone, Serialize)]
pub struct NbnsView {
    pub id: u16,
    pub flags: u16,
    pub response: bool,
    pub opcode: u8,
    pub opcode_name: &'static str,
    pub kind: &'static str,
    pub authoritative: bool,
    pub truncated: bool,
    pub recursion_desired: bool,
    pub recursion_available: bool,
    pub broadcast: bool,
    pub rcode: u8,
    pub rcode_name: &'static str,
    pub questions: Vec<QuestionView>,
    pub answers: Vec<RecordView>,
    pub authority: Vec<RecordView>,
    pub additional: Vec<RecordView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailing: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuestionView {
    pub name: NameView,
    #[serde(rename = "type")]
    pub qtype: u16,
    pub class: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordView {
    pub name: NameView,
    #[serde(rename = "type")]
    pub rr_type: u16,
    pub class: u16,
    pub ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<AddressView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_status: Option<NodeStatusView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wack_flags: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdata: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AddressView {
    pub ip: String,
    pub group: bool,
    pub node_type: &'static str,
    pub flags: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeStatusView {
    pub names: Vec<NodeNameView>,
    pub unit_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistics: Option<StatisticsView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeNameView {
    pub name: String,
    pub suffix: u8,
    pub group: bool,
    pub node_type: &'static str,
    pub deregistering: bool,
    pub conflict: bool,
    pub active: bool,
    pub permanent: bool,
    pub flags: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatisticsView {
    pub jumpers: u8,
    pub test_result: u8,
    pub version_number: u16,
    pub period_of_statistics: u16,
    pub number_good_sends: u32,
    pub number_good_receives: u32,
    pub session_data_packet_size: u16,
}

impl NbnsView {
    pub fn new(p: &nbns::Packet) -> Self {
        let recs = |v: &[nbns::Record]| v.iter().map(RecordView::new).collect();
        NbnsView {
            id: p.id,
            flags: p.flags,
            response: p.is_response(),
            opcode: p.opcode().bits(),
            opcode_name: p.opcode().name(),
            kind: p.kind(),
            authoritative: p.flags & nbns::FLAG_AA != 0,
            truncated: p.flags & nbns::FLAG_TC != 0,
            recursion_desired: p.flags & nbns::FLAG_RD != 0,
            recursion_available: p.flags & nbns::FLAG_RA != 0,
            broadcast: p.is_broadcast(),
            rcode: p.rcode(),
            rcode_name: nbns::rcode_name(p.rcode()),
            questions: p
                .questions
                .iter()
                .map(|q| QuestionView {
                    name: NameView::from(&q.name),
                    qtype: q.qtype,
                    class: q.qclass,
                })
                .collect(),
            answers: recs(&p.answers),
            authority: recs(&p.authority),
            additional: recs(&p.additional),
            trailing: (!p.trailing.is_empty()).then(|| nbdgm_wire::hex::encode(&p.trailing)),
        }
    }
}

impl RecordView {
    fn new(r: &nbns::Record) -> Self {
        let mut v = RecordView {
            name: NameView::from(&r.name),
            rr_type: r.rr_type,
            class: r.rr_class,
            ttl: r.ttl,
            addresses: None,
            node_status: None,
            wack_flags: None,
            rdata: None,
        };
        match &r.rdata {
            nbns::RData::Nb(a) => {
                v.addresses = Some(
                    a.iter()
                        .map(|a| AddressView {
                            ip: a.ip.to_string(),
                            group: a.is_group(),
                            node_type: nbns::ont_name(a.flags),
                            flags: a.flags,
                        })
                        .collect(),
                )
            }
            nbns::RData::NodeStatus(ns) => {
                v.node_status = Some(NodeStatusView {
                    names: ns
                        .names
                        .iter()
                        .map(|n| NodeNameView {
                            name: n.name.name(),
                            suffix: n.name.suffix(),
                            group: n.flags & nbns::NB_GROUP != 0,
                            node_type: nbns::ont_name(n.flags),
                            deregistering: n.flags & nbns::NAME_DRG != 0,
                            conflict: n.flags & nbns::NAME_CNF != 0,
                            active: n.flags & nbns::NAME_ACT != 0,
                            permanent: n.flags & nbns::NAME_PRM != 0,
                            flags: n.flags,
                        })
                        .collect(),
                    unit_id: ns.statistics.as_ref().map(|s| mac(&s.unit_id)),
                    statistics: ns.statistics.as_ref().map(|s| StatisticsView {
                        jumpers: s.jumpers,
                        test_result: s.test_result,
                        version_number: s.version_number,
                        period_of_statistics: s.period_of_statistics,
                        number_good_sends: s.number_good_sends,
                        number_good_receives: s.number_good_receives,
                        session_data_packet_size: s.session_data_packet_size,
                    }),
                })
            }
            nbns::RData::Wack(f) => v.wack_flags = Some(*f),
            nbns::RData::Raw(b) => v.rdata = Some(nbdgm_wire::hex::encode(b)),
        }
        v
    }
}

/// `ip:port` (`[ip]:port` for IPv6), formatted by hand for IPv4: this runs twice per packet.
fn addr_string(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => {
            let mut s = String::with_capacity(21);
            push_ipv4(&mut s, *v4.ip());
            s.push(':');
            push_decimal(&mut s, u32::from(v4.port()));
            s
        }
        SocketAddr::V6(_) => a.to_string(),
    }
}

fn push_ipv4(s: &mut String, ip: std::net::Ipv4Addr) {
    for (i, o) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        push_decimal(s, u32::from(o));
    }
}

fn push_decimal(s: &mut String, v: u32) {
    let mut digits = [0u8; 10];
    let mut n = v;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        s.push(char::from(d));
    }
}

fn mac(b: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}

/// Everything known about one UDP datagram.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub frame: u64,
    pub time: String,
    pub time_epoch: f64,
    pub src: String,
    pub dst: String,
    pub protocol: Protocol,
    pub warnings: Vec<String>,
    pub malformed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbdgm: Option<DgmView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbns: Option<NbnsView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailslot: Option<MailslotView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netlogon: Option<NetlogonView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messenger: Option<Message>,
    /// User data that is not a mailslot write, or mailslot data of an unknown slot (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// Where and when a datagram was seen.
#[derive(Debug, Clone)]
pub struct Meta {
    pub frame: u64,
    pub time: String,
    pub time_epoch: f64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

impl Record {
    /// Decode one UDP payload. Never fails: a packet that cannot be decoded is reported
    /// through `malformed`, with every layer decoded before the damage kept.
    pub fn decode(meta: Meta, protocol: Protocol, payload: &[u8]) -> Record {
        let mut rec = Record::empty(meta, protocol);
        match protocol {
            Protocol::Nbns => match nbns::Packet::parse(payload) {
                Ok(p) => {
                    if !p.trailing.is_empty() {
                        rec.warnings
                            .push(format!("{} bytes after the last record", p.trailing.len()));
                    }
                    rec.nbns = Some(NbnsView::new(&p));
                }
                Err(e) => rec.malformed = Some(format!("name service: {e}")),
            },
            Protocol::Nbdgm => rec.decode_datagram(payload),
        }
        rec
    }

    /// A datagram already in memory (parsed, or built from what a node delivered): the
    /// layers [`Record::decode`] shows after its datagram parse, by the same code.
    pub fn from_datagram<T: AsRef<[u8]>>(meta: Meta, d: &Datagram<T>) -> Record {
        let mut rec = Record::empty(meta, Protocol::Nbdgm);
        rec.datagram_layers(d);
        rec
    }

    /// Where and when, with no layer decoded yet.
    fn empty(meta: Meta, protocol: Protocol) -> Record {
        Record {
            frame: meta.frame,
            time: meta.time,
            time_epoch: meta.time_epoch,
            src: addr_string(&meta.src),
            dst: addr_string(&meta.dst),
            protocol,
            warnings: Vec::new(),
            malformed: None,
            nbdgm: None,
            nbns: None,
            mailslot: None,
            browser: None,
            netlogon: None,
            messenger: None,
            data: None,
        }
    }

    fn decode_datagram(&mut self, payload: &[u8]) {
        let mut warnings = Vec::new();
        let d = match Datagram::parse_ref(payload, &mut warnings) {
            Ok(d) => d,
            Err(e) => {
                self.malformed = Some(format!("datagram: {e}"));
                return;
            }
        };
        self.warnings
            .extend(warnings.iter().map(ToString::to_string));
        self.datagram_layers(&d);
    }

    /// The header view, then the user data: mailslot write and its payload, or hex.
    fn datagram_layers<T: AsRef<[u8]>>(&mut self, d: &Datagram<T>) {
        self.nbdgm = Some(DgmView::new(d));
        let Some(user_data) = d.user_data() else {
            return;
        };
        if d.flags.more {
            // First fragment: the user data is incomplete, so leave it undecoded.
            self.data = Some(nbdgm_wire::hex::encode(user_data));
            return;
        }
        if user_data.is_empty() {
            return;
        }
        let w = match MailslotWrite::parse_ref(user_data) {
            Ok(w) => w,
            Err(e) => {
                if user_data.starts_with(&nbdgm_wire::mailslot::SMB_MAGIC) {
                    self.malformed = Some(format!("mailslot: {e}"));
                } else {
                    self.warnings
                        .push("user data is not an SMB mailslot write".to_owned());
                }
                self.data = Some(nbdgm_wire::hex::encode(user_data));
                return;
            }
        };
        self.mailslot = Some(MailslotView::from(&w));
        if w.opcode != nbdgm_wire::mailslot::OPCODE_WRITE {
            self.warnings
                .push(format!("mailslot opcode {} is not a write (1)", w.opcode));
        }
        match payload::parse(&w.name, w.data) {
            Ok(Some(Payload::Browser(f))) => {
                self.warn_unterminated_name(&f);
                self.browser = Some(BrowserView {
                    command_code: f.command_code(),
                    command: f.command(),
                    server_type_names: browser_server_type(&f).map(server_type_names),
                    frame: BrowserPayload::Browse(f),
                })
            }
            Ok(Some(Payload::Lanman(f))) => {
                if let LanmanFrame::Browser(b) = &f {
                    self.warn_unterminated_name(b);
                }
                let server_type = match &f {
                    LanmanFrame::Announcement(a) => Some(a.server_type),
                    LanmanFrame::Browser(b) => browser_server_type(b),
                    LanmanFrame::Unknown(_) => None,
                };
                self.browser = Some(BrowserView {
                    command_code: f.command_code(),
                    command: f.command(),
                    server_type_names: server_type.map(server_type_names),
                    frame: BrowserPayload::Lanman(f),
                })
            }
            Ok(Some(Payload::Netlogon(m))) => {
                self.netlogon = Some(NetlogonView {
                    opcode: m.opcode(),
                    command: m.command(),
                    message: m,
                })
            }
            Ok(Some(Payload::Messenger(m))) => self.messenger = Some(m),
            Ok(None) => self.data = Some(nbdgm_wire::hex::encode(w.data)),
            Err(e) => {
                self.malformed = Some(format!("{}: {e}", w.name));
                self.data = Some(nbdgm_wire::hex::encode(w.data));
            }
        }
    }
}

impl Record {
    /// A 16-byte ServerName/MachineGroup with no NUL: accepted (as nmbd does; docs/peers.md)
    /// with this warning.
    fn warn_unterminated_name(&mut self, f: &BrowserFrame) {
        let field = match f {
            BrowserFrame::HostAnnouncement(a) | BrowserFrame::LocalMasterAnnouncement(a)
                if a.server_name_unterminated =>
            {
                "ServerName"
            }
            BrowserFrame::DomainAnnouncement(d) if d.machine_group_unterminated => "MachineGroup",
            _ => return,
        };
        self.warnings.push(format!(
            "{field} fills its 16-byte field with no NUL terminator (accepted, as nmbd does)"
        ));
    }
}

fn browser_server_type(f: &BrowserFrame) -> Option<u32> {
    match f {
        BrowserFrame::HostAnnouncement(a) | BrowserFrame::LocalMasterAnnouncement(a) => {
            Some(a.server_type)
        }
        BrowserFrame::DomainAnnouncement(d) => Some(d.server_type),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_formatting_matches_std() {
        for a in [
            "0.0.0.0:0",
            "192.168.1.255:138",
            "255.255.255.255:65535",
            "10.0.0.1:1",
            "[2001:db8::1]:138",
        ] {
            let sa: SocketAddr = a.parse().unwrap();
            assert_eq!(addr_string(&sa), sa.to_string());
        }
        let mut s = String::new();
        push_ipv4(&mut s, std::net::Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(s, "198.51.100.7");
    }
}
