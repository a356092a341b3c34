//! `nbdgm send`: send a datagram, optionally as a mailslot write (RFC 1002 §5.3.1;
//! MS-MAIL §2.2.1).

use super::{parse_millis, print_json, NetArgs, OutFormat, StandaloneArgs, ToolError, Via};
use crate::exit;
use clap::{ArgGroup, Args};
use nbdgm_client::proto::{SendArgs as ApiSend, SendMode as ApiMode};
use nbdgm_node::{SendMode, SendRequest};
use nbdgm_wire::mailslot::MailslotWrite;
use nbdgm_wire::text::Escaped;
use nbdgm_wire::Name;
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

#[derive(Args, Debug)]
#[command(
    group(ArgGroup::new("payload").required(true).args(["text", "hex", "file"])),
    group(ArgGroup::new("mode").args(["unique", "group", "broadcast"])),
    after_help = "Examples:\n  \
    nbdgm send --to 'FRED<03>' --text 'hello'                  # DIRECT_UNIQUE, resolved by broadcast\n  \
    nbdgm send --to 'FRED<03>' --address 192.0.2.7 --text 'hi'  # DIRECT_UNIQUE to that host, no lookup\n  \
    nbdgm send --to 'WORKGROUP<1d>' --group --mailslot '\\MAILSLOT\\BROWSE' --hex 01000000... --timeout 2s\n  \
    nbdgm send --broadcast --mailslot '\\MAILSLOT\\APP' --file message.bin --standalone --interface 198.51.100.20/24\n\n\
Without a daemon it binds UDP 138 on --bind (needs root or CAP_NET_BIND_SERVICE, or --port).\n\
With --daemon, --interface picks the daemon's interface and --port (with --address) the\n\
remote port.\n\
Exit codes: 0 sent, 1 the name could not be resolved, 2 usage or network error."
)]
pub struct SendArgs {
    /// Destination NAME<xx> (not needed with --broadcast, which goes to `*`).
    #[arg(long, value_name = "NAME<xx>", required_unless_present = "broadcast")]
    pub to: Option<String>,
    /// DIRECT_UNIQUE: resolve the name, send by unicast (the default).
    #[arg(long)]
    pub unique: bool,
    /// DIRECT_GROUP to the subnet broadcast address.
    #[arg(long)]
    pub group: bool,
    /// BROADCAST datagram to `*` on the subnet broadcast address.
    #[arg(long)]
    pub broadcast: bool,
    /// Send straight to this host instead of resolving --to (DIRECT_UNIQUE, or
    /// DIRECT_GROUP with --group).
    #[arg(long, value_name = "IP", conflicts_with = "broadcast")]
    pub address: Option<Ipv4Addr>,
    /// Wrap the data in an SMB mailslot write to this mailslot, e.g. '\MAILSLOT\BROWSE'.
    #[arg(long, value_name = "NAME")]
    pub mailslot: Option<String>,
    /// The data as text (UTF-8).
    #[arg(long)]
    pub text: Option<String>,
    /// The data as hex.
    #[arg(long)]
    pub hex: Option<String>,
    /// The data from a file (`-` for stdin).
    #[arg(long, value_name = "PATH")]
    pub file: Option<String>,
    /// Source name [default: the daemon's name; standalone: the host name <00>].
    #[arg(long, value_name = "NAME<xx>")]
    pub from: Option<String>,
    /// Standalone: largest IP datagram before fragmenting (RFC 1002 MAX_DATAGRAM_LENGTH)
    /// [default: 576].
    #[arg(long, value_name = "BYTES")]
    pub max_length: Option<usize>,
    #[command(flatten)]
    pub timeout: SendTimeout,
    #[command(flatten)]
    pub net: NetArgs,
}

super::timeout_args!(
    SendTimeout,
    timeout_ms,
    parse_millis,
    "MS",
    "Give up after this long, name resolution included, e.g. 5s, 500ms [default: 5s].",
    default = Duration::from_secs(5)
);

