//! Network tools: `send`, `listen`, `lookup`, `status`, `stats`, `serve`. Each works
//! through a running daemon's local API when one answers, or standalone from its own
//! sockets (`--standalone`, or when no daemon runs).

#[cfg(feature = "audit")]
pub mod audit;
pub mod browse;
pub mod dcping;
#[cfg(feature = "audit")]
pub mod firewall;
pub mod listen;
pub mod lookup;
pub mod message;
#[cfg(feature = "monitor")]
pub mod monitor;
pub mod probe;
pub mod send;
pub mod serve;
pub mod stats;
pub mod status;

use clap::{Args, ValueEnum};
use nbdgm_client::Client;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// How to reach the daemon.
#[derive(Args, Debug, Clone)]
pub struct DaemonArgs {
    /// The daemon's API socket [default: $NBDGM_API_SOCKET or /run/nbdgm/api.sock].
    #[arg(long, value_name = "PATH")]
    pub api_socket: Option<PathBuf>,
    /// Do not use a daemon even if one runs; use this command's own sockets.
    #[arg(long, conflicts_with = "daemon")]
    pub standalone: bool,
    /// Fail unless a daemon answers (never fall back to standalone).
    #[arg(long)]
    pub daemon: bool,
}

/// Output format of the tools.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    Text,
    Json,
    Ndjson,
}

/// Where a command runs.
pub enum Via {
    Daemon(Box<Client>),
    Standalone,
}

impl DaemonArgs {
    /// Connect to the daemon unless told not to. A missing or refusing socket means
    /// standalone, except with `--daemon`.
    pub fn connect(&self) -> Result<Via, String> {
        if self.standalone {
            return Ok(Via::Standalone);
        }
        let path = self
            .api_socket
            .clone()
            .unwrap_or_else(nbdgm_client::default_socket_path);
        match Client::connect(&path) {
            Ok(c) => Ok(Via::Daemon(Box::new(c))),
            Err(e) if self.daemon => Err(format!(
                "no daemon at {}: {e} (start one with `nbdgm serve`)",
                path.display()
            )),
            Err(_) => Ok(Via::Standalone),
        }
    }
}

/// The interface a standalone command uses: `--interface`, else the first up,
/// non-loopback IPv4 interface.
pub fn standalone_interface(arg: Option<&str>) -> Result<nbdgm_node::Interface, String> {
    if let Some(s) = arg {
        return nbdgm_node::Interface::parse(s).map_err(|e| format!("--interface {s}: {e}"));
    }
    let found = nbdgm_daemon::config::system_interfaces()
        .map_err(|e| format!("cannot list interfaces: {e}"))?;
    let (addr, prefix, broadcast) = found
        .into_iter()
        .next()
        .ok_or("no IPv4 interface is up; give --interface IP/PREFIX")?;
    Ok(nbdgm_node::Interface {
        addr,
        prefix,
        broadcast,
    })
}

/// A NetBIOS name for commands that send without a daemon: the host name, upper-cased
/// and cut to 15 characters.
pub fn host_netbios_name() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "NBDGM".into());
    let short = host
        .split('.')
        .next()
        .unwrap_or("NBDGM")
        .to_ascii_uppercase();
    let cut: String = short.chars().take(15).collect();
    if cut.is_empty() {
        "NBDGM".into()
    } else {
        cut
    }
}

/// Parse an IPv4 address argument.
pub fn ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an IPv4 address"))
}

/// Print a JSON value (pretty for `json`, one line for `ndjson`).
pub fn print_json(v: &impl serde::Serialize, format: OutFormat) {
    let s = match format {
        OutFormat::Ndjson => serde_json::to_string(v),
        _ => serde_json::to_string_pretty(v),
    };
    if let Ok(s) = s {
        println!("{s}");
    }
}
