//! `nbdgm send`: send a datagram, optionally as a mailslot write (RFC 1002 §5.3.1;
//! MS-MAIL §2.2.1).

use super::{print_json, DaemonArgs, OutFormat, Via};
use crate::exit;
use clap::{ArgGroup, Args};
use nbdgm_client::proto::{SendArgs as ApiSend, SendMode as ApiMode};
use nbdgm_node::{NodeConfig, SendMode, SendRequest};
use nbdgm_wire::mailslot::MailslotWrite;
use nbdgm_wire::Name;
use serde_json::json;
use std::net::Ipv4Addr;
use std::time::Duration;

#[derive(Args, Debug)]
#[command(
    group(ArgGroup::new("payload").required(true).args(["text", "hex", "file"])),
    group(ArgGroup::new("mode").args(["unique", "group", "broadcast"])),
    after_help = "Examples:\n  \
    nbdgm send --to 'FRED<03>' --text 'hello'                  # DIRECT_UNIQUE, resolved by broadcast\n  \
    nbdgm send --to 'FRED<03>' --address 192.0.2.7 --text 'hi'  # DIRECT_UNIQUE to that host, no lookup\n  \
    nbdgm send --to 'WORKGROUP<1d>' --group --mailslot '\\MAILSLOT\\BROWSE' --hex 01000000...\n  \
    nbdgm send --broadcast --mailslot '\\MAILSLOT\\APP' --file message.bin --standalone --interface 198.51.100.20/24\n\n\
Without a daemon it binds UDP 138 on --bind (needs root or CAP_NET_BIND_SERVICE, or --port).\n\
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
    /// Standalone: largest IP datagram before fragmenting (RFC 1002 MAX_DATAGRAM_LENGTH).
    #[arg(long, default_value_t = 576)]
    pub max_length: usize,
    /// Give up after this many milliseconds (name resolution included).
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

pub fn run(args: &SendArgs) -> u8 {
    match send(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nbdgm send: {}", nbdgm_wire::text::Escaped(&e.to_string()));
            exit::USAGE
        }
    }
}

fn payload(args: &SendArgs) -> Result<Vec<u8>, String> {
    let data = if let Some(t) = &args.text {
        t.as_bytes().to_vec()
    } else if let Some(h) = &args.hex {
        let clean: String = h
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect();
        nbdgm_wire::hex::decode(&clean).ok_or("--hex is not valid hex")?
    } else if let Some(f) = &args.file {
        if f == "-" {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map_err(|e| e.to_string())?;
            v
        } else {
            std::fs::read(f).map_err(|e| format!("{f}: {e}"))?
        }
    } else {
        Vec::new()
    };
    Ok(data)
}

fn send(args: &SendArgs) -> Result<u8, String> {
    let data = payload(args)?;
    let at = args
        .address
        .map(|ip| std::net::SocketAddrV4::new(ip, args.port));
    let mode = match (args.broadcast, args.group, at) {
        (true, _, _) => SendMode::Broadcast,
        (false, true, None) => SendMode::Group,
        (false, true, Some(a)) => SendMode::GroupAt(a),
        (false, false, None) => SendMode::Unique,
        (false, false, Some(a)) => SendMode::UniqueAt(a),
    };
    let destination: Name = match &args.to {
        Some(t) => t.parse().map_err(|e| format!("bad --to {t:?}: {e}"))?,
        None => Name::wildcard(),
    };
    if let Some(m) = &args.mailslot {
        if !m.to_ascii_uppercase().starts_with("\\MAILSLOT\\") {
            return Err(format!("--mailslot {m:?} must start with \\MAILSLOT\\"));
        }
    }
    let standalone_only = args.interface.is_some() || args.port != 138;
    let via = if standalone_only {
        Via::Standalone
    } else {
        args.daemon.connect()?
    };
    let report = match via {
        Via::Daemon(mut client) => {
            let mut a = ApiSend::new(
                destination.to_string(),
                match mode {
                    SendMode::Unique | SendMode::UniqueAt(_) => ApiMode::Unique,
                    SendMode::Group | SendMode::GroupAt(_) => ApiMode::Group,
                    SendMode::Broadcast => ApiMode::Broadcast,
                },
                &data,
            );
            a.address = args.address.map(Into::into);
            a.source = args.from.clone();
            a.mailslot = args.mailslot.clone();
            client
                .set_timeout(Duration::from_millis(args.timeout_ms))
                .map_err(|e| e.to_string())?;
            use nbdgm_client::{proto::ErrorCode, Error};
            match client.send(a) {
                Ok(r) => {
                    json!({"to": r.to.to_string(), "fragments": r.fragments, "bytes": r.bytes, "via": "daemon"})
                }
                Err(Error::Server {
                    code: ErrorCode::NotFound | ErrorCode::Timeout,
                    message,
                }) => {
                    eprintln!("nbdgm send: {}", nbdgm_wire::text::Escaped(&message));
                    return Ok(exit::FINDINGS);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Via::Standalone => match standalone(args, mode, destination, data)? {
            Some(v) => v,
            None => return Ok(exit::FINDINGS),
        },
    };
    match args.format {
        OutFormat::Text => println!(
            "sent {} bytes in {} fragment(s) to {}",
            report["bytes"],
            report["fragments"],
            nbdgm_wire::text::Escaped(report["to"].as_str().unwrap_or("?"))
        ),
        f => print_json(&report, f),
    }
    Ok(exit::OK)
}

fn standalone(
    args: &SendArgs,
    mode: SendMode,
    destination: Name,
    data: Vec<u8>,
) -> Result<Option<serde_json::Value>, String> {
    let interface = super::standalone_interface(args.interface.as_deref())?;
    let bind: Ipv4Addr = super::ipv4(&args.bind)?;
    let source: Name = match &args.from {
        Some(f) => f.parse().map_err(|e| format!("bad --from {f:?}: {e}"))?,
        None => Name::new(&super::host_netbios_name(), 0).map_err(|e| e.to_string())?,
    };
    let user_data = match &args.mailslot {
        Some(m) => MailslotWrite::new(m, data)
            .to_bytes()
            .map_err(|e| format!("mailslot write: {e}"))?,
        None => data,
    };
    let bytes = user_data.len();
    let mut config = NodeConfig::new(interface);
    config.datagram_port = args.port;
    config.name_port = args.name_port;
    config.max_datagram_length = args.max_length;
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
            "to": info.to.to_string(),
            "fragments": info.fragments,
            "bytes": bytes,
            "via": "standalone",
        }))),
        Some(Err(e)) => {
            eprintln!("nbdgm send: {destination}: {e}");
            Ok(None)
        }
        None => {
            eprintln!("nbdgm send: {destination}: no answer in time");
            Ok(None)
        }
    }
}
