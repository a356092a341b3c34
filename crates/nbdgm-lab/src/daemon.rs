//! The one harness for `nbdgm serve` under test or benchmark: write its configuration file,
//! spawn it (directly or under a wrapper such as `ip netns exec NS`) with stderr captured to a
//! log file, wait until its API socket accepts a connection, and stop it **by PID**: SIGTERM,
//! then SIGKILL after a bounded grace period. Dropping a [`Daemon`] stops it, also when a test
//! panics.
//!
//! Also the scratch directories of tests and benchmarks ([`scratch_dir`], on `tempfile`).

use crate::error::{io_err, LabError, Result};
use crate::process::{read_lossy, terminate_all, SharedSlot, Slot};
use crate::util::{lock, tail, Backoff};
use nix::sys::signal::Signal;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long [`Daemon::start`] waits for the API socket unless told otherwise.
pub const API_TIMEOUT: Duration = Duration::from_secs(10);
/// Grace between SIGTERM and SIGKILL unless told otherwise.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Lines of the daemon's stderr quoted in failure messages.
const LOG_LINES: usize = 60;

/// How to start one `nbdgm serve`.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The `nbdgm` binary.
    pub bin: PathBuf,
    /// Directory of the configuration file (`{tag}.toml`) and the stderr log (`{tag}.log`).
    pub dir: PathBuf,
    /// Names the files and the daemon in messages.
    pub tag: String,
    /// The configuration (TOML text), passed with `serve --config`.
    pub config: String,
    /// The API socket the configuration names: start returns once it accepts a connection.
    pub socket: PathBuf,
    /// Program and arguments to run the binary under (e.g. `ip netns exec NS`); empty: none.
    pub wrapper: Vec<String>,
    /// Bound of the wait for the API socket.
    pub api_timeout: Duration,
    /// Grace between SIGTERM and SIGKILL when stopping.
    pub grace: Duration,
}

impl DaemonOptions {
    /// Options with no wrapper, [`API_TIMEOUT`] and [`STOP_GRACE`].
    pub fn new(
        bin: impl Into<PathBuf>,
        dir: impl Into<PathBuf>,
        tag: impl Into<String>,
        config: impl Into<String>,
        socket: impl Into<PathBuf>,
    ) -> Self {
        DaemonOptions {
            bin: bin.into(),
            dir: dir.into(),
            tag: tag.into(),
            config: config.into(),
            socket: socket.into(),
            wrapper: Vec::new(),
            api_timeout: API_TIMEOUT,
            grace: STOP_GRACE,
        }
    }

    /// Run the binary under `wrapper` (e.g. `["ip", "netns", "exec", NS]`).
    pub fn wrapper(mut self, wrapper: Vec<String>) -> Self {
        self.wrapper = wrapper;
        self
    }

    /// Run it in a lab host's network namespace (`ip netns exec NS`, which execs, so the
    /// PID is the daemon's).
    pub fn in_host(self, host: &crate::Host) -> Self {
        let ip = crate::prereq::tool_path("ip")
            .map_or_else(|| "ip".to_string(), |p| p.to_string_lossy().into_owned());
        self.wrapper(vec![ip, "netns".into(), "exec".into(), host.netns().into()])
    }

    /// Grace between SIGTERM and SIGKILL.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    fn command(&self, config: &Path) -> Command {
        let mut cmd = match self.wrapper.split_first() {
            None => Command::new(&self.bin),
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&self.bin);
                c
            }
        };
        cmd.arg("serve").arg("--config").arg(config);
        cmd
    }
}

/// A running `nbdgm serve`, stopped by PID when dropped.
pub struct Daemon {
    slot: SharedSlot,
    pid: u32,
    tag: String,
    socket: PathBuf,
    config: PathBuf,
    log: PathBuf,
    grace: Duration,
}

