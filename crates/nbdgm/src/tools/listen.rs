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
datagram that reaches it. With --daemon, --interface keeps the datagrams that arrived on\n\
that interface. Exit codes: 0 ok (count reached or stopped), 1 nothing arrived before\n\
--timeout, 2 usage or network error.")]
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

/// The datagram as `listen` shows it: rebuilt unfragmented from what was delivered, so
/// that the decoder shows every layer (a reassembled datagram is shown whole).
pub fn heard(n: u64, a: Arrival) -> Heard {
    let v4 = |a: SocketAddr| match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
    };
    let header_source = v4(a.header_source);
    let d = Datagram::data(
        a.msg_type,
        NodeType::B,
        0,
        (*header_source.ip(), header_source.port()),
        a.source,
        a.destination,
        a.data,
    );
    let bytes = d.to_bytes().unwrap_or_default();
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
    // The header is rebuilt (id 0, flags of a single B-node packet): the sender's id and
    // flags are not kept by delivery.
    let record = Record::decode(meta, Protocol::Nbdgm, &bytes);
    Heard {
        interface: a.interface.to_string(),
        from: from.to_string(),
        header_source: header_source.to_string(),
        for_us: a.for_us,
        fragments: a.fragments,
        record,
    }
}

/// The text line of a datagram (and its field tree with `-v`).
fn text_line(h: &Heard, verbose: bool) -> String {
    let mut line = text::summary(&h.record);
    if h.fragments > 1 {
        line.push_str(&format!(" [reassembled from {} fragments]", h.fragments));
    }
    if !h.for_us {
        line.push_str(" [not for us]");
    }
    if verbose {
        line.push('\n');
        line.push_str(&text::tree(&h.record));
    }
    line.push('\n');
    line
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
    events::stream(
        "listen",
        subscription,
        &args.stop,
        &args.net,
        |printer, a| {
            let h = heard(printer.seen + 1, a);
            printer.print(&h, || text_line(&h, args.verbose));
        },
    )
}
