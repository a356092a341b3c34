//! `nbdgm lookup`: resolve a NetBIOS name (NAME QUERY, RFC 1002 §4.2.12–4.2.14, §5.1.1).

use super::{parse_millis, print_json, DaemonArgs, OutFormat, ToolError, Via};
use crate::exit;
use crate::nameq::{self, Target};
use clap::Args;
use nbdgm_wire::Name;
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm lookup SAMBAA                      # NAME<00> by broadcast (through the daemon if one runs)\n  \
    nbdgm lookup 'SAMBAA<20>' --server 198.51.100.10 --tries 1 --timeout 2s\n  \
    nbdgm lookup 'TESTGROUP<1d>' --broadcast 198.51.100.255 --format json\n\n\
--broadcast, --port and --interface query from this command's own socket (never through\n\
the daemon; with --daemon they are an error). Exit codes: 0 found, 1 no positive answer,\n\
2 usage or network error.")]
pub struct LookupArgs {
    /// The name: NAME, NAME<xx> or NAME<xx>.scope (NAME alone means NAME<00>).
    pub name: String,
    /// Broadcast the query to this address [default: the interface's broadcast].
    #[arg(long, value_name = "IP", conflicts_with = "server")]
    pub broadcast: Option<String>,
    /// Ask this host by unicast (a node or an NBNS/WINS server).
    #[arg(long, value_name = "IP")]
    pub server: Option<String>,
    /// Interface for standalone broadcasts, IP/PREFIX [default: the first one].
    #[arg(long, value_name = "IP/PREFIX")]
    pub interface: Option<String>,
    /// Name-service port of the target.
    #[arg(long, default_value_t = 137)]
    pub port: u16,
    /// Tries, each waiting --timeout.
    #[arg(long, default_value_t = 3)]
    pub tries: u32,
    #[command(flatten)]
    pub timeout: LookupTimeout,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

super::timeout_args!(
    LookupTimeout,
    wait_ms,
    parse_millis,
    "MS",
    "Wait per try, e.g. 750ms, 2s [default: 750ms].",
    default = Duration::from_millis(750)
);

pub fn run(args: &LookupArgs) -> u8 {
    super::exit_status("lookup", lookup(args))
}

/// The options that aim the query elsewhere than the daemon could: standalone only.
fn standalone_given(args: &LookupArgs) -> Vec<&'static str> {
    let mut given = Vec::new();
    if args.broadcast.is_some() {
        given.push("--broadcast");
    }
    if args.port != 137 {
        given.push("--port");
    }
    if args.interface.is_some() {
        given.push("--interface");
    }
    given
}

fn lookup(args: &LookupArgs) -> Result<u8, ToolError> {
    let name: Name = args
        .name
        .parse()
        .map_err(|e| ToolError::bad("name", &args.name, e))?;
    let server = args.server.as_deref().map(super::ipv4).transpose()?;
    let via = args.daemon.choose(&standalone_given(args), &[])?;
    let wait = args.timeout.get();
    let addresses: Vec<serde_json::Value> = match via {
        Via::Daemon(mut client) => {
            use nbdgm_client::{proto::ErrorCode, Error};
            match client.lookup(&name.to_string(), server.map(Into::into)) {
                Ok(r) => r
                    .addresses
                    .iter()
                    .map(|a| json!({"address": a.address, "group": a.group, "node_type": a.node_type}))
                    .collect(),
                Err(Error::Server {
                    code: ErrorCode::NotFound | ErrorCode::Timeout,
                    ..
                }) => Vec::new(),
                Err(e) => return Err(e.into()),
            }
        }
        Via::Standalone => {
            let target = match server {
                Some(ip) => Target {
                    ip,
                    port: args.port,
                    broadcast: false,
                },
                None => {
                    let ip = match args.broadcast.as_deref() {
                        Some(b) => super::ipv4(b)?,
                        None => super::standalone_interface(args.interface.as_deref())?.broadcast(),
                    };
                    Target {
                        ip,
                        port: args.port,
                        broadcast: true,
                    }
                }
            };
            let q = nameq::name_query(&name, target.broadcast);
            let answers = nameq::exchange(
                &q,
                target,
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                args.tries,
                wait,
                target.broadcast,
            )
            .map_err(|source| ToolError::IoAt {
                context: format!("query to {}:{}", target.ip, target.port),
                source,
            })?;
            for n in nameq::negatives(&answers) {
                if args.format == OutFormat::Text {
                    eprintln!(
                        "negative answer: {}",
                        nbdgm_wire::text::Escaped(&n.to_string())
                    );
                }
            }
            nameq::addresses(&answers)
                .into_iter()
                .map(|a| serde_json::to_value(a).unwrap_or_default())
                .collect()
        }
    };
    let found = !addresses.is_empty();
    match args.format {
        OutFormat::Text => {
            if !found {
                eprintln!("{name}: no positive answer");
            }
            for a in &addresses {
                let group = if a["group"].as_bool() == Some(true) {
                    "group"
                } else {
                    "unique"
                };
                use nbdgm_wire::text::Escaped;
                let from = a["from"]
                    .as_str()
                    .map(|f| format!("  (from {})", Escaped(f)))
                    .unwrap_or_default();
                println!(
                    "{:<15} {} {} {}-node{}",
                    Escaped(a["address"].as_str().unwrap_or("?")),
                    name,
                    group,
                    Escaped(a["node_type"].as_str().unwrap_or("?")),
                    from
                );
            }
        }
        f => print_json(
            &json!({"name": name.to_string(), "found": found, "addresses": addresses}),
            f,
        ),
    }
    Ok(if found { exit::OK } else { exit::FINDINGS })
}
