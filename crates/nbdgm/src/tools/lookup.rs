//! `nbdgm lookup`: resolve a NetBIOS name (NAME QUERY, RFC 1002 §4.2.12–4.2.14, §5.1.1).

use super::{print_json, DaemonArgs, OutFormat, Via};
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
    nbdgm lookup 'SAMBAA<20>' --server 198.51.100.10\n  \
    nbdgm lookup 'TESTGROUP<1d>' --broadcast 198.51.100.255 --format json\n\n\
Exit codes: 0 found, 1 no positive answer, 2 usage or network error.")]
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
    /// Tries, each waiting --wait-ms.
    #[arg(long, default_value_t = 3)]
    pub tries: u32,
    /// Wait per try in milliseconds.
    #[arg(long, default_value_t = 750)]
    pub wait_ms: u64,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

pub fn run(args: &LookupArgs) -> u8 {
    match lookup(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nbdgm lookup: {}", nbdgm_wire::text::Escaped(&e));
            exit::USAGE
        }
    }
}

fn lookup(args: &LookupArgs) -> Result<u8, String> {
    let name: Name = args
        .name
        .parse()
        .map_err(|e| format!("bad name {:?}: {e}", args.name))?;
    let server = args.server.as_deref().map(super::ipv4).transpose()?;
    let via = if args.broadcast.is_some() || args.port != 137 {
        Via::Standalone // only the standalone path can aim at another address or port
    } else {
        args.daemon.connect()?
    };
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
                Err(e) => return Err(e.to_string()),
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
                Duration::from_millis(args.wait_ms),
                target.broadcast,
            )
            .map_err(|e| format!("query to {}:{}: {e}", target.ip, target.port))?;
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
