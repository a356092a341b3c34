//! Prerequisite checks, tool lookup and the `nbdgm` binary finder.

use crate::error::{LabError, Result};
use crate::util::{lock, run_bounded};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Tools every lab needs. `smbclient` is optional (only [`crate::smbclient_list`] uses it).
const REQUIRED_TOOLS: &[&str] = &["ip", "nmbd", "nmblookup", "tshark", "setsid"];

/// Serialises `ip netns add/del` inside this process: the first `ip netns add` on a fresh
/// machine mounts /run/netns, and concurrent first calls can race.
pub(crate) static NETNS_LOCK: Mutex<()> = Mutex::new(());

static PROBE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Full path of a tool, searching `$PATH` and then the sbin directories (`nmbd` and `ip`
/// live in /usr/sbin, which a non-login `$PATH` may lack).
pub fn tool_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// The Python for scapy scripts: `$NBDGM_PYTHON`, else the distribution's
/// `/usr/bin/python3` (where Debian's python3-scapy is installed), not a pyenv `python3`
/// that may come first on `$PATH`, else `python3`.
pub fn python3() -> PathBuf {
    if let Some(p) = std::env::var_os("NBDGM_PYTHON") {
        return PathBuf::from(p);
    }
    let sys = PathBuf::from("/usr/bin/python3");
    if sys.exists() {
        sys
    } else {
        PathBuf::from("python3")
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Like [`tool_path`], as an error when missing.
pub(crate) fn tool(name: &str) -> Result<PathBuf> {
    tool_path(name).ok_or_else(|| LabError::Prerequisite(format!("`{name}` not found")))
}

/// Why the lab cannot run here (the reason printed when a lab test is skipped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// Network namespaces and nmbd need root.
    #[error("not running as root (network namespaces and nmbd need root)")]
    NotRoot,
    /// Some of the required tools are not installed.
    #[error("missing tools: {}", .0.join(", "))]
    MissingTools(Vec<String>),
    /// Probing namespace creation failed (the message of the failure).
    #[error("{0}")]
    Netns(String),
}

/// Check that the lab can run here: root, the tools (`ip`, `nmbd`, `nmblookup`, `tshark`,
/// `setsid`), and permission to create a network namespace. The result is computed once per
/// process.
pub fn prerequisites() -> Result<(), Unavailable> {
    static RESULT: OnceLock<Result<(), Unavailable>> = OnceLock::new();
    RESULT.get_or_init(check_prerequisites).clone()
}

fn check_prerequisites() -> Result<(), Unavailable> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Unavailable::NotRoot);
    }
    let missing: Vec<String> = REQUIRED_TOOLS
        .iter()
        .filter(|t| tool_path(t).is_none())
        .map(|t| (*t).to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Unavailable::MissingTools(missing));
    }
    // Probe namespace creation with a name no one else uses, and remove it again.
    let netns = |e: LabError| Unavailable::Netns(e.to_string());
    let ip = tool("ip").map_err(netns)?;
    let name = format!(
        "nbl{}-probe{}",
        std::process::id(),
        PROBE_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let _guard = lock(&NETNS_LOCK);
    let mut add = Command::new(&ip);
    add.args(["netns", "add", &name]);
    let out = run_bounded(add, Duration::from_secs(10)).map_err(netns)?;
    if !out.status.success() {
        return Err(Unavailable::Netns(format!(
            "cannot create a network namespace: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let mut del = Command::new(&ip);
    del.args(["netns", "del", &name]);
    let out = run_bounded(del, Duration::from_secs(10)).map_err(netns)?;
    if !out.status.success() {
        return Err(Unavailable::Netns(format!(
            "cannot delete probe namespace {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Gate for lab tests. Returns `true` when the lab can run. Otherwise, under `CI=true` it
/// panics (CI never skips silently); elsewhere it prints `SKIPPED {test}: {reason}` to stderr
/// and returns `false`.
// Called only from tests: the panic is how a lab test fails when CI cannot run it.
#[allow(clippy::panic)]
pub fn require_or_skip(test: &str) -> bool {
    match prerequisites() {
        Ok(()) => true,
        Err(reason) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: lab prerequisites missing under CI=true: {reason}");
            }
            // Written to the stderr handle rather than with `eprintln!`, which libtest
            // captures and hides for passing tests: a skip must be visible.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
            false
        }
    }
}

/// [`require_or_skip`], and every one of `tools` on the path ([`tool_path`]): `false`
/// (printed SKIPPED) when one is missing, a panic under `CI=true`.
#[allow(clippy::panic)]
pub fn require_tools_or_skip(test: &str, tools: &[&str]) -> bool {
    if !require_or_skip(test) {
        return false;
    }
    let Some(missing) = tools.iter().find(|t| tool_path(t).is_none()) else {
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {missing} missing under CI=true");
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {missing} not installed");
    false
}

/// Locate the `nbdgm` binary for benchmark programs: `$NBDGM_BIN`, else
/// `{release,debug}/nbdgm` under `$CARGO_TARGET_DIR` and then under the workspace's `target/`.
/// Integration tests of the `nbdgm` crate should use `env!("CARGO_BIN_EXE_nbdgm")` instead.
pub fn find_nbdgm_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("NBDGM_BIN") {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(LabError::Prerequisite(format!(
                "NBDGM_BIN={} is not an executable file",
                p.display()
            )))
        };
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut roots = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        roots.push(PathBuf::from(t));
    }
    roots.push(workspace.join("target"));
    let candidates: Vec<PathBuf> = roots
        .iter()
        .flat_map(|r| ["release", "debug"].map(|p| r.join(p).join("nbdgm")))
        .collect();
    candidates
        .iter()
        .find(|p| is_executable(p))
        .cloned()
        .ok_or_else(|| {
            LabError::Prerequisite(format!(
                "nbdgm binary not found (set NBDGM_BIN or run `cargo build --release -p nbdgm`); looked at {}",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}
