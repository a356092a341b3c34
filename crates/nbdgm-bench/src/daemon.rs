//! `nbdgm serve` under benchmark: its configuration file, starting it (on loopback or in a
//! lab host) with the `nbdgm_lab::daemon` harness, and waiting for its names and master
//! role; reading its counters from the API.

use anyhow::{bail, Context};
use nbdgm_client::proto::NameState;
use nbdgm_client::Client;
pub use nbdgm_lab::daemon::Daemon;
use nbdgm_lab::daemon::DaemonOptions;
use nbdgm_lab::Host;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `[limits]` raised so that no per-source limit applies in a throughput bench.
pub const RAISED_LIMITS: &str = "[limits]\n\
    rx_per_source = { rate = 1e9, burst = 1000000 }\n\
    replies_per_source = { rate = 1e9, burst = 1000000 }\n";

/// What goes into the daemon's TOML file.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub name: String,
    pub workgroup: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub ports: (u16, u16),
    pub socket: PathBuf,
    /// [`RAISED_LIMITS`] instead of the defaults (rx 200/s, replies 50/s per source).
    pub raised_limits: bool,
    /// More TOML appended as is.
    pub extra: String,
}

impl DaemonConfig {
    pub fn toml(&self) -> String {
        format!(
            "# written by nbdgm-bench\n[node]\nname = \"{}\"\nworkgroup = \"{}\"\n\n\
             [[interface]]\naddress = \"{}/{}\"\n\n[ports]\nname = {}\ndatagram = {}\n\n\
             [api]\nsocket = \"{}\"\n\n{}\n{}\n",
            self.name,
            self.workgroup,
            self.address,
            self.prefix,
            self.ports.0,
            self.ports.1,
            self.socket.display(),
            if self.raised_limits {
                RAISED_LIMITS
            } else {
                ""
            },
            self.extra,
        )
    }

    /// Write the file to `path`.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.toml()).with_context(|| format!("write {}", path.display()))
    }
}

/// Two UDP ports that are free on `addr` right now (ephemeral, chosen by the kernel).
pub fn free_ports(addr: Ipv4Addr) -> anyhow::Result<(u16, u16)> {
    let a = UdpSocket::bind((addr, 0))?;
    let b = UdpSocket::bind((addr, 0))?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

/// Start `bin serve` from the configuration text `toml` whose API socket is `socket`
/// (files `dir/{tag}.toml` and the stderr log `dir/{tag}.log`), in `host`'s namespace
/// when given, and wait (≤ 10 s) for the API. The `nbdgm_lab::daemon` harness: dropping
/// the handle stops the daemon by PID (SIGTERM, SIGKILL after 5 s).
pub fn start_daemon(
    bin: &Path,
    toml: &str,
    socket: &Path,
    dir: &Path,
    tag: &str,
    host: Option<&Host>,
) -> anyhow::Result<Daemon> {
    let mut opts = DaemonOptions::new(bin, dir, tag, toml, socket);
    if let Some(h) = host {
        opts = opts.in_host(h);
    }
    Ok(Daemon::start(opts)?)
}

impl DaemonConfig {
    /// [`start_daemon`] with this configuration.
    pub fn start(
        &self,
        bin: &Path,
        dir: &Path,
        tag: &str,
        host: Option<&Host>,
    ) -> anyhow::Result<Daemon> {
        start_daemon(bin, &self.toml(), &self.socket, dir, tag, host)
    }
}

/// Wait (≤ `timeout`) until the daemon is the local master browser of its workgroup.
pub fn wait_master(socket: &Path, timeout: Duration) -> anyhow::Result<()> {
    let mut c = Client::connect(socket)?;
    let until = Instant::now() + timeout;
    loop {
        let r = c.browse(None)?;
        if r.interfaces.first().is_some_and(|i| i.role == "master") {
            return Ok(());
        }
        if Instant::now() > until {
            bail!("nbdgm did not become master in {timeout:?}: {r:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Wait (≤ `timeout`) until every name in `want` is registered.
pub fn wait_names(socket: &Path, want: &[&str], timeout: Duration) -> anyhow::Result<()> {
    let mut c = Client::connect(socket)?;
    let until = Instant::now() + timeout;
    loop {
        let names = c.names()?;
        let ok = want.iter().all(|w| {
            names.interfaces.iter().any(|i| {
                i.names
                    .iter()
                    .any(|n| n.name == *w && n.state == NameState::Registered)
            })
        });
        if ok {
            return Ok(());
        }
        if Instant::now() >= until {
            bail!("names {want:?} not registered after {timeout:?}: {names:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The daemon's `stats` result.
pub fn stats(socket: &Path) -> anyhow::Result<serde_json::Value> {
    let mut c = Client::connect(socket)?;
    Ok(c.stats()?)
}

/// A counter from the first interface of a `stats` result, by JSON pointer below
/// `/interfaces/0` (e.g. `/node/datagrams_delivered`); 0 when absent.
pub fn iface_counter(stats: &serde_json::Value, pointer: &str) -> u64 {
    stats
        .pointer(&format!("/interfaces/0{pointer}"))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// An API-layer counter (`/api/...`); 0 when absent.
pub fn api_counter(stats: &serde_json::Value, key: &str) -> u64 {
    stats
        .pointer(&format!("/api/{key}"))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}
