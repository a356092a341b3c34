//! `nbdgm serve` under test: its configuration file, starting it on loopback as a child
//! that is stopped by PID (SIGTERM, then SIGKILL) when dropped, and waiting for its API
//! and names.

use anyhow::{bail, Context};
use nbdgm_client::proto::NameState;
use nbdgm_client::Client;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// A `nbdgm serve` child on the host (loopback benches). Dropping it stops it by PID.
pub struct LocalDaemon {
    child: Option<Child>,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl LocalDaemon {
    /// Write `cfg` next to `log`, start `bin serve --config`, wait (≤ 10 s) for the API.
    pub fn start(bin: &Path, cfg: &DaemonConfig, dir: &Path, tag: &str) -> anyhow::Result<Self> {
        let conf = dir.join(format!("{tag}.toml"));
        cfg.write(&conf)?;
        let log = dir.join(format!("{tag}.log"));
        let child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("spawn {} serve", bin.display()))?;
        let mut d = LocalDaemon {
            child: Some(child),
            socket: cfg.socket.clone(),
            log,
        };
        let pid = d.pid();
        let socket = d.socket.clone();
        if let Err(e) = wait_api(&socket, Duration::from_secs(10), || d.running()) {
            return Err(e.context(format!("daemon pid {pid}; log:\n{}", d.log_text())));
        }
        Ok(d)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM by PID, wait up to 5 s, then SIGKILL; reaps the child.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(raw) = i32::try_from(child.id()) {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = kill(Pid::from_raw(raw), Signal::SIGTERM);
            }
        }
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for LocalDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Wait until the API socket accepts a connection; fails early when `alive()` is false.
pub fn wait_api(
    socket: &Path,
    timeout: Duration,
    mut alive: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let until = Instant::now() + timeout;
    loop {
        if Client::connect(socket).is_ok() {
            return Ok(());
        }
        if !alive() {
            bail!(
                "daemon exited before opening its API at {}",
                socket.display()
            );
        }
        if Instant::now() >= until {
            bail!("no API at {} after {timeout:?}", socket.display());
        }
        std::thread::sleep(Duration::from_millis(20));
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