pub fn run(args: &SendArgs) -> u8 {
    super::exit_status("send", send(args))
}

fn payload(args: &SendArgs) -> Result<Vec<u8>, ToolError> {
    let data = if let Some(t) = &args.text {
        t.as_bytes().to_vec()
    } else if let Some(h) = &args.hex {
        let clean: String = h
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect();
        nbdgm_wire::hex::decode(&clean)
            .ok_or_else(|| ToolError::Usage("--hex is not valid hex".into()))?
    } else if let Some(f) = &args.file {
        if f == "-" {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
            v
        } else {
            std::fs::read(f).map_err(|source| ToolError::IoAt {
                context: f.clone(),
                source,
            })?
        }
    } else {
        Vec::new()
    };
    Ok(data)
}

/// DIRECT_UNIQUE or DIRECT_GROUP, resolved or straight to `at`.
pub fn direct_mode(group: bool, at: Option<SocketAddrV4>) -> SendMode {
    match (group, at) {
        (true, None) => SendMode::Group,
        (true, Some(a)) => SendMode::GroupAt(a),
        (false, None) => SendMode::Unique,
        (false, Some(a)) => SendMode::UniqueAt(a),
    }
}

fn send(args: &SendArgs) -> Result<u8, ToolError> {
    let data = payload(args)?;
    let at = args
        .address
        .map(|ip| SocketAddrV4::new(ip, args.net.standalone.port()));
    let mode = if args.broadcast {
        SendMode::Broadcast
    } else {
        direct_mode(args.group, at)
    };
    let destination: Name = match &args.to {
        Some(t) => t.parse().map_err(|e| ToolError::bad("--to", t, e))?,
        None => Name::wildcard(),
    };
    if let Some(m) = &args.mailslot {
        if !m.to_ascii_uppercase().starts_with("\\MAILSLOT\\") {
            return Err(ToolError::Usage(format!(
                "--mailslot {m:?} must start with \\MAILSLOT\\"
            )));
        }
    }
    let mut given = args.net.standalone.given();
    if args.max_length.is_some_and(|m| m != 576) {
        given.push("--max-length");
    }
    let via = args.net.daemon.choose(&given, daemon_takes(args.address))?;
    let out = Outgoing {
        command: "send",
        destination,
        mode,
        source: args.from.as_deref(),
        source_flag: "--from",
        mailslot: args.mailslot.as_deref(),
        data,
        max_length: args.max_length,
        timeout: args.timeout.get(),
    };
    let Some(sent) = out.send(via, &args.net.standalone)? else {
        return Ok(exit::FINDINGS);
    };
    let report = json!({
        "to": sent.to, "fragments": sent.fragments, "bytes": sent.bytes, "via": sent.via,
    });
    match args.net.format {
        OutFormat::Text => println!(
            "sent {} bytes in {} fragment(s) to {}",
            sent.bytes,
            sent.fragments,
            Escaped(&sent.to)
        ),
        f => print_json(&report, f),
    }
    Ok(exit::OK)
}

/// The standalone options a send through the daemon carries: `--interface` (the
/// daemon's interface to send from) and, with `--address`, `--port` (the remote port).
pub fn daemon_takes(address: Option<Ipv4Addr>) -> &'static [&'static str] {
    if address.is_some() {
        &["--interface", "--port"]
    } else {
        &["--interface"]
    }
}

/// One datagram to send, through the daemon or standalone (`send`, `message send`).
pub struct Outgoing<'a> {
    /// The command, for the messages.
    pub command: &'static str,
    pub destination: Name,
    pub mode: SendMode,
    /// The source NAME<xx> [default: the daemon's name; standalone: the host name <00>].
    pub source: Option<&'a str>,
    /// The option that gave `source`, for the error message.
    pub source_flag: &'static str,
    /// Wrap the data in an SMB mailslot write to this mailslot (MS-MAIL §2.2.1).
    pub mailslot: Option<&'a str>,
    pub data: Vec<u8>,
    /// Standalone: MAX_DATAGRAM_LENGTH.
    pub max_length: Option<usize>,
    pub timeout: Duration,
}

