//! `nbdgm message send|listen`: WinPopup messages on `\MAILSLOT\MESSNGR`
//! (`nbdgm_wire::messenger`; addressing in `nbdgm_daemon::messenger`: `NAME<03>`
//! DIRECT_UNIQUE, or `NAME<00>` DIRECT_GROUP for a workgroup, DIGEST §1.1, §5, MS-MAIL
//! §3.2.3). See docs/message.md.

use super::{print_json, DaemonArgs, OutFormat, Via};
use crate::exit;
use clap::{Args, Subcommand};
use nbdgm_client::proto::{
    Event as ApiEvent, SendArgs as ApiSend, SendMode as ApiMode, Subscription,
};
use nbdgm_node::{Event, NodeConfig, SendMode, SendRequest};
use nbdgm_wire::mailslot::{MailslotWrite, MAX_SMB_LEN, MESSNGR};
use nbdgm_wire::messenger::{crlf, Message};
use nbdgm_wire::Name;
use serde::Serialize;
use serde_json::json;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant, SystemTime};

#[derive(Args, Debug)]
pub struct MessageArgs {
    #[command(subcommand)]
    pub command: MessageCommand,
}

#[derive(Subcommand, Debug)]
pub enum MessageCommand {
    /// Send a WinPopup message to NAME<03> (or to a workgroup with --to-group).
    Send(SendArgs),
    /// Print the WinPopup messages that arrive.
    Listen(ListenArgs),
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm message send FRED 'Lunch at 12'                 # to FRED<03>, resolved by broadcast\n  \
    nbdgm message send FRED 'hi' --address 192.0.2.7        # straight to that host\n  \
    nbdgm message send WORKGROUP 'Server down' --to-group   # WORKGROUP<00>, every member\n  \
    printf 'line 1\\nline 2' | nbdgm message send FRED -     # text from stdin\n\n\
Line breaks are sent as CR LF. Text must be Latin-1; the SMB part of the datagram may be at\n\
most 512 bytes (Windows' mailslot limit). Without a daemon it binds UDP 138 (root or --port).\n\
Exit codes: 0 sent, 1 the name could not be resolved, 2 usage or network error.")]
pub struct SendArgs {
    /// Recipient: a computer or user name (sent to NAME<03>), or a workgroup with --to-group.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The message text (`-` reads it from stdin).
    #[arg(value_name = "TEXT")]
    pub text: String,
    /// Sender shown to the recipient [default: the daemon's name; standalone: the host name].
    #[arg(long, value_name = "SENDER")]
    pub from: Option<String>,
    /// Send to the group NAME<00> as DIRECT_GROUP (a workgroup) instead of NAME<03>.
    #[arg(long)]
    pub to_group: bool,
    /// Send straight to this host instead of resolving the name.
    #[arg(long, value_name = "IP")]
    pub address: Option<Ipv4Addr>,
    /// NetBIOS source name of the datagram [default: the daemon's NAME<00>; standalone:
    /// the host name <00>].
    #[arg(long, value_name = "NAME<xx>")]
    pub source: Option<String>,
    /// Standalone: interface IP/PREFIX [default: the first IPv4 interface].
    #[arg(long, value_name = "IP/PREFIX")]
    pub interface: Option<String>,
    /// Standalone: local address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: String,
    /// Standalone: datagram port (local and remote).
    #[arg(long, default_value_t = 138)]
    pub port: u16,
    /// Standalone: name-service port of other nodes.
    #[arg(long, default_value_t = 137)]
    pub name_port: u16,
    /// Give up after this many milliseconds (name resolution included).
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm message listen                           # through the daemon (node.messenger = true)\n  \
    nbdgm message listen --format ndjson --count 1 --timeout-s 30\n  \
    sudo nbdgm message listen --standalone --interface 198.51.100.20/24\n\n\
Through the daemon it shows the messages for the daemon's names (--all: every message it\n\
hears). Standalone it binds UDP 138 (root or --port) and shows every message that reaches it.\n\
Control characters in names and text are shown escaped in the text format. A malformed\n\
message is reported on stderr. Exit codes: 0 ok, 1 nothing arrived before --timeout-s,\n\
2 usage or network error.")]
pub struct ListenArgs {
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub timeout_s: Option<f64>,
    /// Through the daemon: also messages not addressed to its names.
    #[arg(long)]
    pub all: bool,
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

pub fn run(args: &MessageArgs) -> u8 {
    let r = match &args.command {
        MessageCommand::Send(a) => send(a),
        MessageCommand::Listen(a) => listen(a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nbdgm message: {}", escape(&e.to_string()));
            exit::USAGE
        }
    }
}

// ---------------------------------------------------------------- send

/// The SMB mailslot write carrying `msg`, refused when Windows would not take it.
pub fn mailslot_bytes(msg: &Message) -> Result<Vec<u8>, String> {
    let data = msg
        .to_bytes()
        .map_err(|e| format!("cannot encode the message: {e}"))?;
    let smb = MailslotWrite::new(MESSNGR, data)
        .to_bytes()
        .map_err(|e| format!("mailslot write: {e}"))?;
    if smb.len() > MAX_SMB_LEN {
        return Err(format!(
            "message too long: the mailslot write is {} bytes, at most {MAX_SMB_LEN}",
            smb.len()
        ));
    }
    Ok(smb)
}

fn read_text(arg: &str) -> Result<String, String> {
    if arg == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("stdin: {e}"))?;
        Ok(s)
    } else {
        Ok(arg.to_owned())
    }
}

/// The daemon's node name: its first unique `<00>` name.
fn daemon_name(client: &mut nbdgm_client::Client) -> Option<String> {
    let names = client.names().ok()?;
    names
        .interfaces
        .iter()
        .flat_map(|i| i.names.iter())
        .filter(|n| !n.group)
        .find_map(|n| n.name.strip_suffix("<00>").map(str::to_owned))
}

fn send(args: &SendArgs) -> Result<u8, String> {
    let text = crlf(&read_text(&args.text)?);
    let suffix = if args.to_group { 0x00 } else { 0x03 };
    let destination =
        Name::new(&args.name, suffix).map_err(|e| format!("bad NAME {:?}: {e}", args.name))?;
    if let Some(s) = &args.source {
        s.parse::<Name>()
            .map_err(|e| format!("bad --source {s:?}: {e}"))?;
    }
    let standalone_only = args.interface.is_some() || args.port != 138;
    let via = if standalone_only {
        Via::Standalone
    } else {
        args.daemon.connect()?
    };
    let report = match via {
        Via::Daemon(mut client) => {
            client
                .set_timeout(Duration::from_millis(args.timeout_ms))
                .map_err(|e| e.to_string())?;
            let sender = match &args.from {
                Some(f) => f.clone(),
                None => daemon_name(&mut client).unwrap_or_else(super::host_netbios_name),
            };
            let msg = Message::new(&sender, &args.name, &text);
            let data = msg
                .to_bytes()
                .map_err(|e| format!("cannot encode the message: {e}"))?;
            mailslot_bytes(&msg)?;
            let mut a = ApiSend::new(
                destination.to_string(),
                if args.to_group {
                    ApiMode::Group
                } else {
                    ApiMode::Unique
                },
                &data,
            );
            a.mailslot = Some(MESSNGR.into());
            a.address = args.address.map(IpAddr::V4);
            a.source = args.source.clone();
            use nbdgm_client::{proto::ErrorCode, Error};
            match client.send(a) {
                Ok(r) => json!({
                    "to": r.to.to_string(), "destination": destination.to_string(),
                    "sender": sender, "recipient": args.name, "bytes": r.bytes, "via": "daemon",
                }),
                Err(Error::Server {
                    code: ErrorCode::NotFound | ErrorCode::Timeout,
                    message,
                }) => {
                    eprintln!("nbdgm message send: {}", escape(&message));
                    return Ok(exit::FINDINGS);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Via::Standalone => match standalone_send(args, destination, &text)? {
            Some(v) => v,
            None => return Ok(exit::FINDINGS),
        },
    };
    match args.format {
        OutFormat::Text => println!(
            "sent message to {} at {}",
            escape(report["destination"].as_str().unwrap_or("?")),
            escape(report["to"].as_str().unwrap_or("?"))
        ),
        f => print_json(&report, f),
    }
    Ok(exit::OK)
}

fn standalone_send(
    args: &SendArgs,
    destination: Name,
    text: &str,
) -> Result<Option<serde_json::Value>, String> {
    let interface = super::standalone_interface(args.interface.as_deref())?;
    let bind: Ipv4Addr = super::ipv4(&args.bind)?;
    let host = super::host_netbios_name();
    let source: Name = match &args.source {
        Some(f) => f.parse().map_err(|e| format!("bad --source {f:?}: {e}"))?,
        None => Name::new(&host, 0).map_err(|e| e.to_string())?,
    };
    let sender = args.from.clone().unwrap_or(host);
    let msg = Message::new(&sender, &args.name, text);
    let user_data = mailslot_bytes(&msg)?;
    let at = args.address.map(|ip| SocketAddrV4::new(ip, args.port));
    let mode = match (args.to_group, at) {
        (true, None) => SendMode::Group,
        (true, Some(a)) => SendMode::GroupAt(a),
        (false, None) => SendMode::Unique,
        (false, Some(a)) => SendMode::UniqueAt(a),
    };
    let bytes = user_data.len();
    let mut config = NodeConfig::new(interface);
    config.datagram_port = args.port;
    config.name_port = args.name_port;
    config.allow_unregistered_source = true;
    config.node_status = false;
    config.datagram_error_on_unknown = false;
    let request = SendRequest {
        source,
        destination: destination.clone(),
        mode,
        data: user_data,
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    match nbdgm_daemon::standalone::send_once(config, bind, request, timeout)? {
        Some(Ok(info)) => Ok(Some(json!({
            "to": info.to.to_string(), "destination": destination.to_string(),
            "sender": sender, "recipient": args.name, "bytes": bytes, "via": "standalone",
        }))),
        Some(Err(e)) => {
            eprintln!("nbdgm message send: {destination}: {e}");
            Ok(None)
        }
        None => {
            eprintln!("nbdgm message send: {destination}: no answer in time");
            Ok(None)
        }
    }
}

// ---------------------------------------------------------------- listen

/// One received message as `message listen` prints it.
#[derive(Debug, Serialize)]
pub struct Heard {
    pub time: String,
    pub interface: String,
    /// UDP source address:port.
    pub from: String,
    /// NetBIOS source and destination names of the datagram.
    pub source: String,
    pub destination: String,
    pub for_us: bool,
    pub sender: String,
    pub recipient: String,
    /// As received: lines separated by CR LF.
    pub text: String,
}

fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    nbdgm_capture::Timestamp {
        secs: now.as_secs() as i64,
        nanos: now.subsec_nanos(),
    }
    .to_rfc3339_micros()
}

/// Decode the user data of a MESSNGR datagram.
pub fn decode(data: &[u8]) -> Result<Message, String> {
    let w = MailslotWrite::parse_ref(data).map_err(|e| format!("mailslot write: {e}"))?;
    if !w.name.eq_ignore_ascii_case(MESSNGR) {
        return Err(format!("not {MESSNGR}: {}", escape(&w.name)));
    }
    Message::parse(w.data).map_err(|e| format!("message: {e}"))
}

fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    nbdgm_wire::text::escape(s)
}

struct Printer {
    format: OutFormat,
    first: bool,
    seen: u64,
    malformed: u64,
}

impl Printer {
    fn print(&mut self, h: &Heard) {
        let mut out = std::io::stdout().lock();
        let _ = match self.format {
            OutFormat::Text => {
                let mut s = format!(
                    "{} message from {} to {} ({} -> {}, {}){}\n",
                    escape(&h.time),
                    escape(&h.sender),
                    escape(&h.recipient),
                    escape(&h.from),
                    escape(&h.destination),
                    escape(&h.interface),
                    if h.for_us { "" } else { " [not for us]" }
                );
                for line in h.text.lines() {
                    s.push_str("  ");
                    s.push_str(&escape(line));
                    s.push('\n');
                }
                write!(out, "{s}")
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

    fn malformed(&mut self, from: &str, e: &str) {
        self.malformed += 1;
        eprintln!(
            "nbdgm message listen: malformed message from {from}: {}",
            escape(e)
        );
    }

    fn finish(&self) {
        if self.format == OutFormat::Json {
            println!("{}", if self.first { "[]" } else { "\n]" });
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn heard(
    p: &mut Printer,
    interface: String,
    from: String,
    source: String,
    destination: String,
    for_us: bool,
    data: &[u8],
) {
    match decode(data) {
        Ok(m) => p.print(&Heard {
            time: now_rfc3339(),
            interface,
            from,
            source,
            destination,
            for_us,
            sender: m.sender,
            recipient: m.recipient,
            text: m.text,
        }),
        Err(e) => p.malformed(&from, &e),
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
    let mut p = Printer {
        format: args.format,
        first: true,
        seen: 0,
        malformed: 0,
    };
    match via {
        Via::Daemon(mut client) => {
            client
                .subscribe(Subscription {
                    name: None,
                    mailslot: Some(MESSNGR.into()),
                    all: args.all,
                })
                .map_err(|e| e.to_string())?;
            loop {
                if args.count.is_some_and(|c| p.seen >= c) {
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
                        let data = nbdgm_wire::hex::decode(&ev.data_hex).unwrap_or_default();
                        heard(
                            &mut p,
                            ev.interface.to_string(),
                            ev.from.to_string(),
                            ev.source,
                            ev.destination,
                            ev.for_us,
                            &data,
                        );
                    }
                    Some(ApiEvent::Overflow { dropped }) => {
                        eprintln!("nbdgm message listen: {dropped} datagrams dropped (too slow)")
                    }
                    Some(_) | None => {}
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
            rt.block_on(async {
                let mut node = nbdgm_daemon::standalone::Standalone::open(config, bind)
                    .map_err(|e| e.to_string())?;
                node.run(deadline, |ev| {
                    if let Event::Delivered(d) = ev {
                        if d.mailslot
                            .as_deref()
                            .is_some_and(|m| m.eq_ignore_ascii_case(MESSNGR))
                        {
                            heard(
                                &mut p,
                                iface.clone(),
                                d.from.to_string(),
                                d.source.to_string(),
                                d.destination.to_string(),
                                d.for_us,
                                &d.data,
                            );
                        }
                    }
                    args.count.is_none_or(|c| p.seen < c)
                })
                .await
                .map_err(|e| e.to_string())
            })?;
        }
    }
    p.finish();
    Ok(if p.seen == 0 && deadline.is_some() {
        exit::FINDINGS
    } else {
        exit::OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let m = Message::new("FRED", "BARNEY", &crlf("a;$(x)\n'b'"));
        let smb = mailslot_bytes(&m).unwrap();
        let back = decode(&smb).unwrap();
        assert_eq!(back.text, "a;$(x)\r\n'b'");
        assert_eq!(back.sender, "FRED");
        let long = Message::new("FRED", "BARNEY", &"x".repeat(600));
        assert!(mailslot_bytes(&long).unwrap_err().contains("too long"));
        assert!(mailslot_bytes(&Message::new("FRED", "B", "snow ☃")).is_err());
        assert!(decode(b"junk").is_err());
    }
}
