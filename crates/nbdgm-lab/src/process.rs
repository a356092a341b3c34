//! Tracked child processes: stopped by PID on drop (SIGTERM, then SIGKILL).

use crate::error::{io_err, LabError, Result};
use crate::util::{lock, Backoff};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a process gets between SIGTERM and SIGKILL.
pub(crate) const GRACE: Duration = Duration::from_secs(3);

/// A child we spawned. The `Child` is never reaped before we record its status, so its PID
/// cannot be reused while we might still signal it.
pub(crate) struct Slot {
    child: Child,
    status: Option<ExitStatus>,
}

pub(crate) type SharedSlot = Arc<Mutex<Slot>>;

impl Slot {
    pub(crate) fn new(child: Child) -> SharedSlot {
        Arc::new(Mutex::new(Slot {
            child,
            status: None,
        }))
    }

    /// Exit status if it has exited (reaping it), `None` while it runs.
    pub(crate) fn poll(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.status = Some(st);
            }
        }
        self.status
    }

    /// Send `sig` if it still runs. Returns whether it was sent.
    pub(crate) fn signal(&mut self, sig: Signal) -> bool {
        if self.poll().is_some() {
            return false;
        }
        let Ok(raw) = i32::try_from(self.child.id()) else {
            return false;
        };
        kill(Pid::from_raw(raw), sig).is_ok()
    }

    /// SIGKILL and reap.
    pub(crate) fn kill_and_reap(&mut self) -> Option<ExitStatus> {
        if self.poll().is_none() {
            let _ = self.child.kill();
            if let Ok(st) = self.child.wait() {
                self.status = Some(st);
            }
        }
        self.status
    }
}

/// SIGTERM every slot, wait up to `grace` for all of them together, SIGKILL the rest.
pub(crate) fn terminate_all(slots: &[SharedSlot], grace: Duration) {
    for s in slots {
        lock(s).signal(Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    let mut backoff = Backoff::new(Duration::from_millis(20));
    loop {
        let running = slots.iter().filter(|s| lock(s).poll().is_none()).count();
        if running == 0 || Instant::now() >= deadline {
            break;
        }
        backoff.sleep_until(deadline);
    }
    for s in slots {
        lock(s).kill_and_reap();
    }
}

/// A process started with [`crate::Host::spawn`]. Its stdout and stderr go to files in the
/// lab's temporary directory. Dropping it stops the process by PID (SIGTERM, SIGKILL after a
/// grace period of 3 s); dropping the [`crate::Lab`] stops it as well.
pub struct Proc {
    pub(crate) slot: SharedSlot,
    pid: u32,
    label: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Proc {
    pub(crate) fn new(
        slot: SharedSlot,
        pid: u32,
        label: String,
        stdout: PathBuf,
        stderr: PathBuf,
    ) -> Self {
        Proc {
            slot,
            pid,
            label,
            stdout,
            stderr,
        }
    }

    /// PID of the spawned process (with `ip netns exec` and `setsid` this is the final program,
    /// because both exec without forking).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Short description used in messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Send a signal. Fails if the process has already exited.
    pub fn signal(&self, sig: Signal) -> Result<()> {
        if lock(&self.slot).signal(sig) {
            Ok(())
        } else {
            Err(self.exited_error("cannot signal it"))
        }
    }

    /// Exit status if it has exited.
    pub fn try_status(&self) -> Option<ExitStatus> {
        lock(&self.slot).poll()
    }

    /// Whether the process is still running.
    pub fn is_running(&self) -> bool {
        self.try_status().is_none()
    }

    /// Wait up to `timeout` for it to exit. `Ok(None)` if it is still running.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::new(Duration::from_millis(20));
        loop {
            if let Some(st) = self.try_status() {
                return Ok(Some(st));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            backoff.sleep_until(deadline);
        }
    }

    /// Stop it: SIGTERM, wait `grace`, then SIGKILL. Returns the exit status.
    pub fn stop_with_grace(&self, grace: Duration) -> Result<ExitStatus> {
        terminate_all(std::slice::from_ref(&self.slot), grace);
        self.try_status().ok_or_else(|| LabError::Timeout {
            what: format!("{} to exit after SIGKILL", self.label),
            after: grace,
        })
    }

    /// Stop it with the default grace period (3 s).
    pub fn stop(&self) -> Result<ExitStatus> {
        self.stop_with_grace(GRACE)
    }

    /// Path of the captured stdout.
    pub fn stdout_path(&self) -> &Path {
        &self.stdout
    }

    /// Path of the captured stderr.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr
    }

    /// Captured stdout so far (lossy UTF-8).
    pub fn read_stdout(&self) -> Result<String> {
        read_lossy(&self.stdout)
    }

    /// Captured stderr so far (lossy UTF-8).
    pub fn read_stderr(&self) -> Result<String> {
        read_lossy(&self.stderr)
    }

    pub(crate) fn exited_error(&self, detail: &str) -> LabError {
        LabError::Exited {
            what: format!("{} (pid {})", self.label, self.pid),
            status: self
                .try_status()
                .map_or_else(|| "still running".into(), |s| s.to_string()),
            detail: format!(
                "{detail}; stderr: {}",
                crate::util::tail(&self.read_stderr().unwrap_or_default(), 10)
            ),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        terminate_all(std::slice::from_ref(&self.slot), GRACE);
    }
}

impl std::fmt::Debug for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proc")
            .field("pid", &self.pid)
            .field("label", &self.label)
            .finish()
    }
}

pub(crate) fn read_lossy(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(io_err(format!("read {}", path.display())))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
