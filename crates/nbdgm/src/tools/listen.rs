//! `nbdgm listen`: print the datagrams that arrive, decoded by the codec (RFC 1002
//! §5.3.3 receive; MS-MAIL, MS-BRWS and the other payloads through `decode`).

use super::events::{self, Arrival, StopArgs};
use super::{NetArgs, ToolError};
use crate::decode::record::{Meta, Protocol, Record};
use crate::decode::text;
use crate::exit;
use clap::Args;
use nbdgm_client::proto::Subscription;
use nbdgm_wire::datagram::{Datagram, NodeType};
use nbdgm_wire::Name;
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::SystemTime;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm listen                                     # everything for our names and `*`\n  \
    nbdgm listen --mailslot '\\MAILSLOT\\BROWSE' --all  # browser traffic to any name\n  \
    nbdgm listen --name 'APP<2a>' --format ndjson --count 10 --timeout 30s\n  \
    sudo nbdgm listen --standalone --interface 198.51.100.20/24\n\n\
Standalone, it binds UDP 138 (root or CAP_NET_BIND_SERVICE, or --port) and shows every\n\
datagram that reaches it, marked [broadcast] or [unicast] by the destination address of\n\
its IP header. It holds no name, and answers a datagram sent by unicast as DIRECT_UNIQUE\n\
to any name but --name with DATAGRAM ERROR 0x82 (destination name not present, RFC 1002\n\
§4.4.3), as a node does; never one sent by broadcast. Answers pass the reply gate of\n\
`nbdgm serve` with its [limits] defaults (50 a second per source, bursts of 100, bytes\n\
out at most 4 x bytes in); a count of answers sent and refused goes to stderr at exit.\n\
With --daemon, --interface keeps the datagrams that arrived on that interface. Exit\n\
codes: 0 ok (count reached or stopped), 1 nothing arrived before --timeout, 2 usage or\n\
network error. User data that is not a mailslot write is previewed, escaped:\n\
data(5 bytes)=\"hello\".")]
pub struct ListenArgs {
    /// Only datagrams carrying a mailslot write to this mailslot.
    #[arg(long)]
    pub mailslot: Option<String>,
    /// Only datagrams to this NAME<xx>.
    #[arg(long, value_name = "NAME<xx>")]
    pub name: Option<String>,
    /// Through the daemon: also datagrams not addressed to its names (monitor).
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub stop: StopArgs,
    /// Print every field (text format).
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

/// One received datagram as `listen` prints it.
#[derive(Serialize)]
pub struct Heard {
    pub interface: String,
    pub from: String,
    /// `broadcast` when it was sent to a broadcast (or multicast) address, `unicast`
    /// when to ours (the address is the record's `dst`).
    pub arrival: &'static str,
    pub header_source: String,
    pub for_us: bool,
    pub fragments: u32,
    #[serde(flatten)]
    pub record: Record,
}

pub fn run(args: &ListenArgs) -> u8 {
    match listen(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "nbdgm listen: {}",
                nbdgm_wire::text::Escaped(&e.to_string())
            );
            exit::USAGE
        }
    }
}

/// The datagram as `listen` shows it: built unfragmented from the delivered fields, so
/// that the decoder shows every layer (a reassembled datagram is shown whole).
pub fn heard(n: u64, a: Arrival) -> Heard {
    let v4 = |a: SocketAddr| match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
    };
    let header_source = v4(a.header_source);
    // The header is made up (id 0, flags of a single B-node packet): delivery does not
    // keep the sender's id and flags, and `listen` has always shown these.
    let d = Datagram::data(
        a.msg_type,
        NodeType::B,
        0,
        (*header_source.ip(), header_source.port()),
        a.source,
        a.destination,
        a.data,
    );
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let ts = nbdgm_capture::Timestamp {
        secs: now.as_secs() as i64,
        nanos: now.subsec_nanos(),
    };
    let from = v4(a.from);
    let meta = Meta {
        frame: n,
        time: ts.to_rfc3339_micros(),
        time_epoch: ts.as_f64(),
        src: SocketAddr::V4(from),
        dst: SocketAddr::V4(a.to),
    };
    Heard {
        interface: a.interface.to_string(),
        from: from.to_string(),
        arrival: arrival(a.broadcast),
        header_source: header_source.to_string(),
        for_us: a.for_us,
        fragments: a.fragments,
        record: delivered_record(meta, &d),
    }
}

/// How a datagram arrived, as `listen` shows it.
fn arrival(broadcast: bool) -> &'static str {
    if broadcast {
        "broadcast"
    } else {
        "unicast"
    }
}

/// The record of a delivered datagram, decoded from its fields (no bytes).
fn delivered_record(meta: Meta, d: &Datagram) -> Record {
    let has_wire_form = d.msg_type.is_data() && d.data_section_len() <= usize::from(u16::MAX);
    if !has_wire_form {
        // Not a data type, or a data section longer than DGM_LENGTH can say: `listen`
        // used to emit the datagram and decode the bytes, and the failed emit showed as
        // an empty (malformed) datagram. It still does.
        return Record::decode(meta, Protocol::Nbdgm, &[]);
    }
    Record::from_datagram(meta, d)
}

