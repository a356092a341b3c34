//! `nbdgm listen`: print the datagrams that arrive, decoded by the codec (RFC 1002
//! §5.3.3 receive; MS-MAIL, MS-BRWS and the other payloads through `decode`).

use super::{DaemonArgs, OutFormat, Via};
use crate::decode::record::{Meta, Protocol, Record};
use crate::decode::text;
use crate::exit;
use clap::Args;
use nbdgm_client::proto::{DatagramEvent, Event as ApiEvent, Subscription};
use nbdgm_node::{Event, NodeConfig};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::Name;
use serde::Serialize;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant, SystemTime};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm listen                                     # everything for our names and `*`\n  \
    nbdgm listen --mailslot '\\MAILSLOT\\BROWSE' --all  # browser traffic to any name\n  \
    nbdgm listen --name 'APP<2a>' --format ndjson --count 10\n  \
    sudo nbdgm listen --standalone --interface 198.51.100.20/24\n\n\
Standalone, it binds UDP 138 (root or CAP_NET_BIND_SERVICE, or --port) and shows every\n\
datagram that reaches it. Exit codes: 0 ok (count reached or stopped), 1 nothing arrived\n\
before --timeout-s, 2 usage or network error.")]
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
    /// Stop after this many datagrams.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub timeout_s: Option<f64>,
    /// Print every field (text format).
    #[arg(short, long)]
    pub verbose: bool,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
    /// Standalone: interface IP/PREFIX [default: the first IPv4 interface].
    #[arg(long, value_name = "IP/PREFIX")]
    pub interface: Option<String>,
    /// Standalone: local address to bind (0.0.0.0 also receives broadcasts).
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: String,
    /// Standalone: datagram port.
    #[arg(long, default_value_t = 138)]
    pub port: u16,
    #[command(flatten)]
    pub daemon: DaemonArgs,
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

fn msg_type(s: &str) -> MsgType {
    match s {
        "direct_unique" => MsgType::DirectUnique,
        "broadcast" => MsgType::Broadcast,
        _ => MsgType::DirectGroup,
    }
}

/// Rebuild an unfragmented datagram from what was delivered, so the decoder shows
/// every layer (a reassembled datagram is shown whole).
#[allow(clippy::too_many_arguments)]
fn heard(
    n: u64,
    interface: String,
    from: SocketAddrV4,
    to: SocketAddrV4,
    header_source: SocketAddrV4,
    t: MsgType,
    source: Name,
    destination: Name,
    data: Vec<u8>,
    for_us: bool,
    fragments: u32,
) -> Heard {
    let d = Datagram::data(
        t,
        NodeType::B,
        0,
        (*header_source.ip(), header_source.port()),
        source,
        destination,
        data,
    );
    let bytes = d.to_bytes().unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let ts = nbdgm_capture::Timestamp {
        secs: now.as_secs() as i64,
        nanos: now.subsec_nanos(),
    };
    let meta = Meta {
        frame: n,
        time: ts.to_rfc3339_micros(),
        time_epoch: ts.as_f64(),
        src: SocketAddr::V4(from),
        dst: SocketAddr::V4(to),
    };
    // The header is rebuilt (id 0, flags of a single B-node packet): the sender's id and
    // flags are not kept by delivery.
    let record = Record::decode(meta, Protocol::Nbdgm, &bytes);
    Heard {
        interface,
        from: from.to_string(),
        header_source: header_source.to_string(),
        for_us,
        fragments,
        record,
    }
}

struct Printer {
    format: OutFormat,
    verbose: bool,
    first: bool,
    seen: u64,
}

impl Printer {
    fn print(&mut self, h: &Heard) {
        let mut out = std::io::stdout().lock();
        let _ = match self.format {
            OutFormat::Text => {
                let mut line = text::summary(&h.record);
                if h.fragments > 1 {
                    line.push_str(&format!(" [reassembled from {} fragments]", h.fragments));
                }
                if !h.for_us {
                    line.push_str(" [not for us]");
                }
                if self.verbose {
                    line.push('\n');
                    line.push_str(&text::tree(&h.record));
                }
                writeln!(out, "{line}")
            }
            OutFormat::Ndjson => writeln!(out, "{}", serde_json::to_string(h).unwrap_or_default()),
            OutFormat::Json => {
                let sep = if self.first { "[\n" } else { ",\n" };
                self.first = false;
                write!(
                    out,
                    "{sep}{}",
                    serde_json::to_string_pretty(h).unwrap_or_default()
                )
            }
        };
        let _ = out.flush();
        self.seen += 1;
    }

