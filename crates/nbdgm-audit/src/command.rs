//! Running the firewall tools (`nft`, `iptables-save`, `ufw`, `ip`, ...) as root: only the
//! system's copy of a tool ([`SYSTEM_DIRS`], never `$PATH`), without a shell, killed after a
//! timeout, with at most [`MAX_OUTPUT`] bytes of output kept.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for one external command of the audit.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// Most output bytes kept from one external command.
pub const MAX_OUTPUT: usize = 64 << 20;

/// Where firewall tools are looked for, in order. Never `$PATH`: these run as root, and
/// a directory on a user's `PATH` could hold a fake `nft`.
pub const SYSTEM_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Why a tool cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    #[error("{0:?} is not a tool name")]
    NotAName(String),
    #[error("`{0}` not found in {dirs}", dirs = SYSTEM_DIRS.join(", "))]
    NotFound(String),
}

/// Why a command gave no output.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("`{command}`: {source}")]
    Run {
        command: String,
        #[source]
        source: io::Error,
    },
}

/// The system's copy of a tool (`nft`, `iptables`, `ufw`, `ip`, ...) from [`SYSTEM_DIRS`].
pub fn find_tool(name: &str) -> Result<PathBuf, ToolError> {
    if name.contains('/') {
        return Err(ToolError::NotAName(name.to_owned()));
    }
    SYSTEM_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| ToolError::NotFound(name.to_owned()))
}

/// Run `cmd` to completion within `timeout` (killed by PID after that). Output is capped.
pub fn run_bounded(cmd: Command, timeout: Duration) -> io::Result<Output> {
    run_bounded_with_input(cmd, None, timeout)
}

/// [`run_bounded`] with `input`, if any, written to the child's standard input (else the
/// standard input is `/dev/null`).
pub fn run_bounded_with_input(
    mut cmd: Command,
    input: Option<&str>,
    timeout: Duration,
) -> io::Result<Output> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let writer = input.map(|input| {
        let mut stdin = child.stdin.take();
        let data = input.as_bytes().to_vec();
        std::thread::spawn(move || {
            if let Some(s) = stdin.as_mut() {
                let _ = s.write_all(&data);
            }
        })
    });
    let out_t = read_capped(child.stdout.take());
    let err_t = read_capped(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("timed out after {} s", timeout.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

/// A thread reading at most [`MAX_OUTPUT`] bytes of a pipe.
fn read_capped<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(p) = pipe {
            let _ = p.take(MAX_OUTPUT as u64).read_to_end(&mut buf);
        }
        buf
    })
}

/// The standard output of `tool args`, which must succeed within `timeout`.
pub fn output(tool: &Path, args: &[&str], timeout: Duration) -> Result<String, CommandError> {
    let command = || format!("{} {}", tool.display(), args.join(" "));
    let mut c = Command::new(tool);
    c.args(args);
    match run_bounded(c, timeout) {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(CommandError::Failed {
            command: command(),
            status: o.status,
            stderr: String::from_utf8_lossy(&o.stderr).trim().to_owned(),
        }),
        Err(source) => Err(CommandError::Run {
            command: command(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_are_plain_names_from_the_system_directories() {
        assert_eq!(find_tool("../sh"), Err(ToolError::NotAName("../sh".into())));
        assert_eq!(
            find_tool("no-such-tool-nbdgm").unwrap_err().to_string(),
            "`no-such-tool-nbdgm` not found in /usr/sbin, /sbin, /usr/bin, /bin"
        );
        let sh = find_tool("sh").unwrap();
        assert!(SYSTEM_DIRS.iter().any(|d| sh.starts_with(d)));
    }

    #[test]
    fn input_reaches_the_child_and_output_is_kept() {
        let cat = find_tool("cat").unwrap();
        let o =
            run_bounded_with_input(Command::new(&cat), Some("ruleset\n"), COMMAND_TIMEOUT).unwrap();
        assert!(o.status.success());
        assert_eq!(o.stdout, b"ruleset\n");
        // Without input the child reads /dev/null: `cat` ends at once.
        let o = run_bounded(Command::new(&cat), COMMAND_TIMEOUT).unwrap();
        assert!(o.stdout.is_empty());
    }

    #[test]
    fn slow_commands_are_killed_and_failures_named() {
        let sleep = find_tool("sleep").unwrap();
        let mut c = Command::new(&sleep);
        c.arg("5");
        let t = Instant::now();
        let e = run_bounded(c, Duration::from_millis(100)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(4));
        let e = output(&find_tool("false").unwrap(), &["x"], COMMAND_TIMEOUT).unwrap_err();
        assert!(e.to_string().starts_with("`/"), "{e}");
        assert!(
            e.to_string().contains("false x` failed (exit status: 1): "),
            "{e}"
        );
    }
}