impl Daemon {
    /// Write the configuration, spawn `bin serve --config FILE` and wait until the API socket
    /// accepts a connection. Fails (with the daemon's stderr in the error) when the daemon
    /// exits first or the wait runs out; the daemon is stopped then.
    pub fn start(opts: DaemonOptions) -> Result<Daemon> {
        let config = opts.dir.join(format!("{}.toml", opts.tag));
        std::fs::write(&config, &opts.config)
            .map_err(io_err(format!("write {}", config.display())))?;
        let log = opts.dir.join(format!("{}.log", opts.tag));
        let stderr =
            std::fs::File::create(&log).map_err(io_err(format!("create {}", log.display())))?;
        let child = opts
            .command(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(io_err(format!("spawn {} serve", opts.bin.display())))?;
        let pid = child.id();
        let d = Daemon {
            slot: Slot::new(child),
            pid,
            tag: opts.tag,
            socket: opts.socket,
            config,
            log,
            grace: opts.grace,
        };
        d.wait_api(opts.api_timeout)?;
        Ok(d)
    }

    fn wait_api(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::new(Duration::from_millis(20));
        loop {
            if UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.try_status() {
                return Err(LabError::Exited {
                    what: self.describe(),
                    status: status.to_string(),
                    detail: format!(
                        "before opening its API at {}; log:\n{}",
                        self.socket.display(),
                        tail(&self.log_text(), LOG_LINES)
                    ),
                });
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: format!(
                        "the API of {} at {}; log:\n{}",
                        self.describe(),
                        self.socket.display(),
                        tail(&self.log_text(), LOG_LINES)
                    ),
                    after: timeout,
                });
            }
            backoff.sleep_until(deadline);
        }
    }

    fn describe(&self) -> String {
        format!("nbdgm serve {} (pid {})", self.tag, self.pid)
    }

    /// PID of the daemon (with `ip netns exec` the daemon itself: it execs without forking).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The API socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The configuration file written by [`Daemon::start`].
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The captured stderr (the daemon's log).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The captured stderr so far (lossy UTF-8; empty when unreadable).
    pub fn log_text(&self) -> String {
        read_lossy(&self.log).unwrap_or_default()
    }

    /// Exit status if it has exited.
    pub fn try_status(&self) -> Option<ExitStatus> {
        lock(&self.slot).poll()
    }

    /// Whether the daemon still runs.
    pub fn is_running(&self) -> bool {
        self.try_status().is_none()
    }

    /// Send a signal by PID. Fails if the daemon has already exited.
    pub fn signal(&self, sig: Signal) -> Result<()> {
        if lock(&self.slot).signal(sig) {
            Ok(())
        } else {
            Err(LabError::Exited {
                what: self.describe(),
                status: self
                    .try_status()
                    .map_or_else(|| "unknown".into(), |s| s.to_string()),
                detail: format!("cannot send {sig}"),
            })
        }
    }

    /// Wait up to `timeout` for it to exit; `None` while it still runs.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::new(Duration::from_millis(20));
        loop {
            if let Some(st) = self.try_status() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            backoff.sleep_until(deadline);
        }
    }

    /// Stop it: SIGTERM by PID, wait up to the grace period, then SIGKILL; reaps it.
    /// Returns the exit status (a signal status when it had to be killed).
    pub fn stop(&self) -> Option<ExitStatus> {
        terminate_all(std::slice::from_ref(&self.slot), self.grace);
        self.try_status()
    }

    /// Like [`Daemon::stop`], but the exit code only when it exited by itself within the
    /// grace period after SIGTERM (`None` when it had to be killed).
    pub fn stop_code(&self) -> Option<i32> {
        self.stop().and_then(|s| s.code())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        terminate_all(std::slice::from_ref(&self.slot), self.grace);
    }
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("tag", &self.tag)
            .field("pid", &self.pid)
            .field("socket", &self.socket)
            .finish()
    }
}