    fn finish(&self) {
        if self.format == OutFormat::Json {
            println!("{}", if self.first { "[]" } else { "\n]" });
        }
    }
}

fn listen(args: &ListenArgs) -> Result<u8, String> {
    let deadline = args
        .timeout_s
        .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let standalone_only = args.interface.is_some() || args.port != 138;
    let via = if standalone_only {
        Via::Standalone
    } else {
        args.daemon.connect()?
    };
    let mut printer = Printer {
        format: args.format,
        verbose: args.verbose,
        first: true,
        seen: 0,
    };
    let filter_name: Option<Name> = args
        .name
        .as_deref()
        .map(|n| n.parse().map_err(|e| format!("bad --name {n:?}: {e}")))
        .transpose()?;
    let wants = |dest: &Name, mailslot: Option<&str>| {
        filter_name.as_ref().is_none_or(|n| n == dest)
            && args
                .mailslot
                .as_deref()
                .is_none_or(|m| mailslot.is_some_and(|s| s.eq_ignore_ascii_case(m)))
    };
    match via {
        Via::Daemon(mut client) => {
            client
                .subscribe(Subscription {
                    name: args.name.clone(),
                    mailslot: args.mailslot.clone(),
                    all: args.all,
                })
                .map_err(|e| e.to_string())?;
            loop {
                if args.count.is_some_and(|c| printer.seen >= c) {
                    break;
                }
                let wait = match deadline {
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        Some(left)
                    }
                    None => None,
                };
                match client.next_event(wait).map_err(|e| e.to_string())? {
                    Some(ApiEvent::Datagram(ev)) => {
                        printer.print(&from_event(printer.seen + 1, ev))
                    }
                    Some(ApiEvent::Overflow { dropped }) => {
                        eprintln!("nbdgm listen: {dropped} datagrams dropped (too slow)")
                    }
                    Some(_) => {}
                    None => {}
                }
            }
        }
        Via::Standalone => {
            let interface = super::standalone_interface(args.interface.as_deref())?;
            let bind = super::ipv4(&args.bind)?;
            let mut config = NodeConfig::new(interface);
            config.datagram_port = args.port;
            config.node_status = false;
            config.datagram_error_on_unknown = false;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let iface = interface.addr.to_string();
            let port = args.port;
            rt.block_on(async {
                let mut node = nbdgm_daemon::standalone::Standalone::open(config, bind)
                    .map_err(|e| e.to_string())?;
                node.run(deadline, |ev| {
                    if let Event::Delivered(d) = ev {
                        if wants(&d.destination, d.mailslot.as_deref()) {
                            let h = heard(
                                printer.seen + 1,
                                iface.clone(),
                                d.from,
                                SocketAddrV4::new(
                                    if d.broadcast {
                                        interface.broadcast()
                                    } else {
                                        interface.addr
                                    },
                                    port,
                                ),
                                d.header_source,
                                d.msg_type,
                                d.source,
                                d.destination,
                                d.data,
                                d.for_us,
                                d.fragments as u32,
                            );
                            printer.print(&h);
                        }
                    }
                    args.count.is_none_or(|c| printer.seen < c)
                })
                .await
                .map_err(|e| e.to_string())
            })?;
        }
    }
    printer.finish();
    Ok(if printer.seen == 0 && deadline.is_some() {
        exit::FINDINGS
    } else {
        exit::OK
    })
}

fn from_event(n: u64, ev: DatagramEvent) -> Heard {
    let v4 = |a: SocketAddr| match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
    };
    let name = |s: &str| s.parse::<Name>().unwrap_or_else(|_| Name::wildcard());
    heard(
        n,
        ev.interface.to_string(),
        v4(ev.from),
        ev.to.map(v4).unwrap_or_else(|| {
            let ip = match ev.interface {
                std::net::IpAddr::V4(ip) => ip,
                std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            SocketAddrV4::new(ip, 138)
        }),
        v4(ev.header_source),
        msg_type(&ev.msg_type),
        name(&ev.source),
        name(&ev.destination),
        nbdgm_wire::hex::decode(&ev.data_hex).unwrap_or_default(),
        ev.for_us,
        ev.fragments,
    )
}
