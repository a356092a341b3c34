//! The event stream of `listen` and `message listen`: datagrams delivered by the
//! daemon's API (a subscription, docs/api.md) or by a standalone node (RFC 1002 §5.3.3
//! receive), until a count or a deadline; and one printer for text, JSON (one array at
//! the end) and NDJSON (one object per line as it arrives).

use super::{parse_seconds, NetArgs, OutFormat, StandaloneArgs, ToolError, Via};
use crate::exit;
use clap::Args;
use nbdgm_client::proto::{DatagramEvent, Event as ApiEvent, Subscription};
use nbdgm_node::Event;
use nbdgm_wire::datagram::MsgType;
use nbdgm_wire::Name;
use serde::Serialize;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

/// When an event stream (`listen`, `message listen`) stops.
#[derive(Args, Debug, Clone, Default)]
pub struct StopArgs {
    /// Stop after this many datagrams.
    #[arg(long)]
    pub count: Option<u64>,
    #[command(flatten)]
    pub timeout: StreamTimeout,
}

super::timeout_args!(
    StreamTimeout,
    timeout_s,
    parse_seconds,
    "SECONDS",
    "Stop after this long, e.g. 30s, 1.5s, 2m [default: never]."
);

impl StopArgs {
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout.get()
    }
}

/// Run an event stream (`listen`, `message listen`): daemon or standalone by the common
/// rule (`--interface` also works through the daemon, as a filter), until `--count`
/// items are printed, the timeout passes or the stream ends. `on` prints (or skips) each
/// datagram. Exit status 1 when a timeout was given and nothing was printed.
/// `answer_unknown`: standalone, answer a unicast DIRECT_UNIQUE to a name other than the
/// subscription's with DATAGRAM ERROR (through the reply gate).
pub fn stream(
    command: &'static str,
    subscription: Subscription,
    answer_unknown: bool,
    stop: &StopArgs,
    net: &NetArgs,
    on: impl FnMut(&mut Printer, Arrival),
) -> Result<u8, ToolError> {
    let (standalone, daemon) = (&net.standalone, &net.daemon);
    let deadline = stop.timeout().map(|t| Instant::now() + t);
    let daemon_interface = match (&standalone.interface, daemon.daemon) {
        (Some(_), true) => Some(IpAddr::V4(standalone.interface()?.addr)),
        _ => None,
    };
    let via = daemon.choose(&standalone.given(), &["--interface"])?;
    let mut sink = Counted {
        printer: Printer::new(net.format),
        count: stop.count,
        on,
    };
    Stream {
        command,
        subscription,
        answer_unknown,
        deadline,
        standalone,
        daemon_interface,
    }
    .run(via, &mut sink)?;
    sink.printer.finish();
    Ok(if sink.printer.seen == 0 && deadline.is_some() {
        exit::FINDINGS
    } else {
        exit::OK
    })
}

/// A printer that stops after `count` items.
struct Counted<F> {
    printer: Printer,
    count: Option<u64>,
    on: F,
}

impl<F: FnMut(&mut Printer, Arrival)> Sink for Counted<F> {
    fn deliver(&mut self, a: Arrival) {
        (self.on)(&mut self.printer, a)
    }

    fn done(&self) -> bool {
        self.count.is_some_and(|c| self.printer.seen >= c)
    }
}

/// One delivered datagram, whichever way it came.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Address of the interface it arrived on.
    pub interface: IpAddr,
    /// UDP source.
    pub from: SocketAddr,
    /// Where it was sent, and the port: the destination address of its IP header when
    /// known (standalone with `IP_PKTINFO`, or the daemon's socket), else the interface
    /// address or its broadcast address.
    pub to: SocketAddrV4,
    /// It was sent to a broadcast (or multicast) address.
    pub broadcast: bool,
    /// SOURCE_IP:SOURCE_PORT of the datagram header.
    pub header_source: SocketAddr,
    pub msg_type: MsgType,
    /// SOURCE_NAME and DESTINATION_NAME (`*<00>` when the daemon sent one that does not
    /// parse) and their text as the daemon (or the node) wrote it.
    pub source: Name,
    pub destination: Name,
    pub source_text: String,
    pub destination_text: String,
    pub for_us: bool,
    pub fragments: u32,
    pub mailslot: Option<String>,
    /// The user data (reassembled).
    pub data: Vec<u8>,
}

/// What a stream's datagrams go to.
pub trait Sink {
    fn deliver(&mut self, a: Arrival);
    /// Enough (the `--count` is reached): stop.
    fn done(&self) -> bool;
}

/// Which datagrams to wait for, and for how long.
pub struct Stream<'a> {
    /// The command, for the messages (`listen`, `message listen`).
    pub command: &'static str,
    /// The filter: the daemon applies it; standalone, it is applied here (`all` aside:
    /// a standalone node shows whatever reaches it).
    pub subscription: Subscription,
    /// Standalone: a unicast DIRECT_UNIQUE to a name other than the subscription's gets
    /// DATAGRAM ERROR 0x82 (RFC 1002 §4.4.3), through the reply gate; never a broadcast.
    pub answer_unknown: bool,
    pub deadline: Option<Instant>,
    pub standalone: &'a StandaloneArgs,
    /// Through the daemon: only datagrams that arrived on this interface
    /// (`--daemon --interface`).
    pub daemon_interface: Option<IpAddr>,
}

