//! Packet capture with tshark inside a host namespace.

use crate::error::{LabError, Result};
use crate::lab::Host;
use crate::process::Proc;
use crate::util::Backoff;
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `tshark -q -i IFACE -F pcap [-f FILTER] -w PATH` in a host namespace.
/// Dropping it stops it by PID (the capture file may then be incomplete; prefer
/// [`Tshark::stop`]).
pub struct Tshark {
    proc: Proc,
    path: PathBuf,
}

impl Tshark {
    /// Start capturing on the host's veth with capture `filter` (BPF syntax; empty for
    /// none) into `path`, and wait until tshark reports "Capturing on" (≤ 20 s).
    pub fn start(host: &Host, filter: &str, path: impl AsRef<Path>) -> Result<Tshark> {
        let path = path.as_ref().to_path_buf();
        let mut cmd = host.cmd("tshark");
        cmd.args(["-q", "-i", host.iface(), "-F", "pcap"]);
        if !filter.is_empty() {
            cmd.args(["-f", filter]);
        }
        cmd.arg("-w").arg(&path);
        let proc = host.spawn(cmd)?;
        let deadline = Instant::now() + START_TIMEOUT;
        let mut backoff = Backoff::new(Duration::from_millis(50));
        loop {
            if proc
                .read_stderr()
                .unwrap_or_default()
                .contains("Capturing on")
            {
                return Ok(Tshark { proc, path });
            }
            if !proc.is_running() {
                return Err(proc.exited_error("tshark did not start capturing"));
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: format!("{} to report \"Capturing on\"", proc.label()),
                    after: START_TIMEOUT,
                });
            }
            backoff.sleep_until(deadline);
        }
    }

    /// The capture file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tracked process.
    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// Stop with SIGINT by PID and wait (≤ 10 s) so the file is flushed; SIGKILL after that.
    /// Returns the capture path.
    pub fn stop(self) -> Result<PathBuf> {
        self.proc.signal(Signal::SIGINT)?;
        if self.proc.wait_timeout(STOP_TIMEOUT)?.is_none() {
            let _ = self.proc.stop();
            return Err(LabError::Timeout {
                what: format!("{} to exit after SIGINT", self.proc.label()),
                after: STOP_TIMEOUT,
            });
        }
        Ok(self.path.clone())
    }
}

impl std::fmt::Debug for Tshark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tshark")
            .field("pid", &self.proc.pid())
            .field("path", &self.path)
            .finish()
    }
}
