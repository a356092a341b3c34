//! `nbdgm message send|listen`: WinPopup messages on `\MAILSLOT\MESSNGR`
//! (`nbdgm_wire::messenger`; addressing in `nbdgm_daemon::messenger`: `NAME<03>`
//! DIRECT_UNIQUE, or `NAME<00>` DIRECT_GROUP for a workgroup, DIGEST §1.1, §5, MS-MAIL
//! §3.2.3). See docs/message.md.

use super::events::{self, StopArgs};
use super::send::{self, Outgoing, SendTimeout};
use super::{print_json, NetArgs, OutFormat, ToolError, Via};
use crate::exit;
use clap::{Args, Subcommand};
use nbdgm_client::proto::Subscription;
use nbdgm_wire::mailslot::{MailslotWrite, MAX_SMB_LEN, MESSNGR};
use nbdgm_wire::messenger::{crlf, Message};
use nbdgm_wire::Name;
use serde::Serialize;
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::SystemTime;

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
    #[command(flatten)]
    pub timeout: SendTimeout,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm message listen                           # through the daemon (node.messenger = true)\n  \
    nbdgm message listen --format ndjson --count 1 --timeout 30s\n  \
    sudo nbdgm message listen --standalone --interface 198.51.100.20/24\n\n\
Through the daemon it shows the messages for the daemon's names (--all: every message it\n\
hears). Standalone it binds UDP 138 (root or --port) and shows every message that reaches it.\n\
Control characters in names and text are shown escaped in the text format. A malformed\n\
message is reported on stderr. Exit codes: 0 ok, 1 nothing arrived before --timeout,\n\
2 usage or network error.")]
pub struct ListenArgs {
    #[command(flatten)]
    pub stop: StopArgs,
    /// Through the daemon: also messages not addressed to its names.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

/// Why a WinPopup message cannot be sent or read.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("cannot encode the message: {0}")]
    Encode(String),
    #[error("mailslot write: {0}")]
    Mailslot(String),
    #[error("message too long: the mailslot write is {0} bytes, at most {MAX_SMB_LEN}")]
    TooLong(usize),
    /// A mailslot write to another mailslot (its name, escaped).
    #[error("not {MESSNGR}: {0}")]
    NotMessenger(String),
    #[error("message: {0}")]
    Message(String),
    #[error("stdin: {0}")]
    Stdin(#[source] std::io::Error),
}

pub fn run(args: &MessageArgs) -> u8 {
    let r = match &args.command {
        MessageCommand::Send(a) => send(a),
        MessageCommand::Listen(a) => listen(a),
    };
    super::exit_status("message", r)
}

// ---------------------------------------------------------------- send

/// The SMB mailslot write carrying `msg`, refused when Windows would not take it.
pub fn mailslot_bytes(msg: &Message) -> Result<Vec<u8>, MessageError> {
    let data = msg
        .to_bytes()
        .map_err(|e| MessageError::Encode(e.to_string()))?;
    let smb = MailslotWrite::new(MESSNGR, data)
        .to_bytes()
        .map_err(|e| MessageError::Mailslot(e.to_string()))?;
    if smb.len() > MAX_SMB_LEN {
        return Err(MessageError::TooLong(smb.len()));
    }
    Ok(smb)
}

fn read_text(arg: &str) -> Result<String, MessageError> {
    if arg == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(MessageError::Stdin)?;
        Ok(s)
    } else {
        Ok(arg.to_owned())
    }
}

fn send(args: &SendArgs) -> Result<u8, ToolError> {
    let text = crlf(&read_text(&args.text)?);
    let suffix = if args.to_group { 0x00 } else { 0x03 };
    let destination =
        Name::new(&args.name, suffix).map_err(|e| ToolError::bad("NAME", &args.name, e))?;
    if let Some(s) = &args.source {
        s.parse::<Name>()
            .map_err(|e| ToolError::bad("--source", s, e))?;
    }
    let mut via = args.net.daemon.choose(
        &args.net.standalone.given(),
        send::daemon_takes(args.address),
    )?;
    let sender = match (&args.from, &mut via) {
        (Some(f), _) => f.clone(),
        (None, Via::Daemon(client)) => {
            client.set_timeout(args.timeout.get())?;
            super::daemon_node_name(client).unwrap_or_else(super::host_netbios_name)
        }
        (None, Via::Standalone) => super::host_netbios_name(),
    };
    let msg = Message::new(&sender, &args.name, &text);
    mailslot_bytes(&msg)?;
    let at = args
        .address
        .map(|ip| SocketAddrV4::new(ip, args.net.standalone.port()));
    let out = Outgoing {
        command: "message send",
        destination: destination.clone(),
        mode: send::direct_mode(args.to_group, at),
        source: args.source.as_deref(),
        source_flag: "--source",
        mailslot: Some(MESSNGR),
        data: msg
            .to_bytes()
            .map_err(|e| MessageError::Encode(e.to_string()))?,
        max_length: None,
        timeout: args.timeout.get(),
    };
    let Some(sent) = out.send(via, &args.net.standalone)? else {
        return Ok(exit::FINDINGS);
    };
    match args.net.format {
        OutFormat::Text => println!(
            "sent message to {} at {}",
            escape(&destination.to_string()),
            escape(&sent.to)
        ),
        f => print_json(
            &json!({
                "to": sent.to, "destination": destination.to_string(),
                "sender": sender, "recipient": args.name, "bytes": sent.bytes, "via": sent.via,
            }),
            f,
        ),
    }
    Ok(exit::OK)
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
pub fn decode(data: &[u8]) -> Result<Message, MessageError> {
    let w = MailslotWrite::parse_ref(data).map_err(|e| MessageError::Mailslot(e.to_string()))?;
    if !w.name.eq_ignore_ascii_case(MESSNGR) {
        return Err(MessageError::NotMessenger(escape(&w.name).into_owned()));
    }
    Message::parse(w.data).map_err(|e| MessageError::Message(e.to_string()))
}

fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    nbdgm_wire::text::escape(s)
}

/// The text form of a message: a header line, then the text indented.
fn text_lines(h: &Heard) -> String {
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
    s
}

fn listen(args: &ListenArgs) -> Result<u8, ToolError> {
    let subscription = Subscription {
        name: None,
        mailslot: Some(MESSNGR.into()),
        all: args.all,
    };
    events::stream(
        "message listen",
        subscription,
        false,
        &args.stop,
        &args.net,
        |printer, a| match decode(&a.data) {
            Ok(m) => {
                let h = Heard {
                    time: now_rfc3339(),
                    interface: a.interface.to_string(),
                    from: a.from.to_string(),
                    source: a.source_text,
                    destination: a.destination_text,
                    for_us: a.for_us,
                    sender: m.sender,
                    recipient: m.recipient,
                    text: m.text,
                };
                printer.print(&h, || text_lines(&h));
            }
            Err(e) => eprintln!(
                "nbdgm message listen: malformed message from {}: {}",
                a.from,
                escape(&e.to_string())
            ),
        },
    )
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
        assert!(mailslot_bytes(&long)
            .unwrap_err()
            .to_string()
            .contains("too long"));
        assert!(mailslot_bytes(&Message::new("FRED", "B", "snow ☃")).is_err());
        assert!(decode(b"junk").is_err());
    }
}
