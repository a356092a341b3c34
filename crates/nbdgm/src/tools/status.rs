//! `nbdgm status`: NODE STATUS of a host (RFC 1002 §4.2.17–4.2.18), like `nmblookup -A`.

use super::{parse_millis, print_json, DaemonArgs, OutFormat, ToolError, Via};
use crate::exit;
use crate::nameq::{self, Target};
use clap::Args;
use nbdgm_client::proto::StatusResult;
use nbdgm_wire::nbns::{self, RData};
use nbdgm_wire::text::Escaped;
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm status 198.51.100.10\n  \
    nbdgm status 198.51.100.10 --name 'SAMBAA<20>' --format json\n  \
    nbdgm status 198.51.100.10 --port 1137 --tries 1 --timeout 500ms\n\n\
--port asks from this command's own socket (never through the daemon; with --daemon it\n\
is an error). Exit codes: 0 answered, 1 no answer, 2 usage or network error.")]
pub struct StatusArgs {
    /// The host to ask.
    pub address: String,
    /// The name in the question [default: `*`].
    #[arg(long)]
    pub name: Option<String>,
    /// Name-service port of the target.
    #[arg(long, default_value_t = 137)]
    pub port: u16,
    /// Tries, each waiting --timeout.
    #[arg(long, default_value_t = 3)]
    pub tries: u32,
    #[command(flatten)]
    pub timeout: StatusTimeout,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

super::timeout_args!(
    StatusTimeout,
    wait_ms,
    parse_millis,
    "MS",
    "Wait per try, e.g. 1s, 500ms [default: 1s].",
    default = Duration::from_secs(1)
);

pub fn run(args: &StatusArgs) -> u8 {
    super::exit_status("status", status(args))
}

/// The API's view of a NODE STATUS RESPONSE.
pub fn status_result(address: Ipv4Addr, st: &nbns::NodeStatus) -> StatusResult {
    StatusResult::from_names(
        address.into(),
        st.names.iter().map(|n| (&n.name, n.flags)),
        st.statistics.as_ref().map(|s| s.unit_id),
    )
}

fn status(args: &StatusArgs) -> Result<u8, ToolError> {
    let address = super::ipv4(&args.address)?;
    let qname = match &args.name {
        Some(n) => n.parse().map_err(|e| ToolError::bad("name", n, e))?,
        None => Name::wildcard(),
    };
    let given: &[&'static str] = if args.port != 137 { &["--port"] } else { &[] };
    let via = args.daemon.choose(given, &[])?;
    let result = match via {
        Via::Daemon(mut client) => {
            use nbdgm_client::{proto::ErrorCode, Error};
            let n = args.name.as_deref();
            match client.status(address.into(), n) {
                Ok(r) => Some(r),
                Err(Error::Server {
                    code: ErrorCode::Timeout | ErrorCode::NotFound,
                    ..
                }) => None,
                Err(e) => return Err(e.into()),
            }
        }
        Via::Standalone => {
            let q = nameq::status_query(&qname);
            let answers = nameq::exchange(
                &q,
                Target {
                    ip: address,
                    port: args.port,
                    broadcast: false,
                },
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                args.tries,
                args.timeout.get(),
                false,
            )
            .map_err(|source| ToolError::IoAt {
                context: format!("query to {address}:{}", args.port),
                source,
            })?;
            answers.iter().find_map(|a| {
                a.packet.answers.iter().find_map(|rr| match &rr.rdata {
                    RData::NodeStatus(st) => Some(status_result(address, st)),
                    _ => None,
                })
            })
        }
    };
    let Some(r) = result else {
        eprintln!("{address}: no node status answer");
        return Ok(exit::FINDINGS);
    };
    match args.format {
        OutFormat::Text => {
            println!("Node status of {address}:");
            for n in &r.names {
                let mut flags = vec![if n.group { "group" } else { "unique" }];
                if n.active {
                    flags.push("active");
                }
                if n.conflict {
                    flags.push("conflict");
                }
                if n.deregistering {
                    flags.push("deregistering");
                }
                if n.permanent {
                    flags.push("permanent");
                }
                // Names come from the answering host (or the daemon): escaped.
                println!(
                    "  {:<22} {}-node {}",
                    Escaped(&n.name),
                    Escaped(&n.node_type.to_string()),
                    flags.join(" ")
                );
            }
            if let Some(mac) = &r.mac {
                println!("  unit id (MAC): {}", Escaped(mac));
            }
        }
        f => print_json(&r, f),
    }
    Ok(exit::OK)
}