/// A fresh scratch directory `$TMPDIR/nbdgm-{tag}-XXXXXX`, removed when the handle drops.
/// Mode 0755 (not tempfile's 0700), so a daemon that drops privileges can still reach the
/// files in it.
pub fn scratch_dir(tag: &str) -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix(&format!("nbdgm-{tag}-"))
        .tempdir()
        .map_err(io_err(format!("create a scratch directory for {tag}")))?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(io_err(format!("chmod {}", dir.path().display())))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::os::unix::process::ExitStatusExt;

    /// A stand-in for `nbdgm`: a shell script that ignores `serve --config FILE`, reads the
    /// socket path from FILE and behaves as `mode` says.
    fn fake_nbdgm(dir: &Path, mode: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let body = match mode {
            // The test binds the "API" socket itself; the script just runs.
            "wait" => "echo started >&2\nexec sleep 30\n",
            "ignore-term" => "trap '' TERM\necho started >&2\nwhile :; do sleep 1; done\n",
            "exit" => "echo 'bad config: nope' >&2\nexit 3\n",
            _ => unreachable!(),
        };
        let p = dir.join(format!("fake-{mode}.sh"));
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn options(dir: &Path, mode: &str, socket: &Path) -> DaemonOptions {
        DaemonOptions::new(fake_nbdgm(dir, mode), dir, mode, "[node]\n", socket)
    }

    #[test]
    fn start_waits_for_the_api_and_drop_stops_by_pid() {
        let dir = scratch_dir("lab-daemon").unwrap();
        let socket = dir.path().join("api.sock");
        let _listener = UnixListener::bind(&socket).unwrap();
        let d = Daemon::start(options(dir.path(), "wait", &socket)).unwrap();
        let pid = d.pid();
        assert!(d.is_running());
        assert_eq!(
            std::fs::read_to_string(d.config_path()).unwrap(),
            "[node]\n"
        );
        assert!(d.wait_timeout(Duration::from_millis(200)).is_none());
        drop(d);
        // Reaped: the PID no longer exists (kill(pid, 0) fails).
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok();
        assert!(!alive, "pid {pid} still exists after drop");
    }

    #[test]
    fn stop_is_sigterm_then_sigkill_after_the_grace() {
        let dir = scratch_dir("lab-daemon").unwrap();
        let socket = dir.path().join("api.sock");
        let _listener = UnixListener::bind(&socket).unwrap();
        let d = Daemon::start(options(dir.path(), "wait", &socket)).unwrap();
        let st = d.stop().unwrap();
        assert_eq!(st.signal(), Some(Signal::SIGTERM as i32));
        assert!(
            d.signal(Signal::SIGHUP).is_err(),
            "signalled a stopped daemon"
        );

        let opts = options(dir.path(), "ignore-term", &socket).grace(Duration::from_millis(300));
        let d = Daemon::start(opts).unwrap();
        // Let the shell install its trap before the SIGTERM.
        let until = Instant::now() + Duration::from_secs(5);
        while !d.log_text().contains("started") && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let t = Instant::now();
        let st = d.stop().unwrap();
        assert_eq!(st.signal(), Some(Signal::SIGKILL as i32));
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert_eq!(d.stop_code(), None);
    }

    #[test]
    fn early_exit_and_timeout_are_errors_with_the_log() {
        let dir = scratch_dir("lab-daemon").unwrap();
        let socket = dir.path().join("none.sock");
        let err = Daemon::start(options(dir.path(), "exit", &socket)).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, LabError::Exited { .. }), "{text}");
        assert!(text.contains("bad config: nope"), "{text}");

        let mut opts = options(dir.path(), "wait", &socket);
        opts.api_timeout = Duration::from_millis(200);
        let err = Daemon::start(opts).unwrap_err();
        assert!(matches!(err, LabError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("started"), "{err}");
    }

    #[test]
    fn wrapper_runs_the_binary_under_it() {
        let dir = scratch_dir("lab-daemon").unwrap();
        let socket = dir.path().join("api.sock");
        let _listener = UnixListener::bind(&socket).unwrap();
        // `env` execs its argument, like `ip netns exec`.
        let opts = options(dir.path(), "wait", &socket).wrapper(vec!["env".into()]);
        let d = Daemon::start(opts).unwrap();
        assert!(d.is_running());
        assert!(d.stop().is_some_and(|s| s.signal().is_some()));
    }

    #[test]
    fn scratch_dir_is_removed_on_drop() {
        use std::os::unix::fs::PermissionsExt;
        let d = scratch_dir("lab-scratch").unwrap();
        let p = d.path().to_owned();
        assert!(p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("nbdgm-lab-scratch-"));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        std::fs::write(p.join("f"), b"x").unwrap();
        drop(d);
        assert!(!p.exists());
    }
}
