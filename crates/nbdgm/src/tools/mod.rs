//! The subcommands other than `decode`, and what the network tools share: the daemon and
//! standalone options, the one rule choosing between them ([`decide`]), the duration
//! syntax of every timeout, typed errors. Each network tool works through a running
//! daemon's local API (docs/api.md) or standalone from its own sockets.

#[cfg(feature = "audit")]
pub mod audit;
pub mod browse;
pub mod dcping;
pub mod events;
#[cfg(feature = "audit")]
pub mod firewall;
pub mod listen;
pub mod lookup;
pub mod message;
#[cfg(feature = "monitor")]
pub mod monitor;
#[cfg(feature = "monitor")]
pub mod monitor_agent;
pub mod probe;
pub mod send;
pub mod serve;
pub mod stats;
pub mod status;
pub mod watch;
pub mod wins;

use clap::{Args, ValueEnum};
use nbdgm_client::Client;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

/// Why a network tool stopped (printed as `nbdgm COMMAND: message`, exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("no daemon at {path}: {source} (start one with `nbdgm serve`)")]
    NoDaemon {
        path: String,
        #[source]
        source: nbdgm_client::Error,
    },
    /// `--daemon` with an option the daemon's request cannot carry.
    #[error("{flag} works only without a daemon: drop --daemon, or drop {flag}")]
    DaemonCannot { flag: &'static str },
    #[error("--interface {arg}: {reason}")]
    Interface { arg: String, reason: String },
    #[error("cannot list interfaces: {0}")]
    ListInterfaces(String),
    #[error("no IPv4 interface is up; give --interface IP/PREFIX")]
    NoInterface,
    #[error("{0:?} is not an IPv4 address")]
    NotIpv4(String),
    /// An argument that does not parse (a name, hex, a mailslot).
    #[error("bad {what} {value:?}: {reason}")]
    BadValue {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// An argument out of its range, or options that do not go together.
    #[error("{0}")]
    Usage(String),
    /// A packet or message that cannot be built from the arguments.
    #[error("{0}")]
    Encode(String),
    #[error("{context}: {source}")]
    IoAt {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Api(#[from] nbdgm_client::Error),
    #[error(transparent)]
    Message(#[from] message::MessageError),
    /// A step that failed (sending, subscribing, the standalone node), with its context.
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    /// A `bad WHAT "VALUE": REASON` error.
    pub fn bad(what: &'static str, value: &str, reason: impl std::fmt::Display) -> ToolError {
        ToolError::BadValue {
            what,
            value: value.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// How to reach the daemon.
#[derive(Args, Debug, Clone, Default)]
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

/// The options of a command that works without a daemon, from its own sockets.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct StandaloneArgs {
    /// Standalone: interface IP/PREFIX [default: the first up IPv4 interface].
    #[arg(long, value_name = "IP/PREFIX")]
    pub interface: Option<String>,
    /// Standalone: local address to bind [default: 0.0.0.0, which also receives broadcasts].
    #[arg(long, value_name = "IP")]
    pub bind: Option<Ipv4Addr>,
    /// Datagram port [default: 138; binding it needs root or CAP_NET_BIND_SERVICE].
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Standalone: name-service port of other nodes, for resolving names [default: 137].
    #[arg(long, value_name = "PORT")]
    pub name_port: Option<u16>,
}

impl StandaloneArgs {
    /// RFC 1002 §4.4: the datagram service port.
    pub const DATAGRAM_PORT: u16 = 138;
    /// RFC 1002 §4.2: the name service port.
    pub const NAME_PORT: u16 = 137;

    pub fn bind(&self) -> Ipv4Addr {
        self.bind.unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(Self::DATAGRAM_PORT)
    }

    pub fn name_port(&self) -> u16 {
        self.name_port.unwrap_or(Self::NAME_PORT)
    }

    /// The interface to use: `--interface`, else the first up IPv4 interface.
    pub fn interface(&self) -> Result<nbdgm_node::Interface, ToolError> {
        standalone_interface(self.interface.as_deref())
    }

    /// The options given, by their spelling (a port equal to its default is as if not
    /// given: it changes nothing).
    pub fn given(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.interface.is_some() {
            out.push("--interface");
        }
        if self.bind.is_some() {
            out.push("--bind");
        }
        if self.port.is_some_and(|p| p != Self::DATAGRAM_PORT) {
            out.push("--port");
        }
        if self.name_port.is_some_and(|p| p != Self::NAME_PORT) {
            out.push("--name-port");
        }
        out
    }

    /// The node of a one-shot standalone command: these ports, no NODE STATUS answers,
    /// no DATAGRAM ERROR for names it does not own.
    pub fn node_config(&self) -> Result<nbdgm_node::NodeConfig, ToolError> {
        let mut config = nbdgm_node::NodeConfig::new(self.interface()?);
        config.datagram_port = self.port();
        config.name_port = self.name_port();
        config.node_status = false;
        config.datagram_error_on_unknown = false;
        Ok(config)
    }
}

/// What every network tool with a standalone mode takes: the output format, the
/// standalone options and the daemon options.
#[derive(Args, Debug, Clone, Default)]
pub struct NetArgs {
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
    #[command(flatten)]
    pub standalone: StandaloneArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

/// Output format of the tools.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutFormat {
    #[default]
    Text,
    Json,
    Ndjson,
}

/// Where a command runs.
pub enum Via {
    Daemon(Box<Client>),
    Standalone,
}

/// Where a command should run, before any socket is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Standalone,
    /// Through the daemon; `required`: fail when none answers (else go standalone).
    Daemon {
        required: bool,
    },
}

/// The rule every network tool follows (docs/cli.md, "Daemon or standalone"):
/// `--standalone` runs standalone; `--daemon` runs through the daemon, and each
/// standalone option given must be one the daemon's request can carry (`daemon_takes`),
/// else it is a usage error naming the option; with neither, a standalone option given
/// means standalone, and otherwise the daemon is used when it answers.
pub fn decide(
    daemon: &DaemonArgs,
    given: &[&'static str],
    daemon_takes: &[&'static str],
) -> Result<Choice, ToolError> {
    if daemon.standalone {
        return Ok(Choice::Standalone);
    }
    if daemon.daemon {
        if let Some(flag) = given.iter().find(|f| !daemon_takes.contains(f)) {
            return Err(ToolError::DaemonCannot { flag });
        }
        return Ok(Choice::Daemon { required: true });
    }
    if given.is_empty() {
        Ok(Choice::Daemon { required: false })
    } else {
        Ok(Choice::Standalone)
    }
}

impl DaemonArgs {
    /// Daemon or standalone by [`decide`], connecting to the daemon when chosen. A
    /// missing or refusing socket means standalone, except with `--daemon`.
    pub fn choose(
        &self,
        given: &[&'static str],
        daemon_takes: &[&'static str],
    ) -> Result<Via, ToolError> {
        let required = match decide(self, given, daemon_takes)? {
            Choice::Standalone => return Ok(Via::Standalone),
            Choice::Daemon { required } => required,
        };
        let path = self
            .api_socket
            .clone()
            .unwrap_or_else(nbdgm_client::default_socket_path);
        match Client::connect(&path) {
            Ok(c) => Ok(Via::Daemon(Box::new(c))),
            Err(source) if required => Err(ToolError::NoDaemon {
                path: path.display().to_string(),
                source,
            }),
            Err(_) => Ok(Via::Standalone),
        }
    }

    /// [`DaemonArgs::choose`] for a command given no standalone option.
    pub fn connect(&self) -> Result<Via, ToolError> {
        self.choose(&[], &[])
    }
}

/// A `--timeout DURATION` option with one command's old spelling as a hidden alias that
/// keeps its old unit (docs/cli.md, "Renamed flags"):
/// `timeout_args!(Name, old_field, old_parser, "UNIT", "help" [, default = DURATION])`.
/// `get()` is the duration given (either spelling), or the default.
macro_rules! timeout_args {
    (@struct $name:ident, $old:ident, $parser:path, $unit:literal, $help:literal) => {
        #[doc = concat!("`--timeout`, or the old `--", stringify!($old), "` in ", $unit, ".")]
        #[derive(clap::Args, Debug, Clone, Default)]
        pub struct $name {
            #[doc = $help]
            #[arg(long, value_name = "DURATION", value_parser = $crate::tools::parse_duration)]
            pub timeout: Option<std::time::Duration>,
            /// Old spelling of --timeout, in its old unit.
            #[arg(
                long,
                hide = true,
                value_name = $unit,
                value_parser = $parser,
                conflicts_with = "timeout"
            )]
            pub $old: Option<std::time::Duration>,
        }
    };
    ($name:ident, $old:ident, $parser:path, $unit:literal, $help:literal) => {
        $crate::tools::timeout_args!(@struct $name, $old, $parser, $unit, $help);
        impl $name {
            pub fn get(&self) -> Option<std::time::Duration> {
                self.timeout.or(self.$old)
            }
        }
    };
    ($name:ident, $old:ident, $parser:path, $unit:literal, $help:literal, default = $d:expr) => {
        $crate::tools::timeout_args!(@struct $name, $old, $parser, $unit, $help);
        impl $name {
            pub const DEFAULT: std::time::Duration = $d;

            pub fn get(&self) -> std::time::Duration {
                self.timeout.or(self.$old).unwrap_or(Self::DEFAULT)
            }
        }
    };
}
pub(crate) use timeout_args;

/// Why a duration argument does not parse.
#[derive(Debug, thiserror::Error)]
pub enum DurationError {
    #[error("{0} (write a number and a unit: 1.5s, 500ms, 2m)")]
    Syntax(#[from] humantime::DurationError),
    #[error("{0:?} is not a number of {1} (0 or more)")]
    Number(String, &'static str),
}

/// A `--timeout` value: `1.5s`, `500ms`, `2m`, `1h 30m` (humantime syntax).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    Ok(humantime::parse_duration(s.trim())?)
}

/// The value of an old seconds option (`--timeout-s 2.5`, `--wait 3`).
pub fn parse_seconds(s: &str) -> Result<Duration, DurationError> {
    s.trim()
        .parse::<f64>()
        .ok()
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| DurationError::Number(s.to_owned(), "seconds"))
}

/// The value of an old milliseconds option (`--timeout-ms 500`, `--wait-ms 750`).
pub fn parse_millis(s: &str) -> Result<Duration, DurationError> {
    s.trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| DurationError::Number(s.to_owned(), "milliseconds"))
}

/// A duration as the help and the messages show it (`1s 500ms`).
pub fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// `Err` unless `d` is at most `max` (`--timeout must be at most 1h`).
pub fn at_most(flag: &str, d: Duration, max: Duration) -> Result<Duration, ToolError> {
    if d > max {
        return Err(ToolError::Usage(format!(
            "{flag} must be at most {}",
            show(max)
        )));
    }
    Ok(d)
}

/// The interface a standalone command uses: `--interface`, else the first up,
/// non-loopback IPv4 interface.
pub fn standalone_interface(arg: Option<&str>) -> Result<nbdgm_node::Interface, ToolError> {
    if let Some(s) = arg {
        return nbdgm_node::Interface::parse(s).map_err(|e| ToolError::Interface {
            arg: s.to_owned(),
            reason: e.to_string(),
        });
    }
    let found =
        nbdgm_runtime::system_interfaces().map_err(|e| ToolError::ListInterfaces(e.to_string()))?;
    let (addr, prefix, broadcast) = found.into_iter().next().ok_or(ToolError::NoInterface)?;
    Ok(nbdgm_node::Interface {
        addr,
        prefix,
        broadcast,
    })
}

/// The daemon's node name: the name of its first unique `<00>` name (for the sender of
/// a message, the ComputerName of a NETLOGON request).
pub fn daemon_node_name(client: &mut Client) -> Option<String> {
    let names = client.names().ok()?;
    names
        .interfaces
        .iter()
        .flat_map(|i| i.names.iter())
        .filter(|n| !n.group)
        .filter_map(|n| n.name.parse::<nbdgm_wire::Name>().ok())
        .find(|n| n.suffix() == 0)
        .map(|n| n.name())
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
pub fn ipv4(s: &str) -> Result<Ipv4Addr, ToolError> {
    s.parse().map_err(|_| ToolError::NotIpv4(s.to_owned()))
}

/// A tool's exit status: its own, or on error [`crate::exit::USAGE`] after printing
/// `nbdgm COMMAND: error` on stderr (escaped: errors can quote what the network sent).
pub fn exit_status(command: &str, result: Result<u8, ToolError>) -> u8 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "nbdgm {command}: {}",
                nbdgm_wire::text::Escaped(&e.to_string())
            );
            crate::exit::USAGE
        }
    }
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

#[cfg(test)]
mod tests;