/// Where a datagram went.
pub struct Delivered {
    pub to: String,
    pub fragments: usize,
    /// User-data bytes (after mailslot wrapping).
    pub bytes: usize,
    pub via: &'static str,
}

impl Outgoing<'_> {
    /// Send; `None` (after a message on stderr) when the name could not be resolved or
    /// nothing answered in time.
    pub fn send(
        self,
        via: Via,
        standalone: &StandaloneArgs,
    ) -> Result<Option<Delivered>, ToolError> {
        match via {
            Via::Daemon(client) => self.through_daemon(*client, standalone),
            Via::Standalone => self.standalone(standalone),
        }
    }

    fn through_daemon(
        self,
        mut client: nbdgm_client::Client,
        standalone: &StandaloneArgs,
    ) -> Result<Option<Delivered>, ToolError> {
        let (mode, address) = match self.mode {
            SendMode::Unique => (ApiMode::Unique, None),
            SendMode::UniqueAt(a) => (ApiMode::Unique, Some(*a.ip())),
            SendMode::Group => (ApiMode::Group, None),
            SendMode::GroupAt(a) => (ApiMode::Group, Some(*a.ip())),
            SendMode::Broadcast => (ApiMode::Broadcast, None),
        };
        let mut a = ApiSend::new(self.destination.to_string(), mode, &self.data);
        a.address = address.map(Into::into);
        a.port = address.and(standalone.port);
        a.source = self.source.map(str::to_owned);
        a.mailslot = self.mailslot.map(str::to_owned);
        if standalone.interface.is_some() {
            a.interface = Some(standalone.interface()?.addr.into());
        }
        client.set_timeout(self.timeout)?;
        use nbdgm_client::{proto::ErrorCode, Error};
        match client.send(a) {
            Ok(r) => Ok(Some(Delivered {
                to: r.to.to_string(),
                fragments: r.fragments as usize,
                bytes: r.bytes,
                via: "daemon",
            })),
            Err(Error::Server {
                code: ErrorCode::NotFound | ErrorCode::Timeout,
                message,
            }) => {
                eprintln!("nbdgm {}: {}", self.command, Escaped(&message));
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn standalone(self, standalone: &StandaloneArgs) -> Result<Option<Delivered>, ToolError> {
        let mut config = standalone.node_config()?;
        let bind = standalone.bind();
        let source: Name = match self.source {
            Some(f) => f
                .parse()
                .map_err(|e| ToolError::bad(self.source_flag, f, e))?,
            None => Name::new(&super::host_netbios_name(), 0)
                .map_err(|e| ToolError::Encode(e.to_string()))?,
        };
        let user_data = match self.mailslot {
            Some(m) => MailslotWrite::new(m, self.data)
                .to_bytes()
                .map_err(|e| ToolError::Encode(format!("mailslot write: {e}")))?,
            None => self.data,
        };
        let bytes = user_data.len();
        if let Some(m) = self.max_length {
            config.max_datagram_length = m;
        }
        config.allow_unregistered_source = true;
        let destination = self.destination;
        let request = SendRequest {
            source,
            destination: destination.clone(),
            mode: self.mode,
            data: user_data,
        };
        let timeout = self.timeout;
        let sent = nbdgm_runtime::standalone::send_once(
            config,
            bind,
            request,
            timeout,
            Some(nbdgm_daemon::standalone_gate::default_gate()),
        )
        .map_err(|e| ToolError::Failed(e.to_string()))?;
        match sent {
            Some(Ok(info)) => Ok(Some(Delivered {
                to: info.to.to_string(),
                fragments: info.fragments,
                bytes,
                via: "standalone",
            })),
            Some(Err(e)) => {
                eprintln!("nbdgm {}: {destination}: {e}", self.command);
                Ok(None)
            }
            None => {
                eprintln!("nbdgm {}: {destination}: no answer in time", self.command);
                Ok(None)
            }
        }
    }
}