/// The text line of a datagram (and its field tree with `-v`).
fn text_line(h: &Heard, verbose: bool) -> String {
    let mut line = text::summary(&h.record);
    line.push_str(" [");
    line.push_str(h.arrival);
    line.push(']');
    if h.fragments > 1 {
        line.push_str(&format!(" [reassembled from {} fragments]", h.fragments));
    }
    if !h.for_us {
        line.push_str(" [not for us]");
    }
    if let Some(preview) = data_preview(&h.record) {
        line.push(' ');
        line.push_str(&preview);
    }
    if verbose {
        line.push('\n');
        line.push_str(&text::tree(&h.record));
    }
    line.push('\n');
    line
}

/// Bytes of user data shown in a text line's preview.
const PREVIEW_BYTES: usize = 64;

/// A short preview of user data that is not a mailslot write: `data(N bytes)="text"`,
/// escaped, when it is mostly text, else `data(N bytes)=hex:...`; `...` marks a cut.
fn data_preview(r: &Record) -> Option<String> {
    if r.mailslot.is_some() {
        return None;
    }
    let bytes = nbdgm_wire::hex::decode(r.data.as_deref()?)?;
    if bytes.is_empty() {
        return None;
    }
    let head = &bytes[..bytes.len().min(PREVIEW_BYTES)];
    let cut = if head.len() < bytes.len() { "..." } else { "" };
    let shown = if mostly_text(head) {
        let text = nbdgm_wire::text::escape_bytes(head).replace('"', "\\\"");
        format!("\"{text}\"")
    } else {
        format!("hex:{}", nbdgm_wire::hex::encode(head))
    };
    Some(format!("data({} bytes)={shown}{cut}", bytes.len()))
}

