//! Small helpers: bounded command execution, polling, mutex access.

use crate::error::{io_err, LabError, Result};
use std::io::{Read, Seek, SeekFrom};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Lock a mutex, ignoring poisoning: teardown must work after a panicking test.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Render a command for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Calls `f` every `poll` until it is true (`true`) or `limit` has passed (`false`).
pub fn wait_until(limit: Duration, poll: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(poll);
    }
    false
}

/// Sleep schedule for polling: starts short, grows to `max`.
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Self {
        Backoff {
            next: Duration::from_millis(1),
            max,
        }
    }

    /// Sleep, but never past `deadline`.
    pub(crate) fn sleep_until(&mut self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(self.next.min(left));
        self.next = (self.next * 2).min(self.max);
    }
}

/// Run `cmd` to completion with stdin closed, stdout/stderr captured in anonymous temporary
/// files (so a chatty child cannot block on a full pipe and grandchildren holding the pipe
/// cannot make us hang). Kills the child by PID when `timeout` runs out.
pub(crate) fn run_bounded(mut cmd: Command, timeout: Duration) -> Result<Output> {
    let what = describe(&cmd);
    let mut out = tempfile::tempfile().map_err(io_err("create capture file"))?;
    let mut err = tempfile::tempfile().map_err(io_err("create capture file"))?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().map_err(io_err("dup capture file"))?)
        .stderr(err.try_clone().map_err(io_err("dup capture file"))?);
    let mut child = cmd.spawn().map_err(io_err(format!("spawn `{what}`")))?;
    let deadline = Instant::now() + timeout;
    let mut backoff = Backoff::new(Duration::from_millis(20));
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io_err(format!("wait for `{what}`"))(e));
            }
        }
        if Instant::now() >= deadline {
            // `Child::kill` signals the PID we spawned (not yet reaped, so not reused).
            let _ = child.kill();
            let _ = child.wait();
            return Err(LabError::Timeout {
                what: format!("`{what}` to finish"),
                after: timeout,
            });
        }
        backoff.sleep_until(deadline);
    };
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    out.seek(SeekFrom::Start(0))
        .and_then(|_| out.read_to_end(&mut stdout))
        .map_err(io_err("read captured stdout"))?;
    err.seek(SeekFrom::Start(0))
        .and_then(|_| err.read_to_end(&mut stderr))
        .map_err(io_err("read captured stderr"))?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Like [`run_bounded`] but a non-zero exit status is an error.
pub(crate) fn run_checked(cmd: Command, timeout: Duration) -> Result<Output> {
    let what = describe(&cmd);
    let out = run_bounded(cmd, timeout)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(LabError::Command {
            cmd: what,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Last `n` lines of `text`, for error messages.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}