impl Stream<'_> {
    /// Deliver the datagrams to `sink` until it is done or the deadline passes.
    pub fn run(&self, via: Via, sink: &mut impl Sink) -> Result<(), ToolError> {
        let name = match self.subscription.name.as_deref() {
            Some(n) => Some(
                n.parse::<Name>()
                    .map_err(|e| ToolError::bad("--name", n, e))?,
            ),
            None => None,
        };
        if sink.done() {
            return Ok(());
        }
        match via {
            Via::Daemon(client) => self.through_daemon(*client, sink),
            Via::Standalone => self.standalone(name.as_ref(), sink),
        }
    }

    fn through_daemon(
        &self,
        mut client: nbdgm_client::Client,
        sink: &mut impl Sink,
    ) -> Result<(), ToolError> {
        client.subscribe(self.subscription.clone())?;
        while !sink.done() {
            let wait = match self.deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    Some(left)
                }
                None => None,
            };
            match client.next_event(wait)? {
                Some(ApiEvent::Datagram(ev)) => {
                    if self.daemon_interface.is_none_or(|i| i == ev.interface) {
                        sink.deliver(from_event(ev))
                    }
                }
                Some(ApiEvent::Overflow { dropped }) => eprintln!(
                    "nbdgm {}: {dropped} datagrams dropped (too slow)",
                    self.command
                ),
                Some(_) | None => {}
            }
        }
        Ok(())
    }

    fn standalone(&self, name: Option<&Name>, sink: &mut impl Sink) -> Result<(), ToolError> {
        let mut config = self.standalone.node_config()?;
        if self.answer_unknown {
            config.datagram_error_on_unknown = true;
            config.passive_names.extend(name.cloned());
        }
        let interface = config.interface;
        let port = config.datagram_port;
        let bind = self.standalone.bind();
        let mailslot = self.subscription.mailslot.as_deref();
        let wants = |d: &nbdgm_node::Delivery| {
            name.is_none_or(|n| *n == d.destination)
                && mailslot.is_none_or(|m| {
                    d.mailslot
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case(m))
                })
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let mut node = nbdgm_runtime::Standalone::open(config, bind)?
                .with_gate(nbdgm_daemon::standalone_gate::default_gate());
            let ran = node
                .run_with_packets(self.deadline, |ev, packet| {
                    if let Event::Delivered(d) = ev {
                        if wants(&d) {
                            // The header's destination (IP_PKTINFO), else a guess.
                            let to = packet.and_then(|p| p.dst).unwrap_or(if d.broadcast {
                                interface.broadcast()
                            } else {
                                interface.addr
                            });
                            sink.deliver(Arrival {
                                interface: IpAddr::V4(interface.addr),
                                from: SocketAddr::V4(d.from),
                                to: SocketAddrV4::new(to, port),
                                broadcast: d.broadcast,
                                header_source: SocketAddr::V4(d.header_source),
                                msg_type: d.msg_type,
                                source_text: d.source.to_string(),
                                destination_text: d.destination.to_string(),
                                source: d.source,
                                destination: d.destination,
                                for_us: d.for_us,
                                fragments: d.fragments as u32,
                                mailslot: d.mailslot,
                                data: d.data.into(),
                            });
                        }
                    }
                    !sink.done()
                })
                .await;
            let r = node.replies();
            if r != nbdgm_runtime::standalone::ReplyCounts::default() {
                eprintln!(
                    "nbdgm {}: answers: {} sent, {} refused by the reply gate, {} failed",
                    self.command, r.sent, r.refused, r.failed
                );
            }
            ran
        })?;
        Ok(())
    }
}

/// An API datagram event as an [`Arrival`].
pub fn from_event(ev: DatagramEvent) -> Arrival {
    let name = |s: &str| s.parse::<Name>().unwrap_or_else(|_| Name::wildcard());
    let v4 = |a: SocketAddr| match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
    };
    let to = ev.to.map(v4).unwrap_or_else(|| {
        let ip = match ev.interface {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        SocketAddrV4::new(ip, StandaloneArgs::DATAGRAM_PORT)
    });
    Arrival {
        interface: ev.interface,
        from: ev.from,
        to,
        broadcast: ev.broadcast,
        header_source: ev.header_source,
        msg_type: ev.msg_type.into(),
        source: name(&ev.source),
        destination: name(&ev.destination),
        source_text: ev.source,
        destination_text: ev.destination,
        for_us: ev.for_us,
        fragments: ev.fragments,
        mailslot: ev.mailslot,
        data: nbdgm_wire::hex::decode(&ev.data_hex).unwrap_or_default(),
    }
}

/// Prints a stream of items: text as given, `ndjson` one object per line, `json` one
/// array (closed by [`Printer::finish`]). Flushes after each item.
pub struct Printer {
    format: OutFormat,
    first: bool,
    /// Items printed.
    pub seen: u64,
}

impl Printer {
    pub fn new(format: OutFormat) -> Printer {
        Printer {
            format,
            first: true,
            seen: 0,
        }
    }

    /// Print `item`; `text` makes its text form (with its line ends) when that is asked.
    pub fn print(&mut self, item: &impl Serialize, text: impl FnOnce() -> String) {
        let mut out = std::io::stdout().lock();
        let _ = match self.format {
            OutFormat::Text => write!(out, "{}", text()),
            OutFormat::Ndjson => {
                writeln!(out, "{}", serde_json::to_string(item).unwrap_or_default())
            }
            OutFormat::Json => {
                let sep = if self.first { "[\n" } else { ",\n" };
                self.first = false;
                write!(
                    out,
                    "{sep}{}",
                    serde_json::to_string_pretty(item).unwrap_or_default()
                )
            }
        };
        let _ = out.flush();
        self.seen += 1;
    }

    /// Close the JSON array (`[]` when nothing came).
    pub fn finish(&self) {
        if self.format == OutFormat::Json {
            println!("{}", if self.first { "[]" } else { "\n]" });
        }
    }
}