/// True when at most a quarter of `b` is invalid UTF-8 or control characters other
/// than tab and line ends.
fn mostly_text(b: &[u8]) -> bool {
    let odd: usize = b
        .utf8_chunks()
        .map(|chunk| {
            let controls = chunk
                .valid()
                .chars()
                .filter(|&c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
                .count();
            controls + chunk.invalid().len()
        })
        .sum();
    odd * 4 <= b.len()
}

fn listen(args: &ListenArgs) -> Result<u8, ToolError> {
    if let Some(n) = &args.name {
        n.parse::<Name>()
            .map_err(|e| ToolError::bad("--name", n, e))?;
    }
    let subscription = Subscription {
        name: args.name.clone(),
        mailslot: args.mailslot.clone(),
        all: args.all,
    };
    // Standalone, a unicast DIRECT_UNIQUE to a name other than --name gets DATAGRAM
    // ERROR (through the reply gate: per-source rate, bytes out <= factor x bytes in).
    events::stream(
        "listen",
        subscription,
        true,
        &args.stop,
        &args.net,
        |printer, a| {
            let h = heard(printer.seen + 1, a);
            printer.print(&h, || text_line(&h, args.verbose));
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_wire::browser::{Announcement, BrowserFrame};
    use nbdgm_wire::datagram::MsgType;
    use nbdgm_wire::mailslot::MailslotWrite;
    use nbdgm_wire::netlogon::{NetlogonMessage, PrimaryQuery};

    fn meta() -> Meta {
        Meta {
            frame: 7,
            time: "2026-01-02T03:04:05.000006Z".to_owned(),
            time_epoch: 1_767_323_045.000_006,
            src: "198.51.100.10:138".parse().unwrap(),
            dst: "198.51.100.255:138".parse().unwrap(),
        }
    }

    fn datagram(msg_type: MsgType, source: Name, destination: Name, data: Vec<u8>) -> Datagram {
        Datagram::data(
            msg_type,
            NodeType::B,
            0,
            (Ipv4Addr::new(198, 51, 100, 10), 138),
            source,
            destination,
            data,
        )
    }

    /// What `listen` printed before: the datagram emitted, then its bytes decoded.
    fn emitted_and_decoded(d: &Datagram) -> Record {
        let bytes = d.to_bytes().unwrap_or_default();
        Record::decode(meta(), Protocol::Nbdgm, &bytes)
    }

    fn assert_same(d: &Datagram) -> Record {
        let (new, old) = (delivered_record(meta(), d), emitted_and_decoded(d));
        assert_eq!(
            serde_json::to_string_pretty(&new).unwrap(),
            serde_json::to_string_pretty(&old).unwrap()
        );
        assert_eq!(text::summary(&new), text::summary(&old));
        assert_eq!(text::tree(&new), text::tree(&old));
        new
    }

    #[test]
    fn delivered_fields_give_the_record_of_the_emitted_bytes() {
        let host = Name::new("WKS01", 0).unwrap();
        let announcement = BrowserFrame::HostAnnouncement(Announcement {
            periodicity_ms: 720_000,
            server_name: "WKS01".to_owned(),
            os_major: 6,
            os_minor: 1,
            server_type: 0x0001_1003,
            comment: "lab".to_owned(),
            ..Announcement::default()
        });
        let browse = MailslotWrite::new("\\MAILSLOT\\BROWSE", announcement.to_bytes().unwrap())
            .to_bytes()
            .unwrap();
        let r = assert_same(&datagram(
            MsgType::DirectGroup,
            host.clone(),
            Name::new("WORKGROUP", 0x1d).unwrap(),
            browse,
        ));
        assert!(r.mailslot.is_some() && r.browser.is_some());
        let query =
            NetlogonMessage::PrimaryQuery(PrimaryQuery::new("WKS01", "\\MAILSLOT\\NET\\GETDC5F3"));
        let netlogon = MailslotWrite::new("\\MAILSLOT\\NET\\NETLOGON", query.to_bytes().unwrap())
            .to_bytes()
            .unwrap();
        let r = assert_same(&datagram(
            MsgType::DirectGroup,
            host.clone(),
            Name::new("TESTGROUP", 0x1c).unwrap(),
            netlogon,
        ));
        assert!(r.netlogon.is_some());
        // Plain user data (not a mailslot write), empty user data, a scope.
        let r = assert_same(&datagram(
            MsgType::DirectUnique,
            host.clone(),
            Name::new("APP", 0x2a)
                .unwrap()
                .with_scope("lab.example")
                .unwrap(),
            b"hello".to_vec(),
        ));
        assert_eq!(r.data.as_deref(), Some("68656c6c6f"));
        assert_same(&datagram(
            MsgType::Broadcast,
            host,
            Name::wildcard(),
            Vec::new(),
        ));
        // A Latin-1 name (É, Ø) as a node delivers it: raw octets, not ASCII.
        let mut raw = [b' '; 16];
        raw[..8].copy_from_slice(b"CAF\xc9 S\xd8R");
        raw[15] = 0x20;
        let r = assert_same(&datagram(
            MsgType::DirectUnique,
            Name::from_raw(raw),
            Name::new("WKS02", 0x03).unwrap(),
            b"\xe9t\xe9".to_vec(),
        ));
        let source = r.nbdgm.and_then(|v| v.source_name).map(|n| n.name);
        assert_eq!(source.as_deref(), Some("CAF<c9> S<d8>R"));
    }

    fn preview_of(data: &[u8]) -> Option<String> {
        let d = datagram(
            MsgType::DirectUnique,
            Name::new("WKS01", 0).unwrap(),
            Name::new("APP", 0x2a).unwrap(),
            data.to_vec(),
        );
        data_preview(&delivered_record(meta(), &d))
    }

    #[test]
    fn user_data_preview_is_short_escaped_text_or_hex() {
        assert_eq!(preview_of(b"hello").unwrap(), "data(5 bytes)=\"hello\"");
        assert_eq!(preview_of(b""), None);
        assert_eq!(
            preview_of(b"\x1b]0;pwned\x07\\ \xff ok").unwrap(),
            "data(16 bytes)=\"\\x1b]0;pwned\\x07\\\\ \\xff ok\""
        );
        assert_eq!(
            preview_of(&[0, 1, 2, 0xfe]).unwrap(),
            "data(4 bytes)=hex:000102fe"
        );
        let long = preview_of(&[b'a'; 100]).unwrap();
        assert_eq!(long, format!("data(100 bytes)=\"{}\"...", "a".repeat(64)));
        // A mailslot write is shown by its own decoder, not as data.
        let write = MailslotWrite::new("\\MAILSLOT\\APP", b"hello".to_vec())
            .to_bytes()
            .unwrap();
        assert_eq!(preview_of(&write), None);
    }

    #[test]
    fn the_arrival_is_shown_in_text_and_json() {
        let a = |broadcast: bool, to: &str| Arrival {
            interface: "198.51.100.20".parse().unwrap(),
            from: "198.51.100.10:138".parse().unwrap(),
            to: to.parse().unwrap(),
            broadcast,
            header_source: "198.51.100.10:138".parse().unwrap(),
            msg_type: MsgType::DirectUnique,
            source: Name::new("WKS01", 0).unwrap(),
            destination: Name::new("APP", 0x2a).unwrap(),
            source_text: "WKS01<00>".to_owned(),
            destination_text: "APP<2a>".to_owned(),
            for_us: false,
            fragments: 1,
            mailslot: None,
            data: b"hi".to_vec(),
        };
        let h = heard(1, a(false, "198.51.100.20:138"));
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["arrival"], "unicast");
        assert_eq!(v["dst"], "198.51.100.20:138");
        let line = text_line(&h, false);
        assert!(
            line.contains(" -> 198.51.100.20:138 ") && line.contains(" [unicast] [not for us] "),
            "{line}"
        );
        let h = heard(2, a(true, "255.255.255.255:138"));
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["arrival"], "broadcast");
        assert_eq!(v["dst"], "255.255.255.255:138");
        assert!(text_line(&h, false).contains(" [broadcast]"));
    }

    #[test]
    fn a_datagram_with_no_wire_form_is_shown_as_before() {
        let d = datagram(
            MsgType::Broadcast,
            Name::new("WKS01", 0).unwrap(),
            Name::wildcard(),
            vec![0; 70_000],
        );
        assert_same(&d);
        assert!(delivered_record(meta(), &d).malformed.is_some());
    }
}
