//! Samba: a private `nmbd` per host, and the `nmblookup` / `smbclient` clients with private
//! client configurations (so nothing from /etc/samba leaks in).

use crate::error::{io_err, LabError, Result};
use crate::lab::Host;
use crate::prereq::tool;
use crate::process::{read_lossy, Proc};
use crate::util::{tail, Backoff};
use nix::sys::signal::Signal;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// Directories nmbd (and the clients) may write; all created before start.
const SAMBA_DIRS: &[(&str, &str)] = &[
    ("lock directory", "lock"),
    ("state directory", "state"),
    ("cache directory", "cache"),
    ("pid directory", "pid"),
    ("private dir", "private"),
    ("ncalrpc dir", "ncalrpc"),
    ("binddns dir", "binddns"),
];

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const LOG_POLL: Duration = Duration::from_millis(100);

/// Settings of an [`Nmbd`]. `Default` is the SAMBA-LAB peer: SAMBAA in TESTGROUP, local and
/// preferred master, os level 65.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmbdOptions {
    /// NetBIOS name (1–15 characters; upper-cased).
    pub netbios_name: String,
    /// Workgroup (1–15 characters; upper-cased).
    pub workgroup: String,
    /// `local master = yes/no`.
    pub local_master: bool,
    /// `preferred master = yes/no`.
    pub preferred_master: bool,
    /// `os level`.
    pub os_level: u8,
    /// Extra `key = value` lines for `[global]`, written after the defaults (Samba lets the
    /// later line win). Keep `log level` ≥ 3: the wait helpers read the log.
    pub extra_global: Vec<String>,
}

impl Default for NmbdOptions {
    fn default() -> Self {
        NmbdOptions {
            netbios_name: "SAMBAA".into(),
            workgroup: "TESTGROUP".into(),
            local_master: true,
            preferred_master: true,
            os_level: 65,
            extra_global: Vec::new(),
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn check_netbios(what: &str, s: &str) -> Result<String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"\\/:*?\"<>|.".contains(&b));
    if ok {
        Ok(s.to_ascii_uppercase())
    } else {
        Err(LabError::Invalid(format!(
            "{what} {s:?}: 1-15 printable characters without \\/:*?\"<>|."
        )))
    }
}

/// Create `dir` with the Samba sub-directories and return the conf lines pointing at them.
fn samba_dirs(dir: &Path) -> Result<String> {
    let mut lines = String::new();
    for (key, sub) in SAMBA_DIRS.iter().chain(&[("", "log")]) {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(io_err(format!("create {}", p.display())))?;
        if !key.is_empty() {
            let _ = writeln!(lines, "  {key} = {}", p.display());
        }
    }
    use std::os::unix::fs::PermissionsExt;
    let private = dir.join("private");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700))
        .map_err(io_err(format!("chmod {}", private.display())))?;
    Ok(lines)
}

/// A Samba `nmbd` running in a host namespace with a private configuration and scratch
/// directory (`interfaces = ADDR/24`, `bind interfaces only = yes`, `log level = 10`). It is
/// started as `setsid nmbd -F --no-process-group -s CONF </dev/null`, so the tracked PID is
/// nmbd itself. Dropping it stops it by PID.
pub struct Nmbd {
    proc: Proc,
    host: Host,
    dir: PathBuf,
    conf: PathBuf,
    opts: NmbdOptions,
}

impl Nmbd {
    /// Write the configuration, start nmbd and wait (≤ 10 s) until it has written its PID
    /// file. Names are registered about 4–5 s later ([`Nmbd::wait_registered`]).
    pub fn start(host: &Host, opts: NmbdOptions) -> Result<Nmbd> {
        let mut opts = opts;
        opts.netbios_name = check_netbios("netbios name", &opts.netbios_name)?;
        opts.workgroup = check_netbios("workgroup", &opts.workgroup)?;
        let nmbd = tool("nmbd")?;
        let n = host.lab_inner().next_id();
        let dir = host.lab_dir().join(format!("nmbd-{}-{n}", host.name()));
        let dir_lines = samba_dirs(&dir)?;
        let conf = dir.join("smb.conf");
        let name = &opts.netbios_name;
        let mut text = format!(
            "[global]\n\
             \x20 workgroup = {wg}\n\
             \x20 netbios name = {name}\n\
             \x20 server string = nmbd test peer {name}\n\
             \x20 server role = standalone server\n\
             \x20 interfaces = {addr}/24\n\
             \x20 bind interfaces only = yes\n\
             \x20 disable netbios = no\n\
             \x20 local master = {lm}\n\
             \x20 preferred master = {pm}\n\
             \x20 os level = {os}\n\
             \x20 domain master = no\n\
             \x20 wins support = no\n\
             \x20 dns proxy = no\n\
             \x20 name resolve order = lmhosts wins bcast\n\
             {dir_lines}\
             \x20 log file = {log}\n\
             \x20 max log size = 0\n\
             \x20 log level = 10\n\
             \x20 debug hires timestamp = yes\n\
             \x20 load printers = no\n\
             \x20 printing = bsd\n\
             \x20 printcap name = /dev/null\n\
             \x20 disable spoolss = yes\n\
             \x20 server min protocol = NT1\n\
             \x20 map to guest = bad user\n",
            wg = opts.workgroup,
            addr = host.addr(),
            lm = yes_no(opts.local_master),
            pm = yes_no(opts.preferred_master),
            os = opts.os_level,
            log = dir.join("log").join("log.nmbd").display(),
        );
        for line in &opts.extra_global {
            let _ = writeln!(text, "  {line}");
        }
        std::fs::write(&conf, text).map_err(io_err(format!("write {}", conf.display())))?;

        let mut cmd = host.cmd("setsid");
        cmd.arg(&nmbd)
            .args(["-F", "--no-process-group", "-s"])
            .arg(&conf);
        let proc = host.spawn(cmd)?;
        let me = Nmbd {
            proc,
            host: host.clone(),
            dir,
            conf,
            opts,
        };
        me.wait_pidfile(Duration::from_secs(10))?;
        Ok(me)
    }

    fn wait_pidfile(&self, timeout: Duration) -> Result<()> {
        let pidfile = self.dir.join("pid").join("nmbd.pid");
        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::new(Duration::from_millis(20));
        loop {
            if let Ok(s) = std::fs::read_to_string(&pidfile) {
                if let Ok(pid) = s.trim().parse::<u32>() {
                    if pid == self.proc.pid() {
                        return Ok(());
                    }
                    return Err(LabError::Invalid(format!(
                        "nmbd pid file says {pid}, but we started pid {}",
                        self.proc.pid()
                    )));
                }
            }
            if !self.proc.is_running() {
                return Err(self.exited("start"));
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: format!("{} to write {}", self.proc.label(), pidfile.display()),
                    after: timeout,
                });
            }
            backoff.sleep_until(deadline);
        }
    }

    fn exited(&self, during: &str) -> LabError {
        LabError::Exited {
            what: format!("{} (pid {})", self.proc.label(), self.proc.pid()),
            status: self
                .proc
                .try_status()
                .map_or_else(|| "running".into(), |s| s.to_string()),
            detail: format!(
                "during {during}; stderr: {}; log tail:\n{}",
                tail(&self.proc.read_stderr().unwrap_or_default(), 5),
                tail(&self.log(), 15)
            ),
        }
    }

    /// The nmbd PID.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The tracked process.
    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// The host it runs on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The options it was started with (names upper-cased).
    pub fn options(&self) -> &NmbdOptions {
        &self.opts
    }

    /// Its scratch directory (lock/, state/, cache/, pid/, private/, log/, smb.conf).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its smb.conf.
    pub fn smbconf_path(&self) -> &Path {
        &self.conf
    }

    /// Content of its log file(s), concatenated in name order ("" if none yet).
    pub fn log(&self) -> String {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("log"))
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|p| read_lossy(p).ok())
            .collect::<Vec<_>>()
            .join("")
    }

    /// Poll the log until `done(log)` holds. Fails early if nmbd exits.
    fn wait_log_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.log()) {
                return Ok(());
            }
            if !self.proc.is_running() {
                return Err(self.exited(&format!("wait for {what}")));
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: format!(
                        "{what} in the log of {}; log tail:\n{}",
                        self.proc.label(),
                        tail(&self.log(), 10)
                    ),
                    after: timeout,
                });
            }
            std::thread::sleep(LOG_POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }

    /// Wait until the log contains `pattern` (plain substring).
    pub fn wait_for_log(&self, pattern: &str, timeout: Duration) -> Result<()> {
        self.wait_log_until(&format!("{pattern:?}"), timeout, |log| {
            log.contains(pattern)
        })
    }

    /// Wait until nmbd has registered its own names on its subnet (`register_name_timeout_response:
    /// success in registering name ...` for NAME<00>, <03>, <20>, WORKGROUP<00> and, as local
    /// master, WORKGROUP<1e>): about 4–5 s after start. From then on datagrams to these
    /// names are accepted. (4.17 registers WORKGROUP<1e> even with `local master = no`.)
    pub fn wait_registered(&self, timeout: Duration) -> Result<()> {
        let n = &self.opts.netbios_name;
        let w = &self.opts.workgroup;
        let mut names = vec![
            format!("{n}<00>"),
            format!("{n}<03>"),
            format!("{n}<20>"),
            format!("{w}<00>"),
        ];
        if self.opts.local_master {
            names.push(format!("{w}<1e>"));
        }
        let patterns: Vec<String> = names
            .iter()
            .map(|name| format!("success in registering name {name} "))
            .collect();
        self.wait_log_until("registration of own names", timeout, |log| {
            patterns.iter().all(|p| log.contains(p.as_str()))
        })
    }

    /// Wait for "NAME is now a local master browser for workgroup WG" (about 23 s after start).
    pub fn wait_local_master(&self, timeout: Duration) -> Result<()> {
        self.wait_for_log(
            &format!(
                "{} is now a local master browser for workgroup {}",
                self.opts.netbios_name, self.opts.workgroup
            ),
            timeout,
        )
    }

    /// Wait for "Samba server NAME is now a domain master browser for workgroup WG on subnet
    /// ADDR" on its broadcast subnet (needs `domain master = yes` in `extra_global`; with a WINS
    /// server, after the `<1B>` registration there and on the subnet). Only from then on
    /// does nmbd accept MasterAnnouncements (`process_master_browser_announce`).
    pub fn wait_domain_master(&self, timeout: Duration) -> Result<()> {
        let pattern = format!(
            "is now a domain master browser for workgroup {} on subnet {}",
            self.opts.workgroup,
            self.host.addr()
        );
        self.wait_log_until(&format!("{pattern:?}"), timeout, |log| {
            // dbgtext splits the line: "Samba server NAME " and the rest may be separate
            // writes, but they land in one log line.
            log.contains(&pattern)
        })
    }

    /// Current `browse.dat` (in the cache directory), if written yet.
    pub fn browse_dat(&self) -> Option<String> {
        read_lossy(&self.dir.join("cache").join("browse.dat")).ok()
    }

    /// Wait until browse.dat contains `pattern`, sending SIGHUP every 2 s to force the write
    /// (nmbd throttles it and its clock lags, SAMBA-LAB G3). Returns the content.
    pub fn wait_browse_dat(&self, pattern: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut next_hup = Instant::now();
        loop {
            if let Some(dat) = self.browse_dat().filter(|d| d.contains(pattern)) {
                return Ok(dat);
            }
            if !self.proc.is_running() {
                return Err(self.exited("wait for browse.dat"));
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: format!(
                        "{pattern:?} in browse.dat of {} (now: {:?})",
                        self.proc.label(),
                        self.browse_dat()
                    ),
                    after: timeout,
                });
            }
            if Instant::now() >= next_hup {
                self.hup()?;
                next_hup = Instant::now() + Duration::from_secs(2);
            }
            std::thread::sleep(LOG_POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }

    /// SIGHUP: re-read smb.conf (resetting a runtime debug level) and write browse.dat.
    pub fn hup(&self) -> Result<()> {
        self.proc.signal(Signal::SIGHUP)
    }

    /// `smbcontrol -s CONF nmbd ARGS...` (e.g. `["debug", "10"]`), run in the host namespace.
    pub fn smbcontrol<I, S>(&self, args: I) -> Result<ToolOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> = vec![
            "-s".into(),
            self.conf.clone().into_os_string(),
            "nmbd".into(),
        ];
        all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        let out = self
            .host
            .output_timeout("smbcontrol", all, Duration::from_secs(15))?;
        Ok(ToolOutput::from(out))
    }

    /// Stop it: SIGTERM by PID, wait up to 3 s, then SIGKILL.
    pub fn stop(&self) -> Result<ExitStatus> {
        self.proc.stop()
    }
}

impl std::fmt::Debug for Nmbd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nmbd")
            .field("pid", &self.proc.pid())
            .field("host", &self.host.name())
            .field("netbios_name", &self.opts.netbios_name)
            .field("dir", &self.dir)
            .finish()
    }
}

/// A Samba `smbd` next to an [`Nmbd`], sharing its smb.conf and scratch directory (so it
/// serves nmbd's `browse.dat` to RAP NetServerEnum2 and SMB1 is allowed: `server min protocol
/// = NT1`, `map to guest = bad user`). Started as `setsid smbd -F --no-process-group -s CONF
/// -l DIR/smbd-log --option=rpc start on demand helpers=no </dev/null`: its own session and
/// process group (SAMBA-LAB G8), so stopping it cannot take nmbd down, and no
/// `samba-dcerpcd` helpers are spawned. Dropping it stops it by PID.
pub struct Smbd {
    proc: Proc,
    host: Host,
    dir: PathBuf,
}

impl Smbd {
    /// Start smbd on `host` with `nmbd`'s configuration and wait (≤ 10 s) until its log says
    /// it is ready (`waiting for connections`). `host` must be the host nmbd runs on.
    pub fn start(host: &Host, nmbd: &Nmbd) -> Result<Smbd> {
        if host.addr() != nmbd.host().addr() {
            return Err(LabError::Invalid(format!(
                "smbd on {} but nmbd on {}",
                host.addr(),
                nmbd.host().addr()
            )));
        }
        let smbd = tool("smbd")?;
        let dir = nmbd.dir().join("smbd-log");
        std::fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
        let mut cmd = host.cmd("setsid");
        cmd.arg(&smbd)
            .args(["-F", "--no-process-group", "-s"])
            .arg(nmbd.smbconf_path())
            .arg("-l")
            .arg(&dir)
            .arg("--option=rpc start on demand helpers=no");
        let proc = host.spawn(cmd)?;
        let me = Smbd {
            proc,
            host: host.clone(),
            dir,
        };
        me.wait_ready(Duration::from_secs(10))?;
        Ok(me)
    }

    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains("waiting for connections") {
                return Ok(());
            }
            if !self.proc.is_running() {
                return Err(LabError::Exited {
                    what: format!("{} (pid {})", self.proc.label(), self.proc.pid()),
                    status: self
                        .proc
                        .try_status()
                        .map_or_else(|| "running".into(), |s| s.to_string()),
                    detail: format!(
                        "during start; stderr: {}; log tail:\n{}",
                        tail(&self.proc.read_stderr().unwrap_or_default(), 5),
                        tail(&self.log(), 15)
                    ),
                });
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: format!(
                        "{} to be ready; log tail:\n{}",
                        self.proc.label(),
                        tail(&self.log(), 10)
                    ),
                    after: timeout,
                });
            }
            std::thread::sleep(LOG_POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }

    /// The smbd PID.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The tracked process.
    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// The host it runs on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Content of its log files (in `DIR/smbd-log`), concatenated in name order.
    pub fn log(&self) -> String {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|p| read_lossy(p).ok())
            .collect::<Vec<_>>()
            .join("")
    }

    /// Stop it: SIGTERM by PID, wait up to 3 s, then SIGKILL.
    pub fn stop(&self) -> Result<ExitStatus> {
        self.proc.stop()
    }
}

impl std::fmt::Debug for Smbd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smbd")
            .field("pid", &self.proc.pid())
            .field("host", &self.host.name())
            .field("dir", &self.dir)
            .finish()
    }
}

/// Output of a client tool run in a namespace.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    pub stdout: String,
    pub stderr: String,
    pub status: ExitStatus,
}

/// Output of [`nmblookup`].
pub type NmbLookup = ToolOutput;

impl From<std::process::Output> for ToolOutput {
    fn from(o: std::process::Output) -> Self {
        ToolOutput {
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            status: o.status,
        }
    }
}

impl ToolOutput {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Addresses from nmblookup's answer lines `ADDR NAME<xx>` whose name equals `name`
    /// (case-insensitive), in order, duplicates kept (a broadcast query is answered twice by
    /// nmbd, SAMBA-LAB G2).
    pub fn addresses(&self, name: &str) -> Vec<Ipv4Addr> {
        self.stdout
            .lines()
            .filter_map(|line| {
                let mut it = line.split_whitespace();
                let addr: Ipv4Addr = it.next()?.parse().ok()?;
                let (n, _) = it.next()?.split_once('<')?;
                n.eq_ignore_ascii_case(name).then_some(addr)
            })
            .collect()
    }
}

/// Write a private client smb.conf for `host` (interfaces = host/24, bind interfaces only,
/// client min protocol NT1) with its own scratch directories. (`client use spnego = no` is
/// passed on smbclient's command line only: Samba 4.17 warns that it is deprecated.)
fn client_conf(host: &Host) -> Result<PathBuf> {
    let n = host.lab_inner().next_id();
    let dir = host.lab_dir().join(format!("client-{}-{n}", host.name()));
    let dir_lines = samba_dirs(&dir)?;
    let conf = dir.join("smb.conf");
    let text = format!(
        "[global]\n\
         \x20 workgroup = TESTGROUP\n\
         \x20 netbios name = LAB{name}\n\
         \x20 interfaces = {addr}/24\n\
         \x20 bind interfaces only = yes\n\
         \x20 disable netbios = no\n\
         \x20 name resolve order = bcast\n\
         {dir_lines}\
         \x20 log file = {log}\n\
         \x20 client min protocol = NT1\n",
        name = host.name().to_ascii_uppercase(),
        addr = host.addr(),
        log = dir.join("log").join("log.client").display(),
    );
    std::fs::write(&conf, text).map_err(io_err(format!("write {}", conf.display())))?;
    Ok(conf)
}

/// `nmblookup -s PRIVATE_CONF ARGS...` in `host`'s namespace (≤ 30 s). A failed lookup is
/// a non-zero `status`, not an error.
pub fn nmblookup<I, S>(host: &Host, args: I) -> Result<NmbLookup>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let conf = client_conf(host)?;
    let mut all: Vec<std::ffi::OsString> = vec!["-s".into(), conf.into_os_string()];
    all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
    Ok(host
        .output_timeout("nmblookup", all, CLIENT_TIMEOUT)?
        .into())
}

/// `smbclient -N -L //SERVER` from `host` with `client use spnego = no` and
/// `client min protocol = NT1` (SAMBA-LAB G9), plus `extra` arguments (≤ 30 s). Needs an
/// SMB server (smbd) at `server`; nmbd alone does not answer.
pub fn smbclient_list(host: &Host, server: Ipv4Addr, extra: &[&str]) -> Result<ToolOutput> {
    let [a, b, c, _] = server.octets();
    if !matches!([a, b, c], [198, 51, 100] | [203, 0, 113]) {
        return Err(LabError::Invalid(format!(
            "{server}: only the documentation nets may be used"
        )));
    }
    let conf = client_conf(host)?;
    let mut all: Vec<std::ffi::OsString> = vec![
        "-s".into(),
        conf.into_os_string(),
        "-N".into(),
        "-L".into(),
        format!("//{server}").into(),
        "--option=client use spnego=no".into(),
        "--option=client min protocol=NT1".into(),
    ];
    all.extend(extra.iter().map(Into::into));
    Ok(host
        .output_timeout("smbclient", all, CLIENT_TIMEOUT)?
        .into())
}

/// `smbclient -L ADDR -p 139 -N` (NT1, no SPNEGO) against a loopback address (our own RAP
/// responder on 127.0.0.0/8; smbclient 4.17 lists workgroups over 139 whatever `-p` says),
/// with a private configuration under `dir`, bounded to 30 s.
pub fn smbclient_list_loopback(addr: Ipv4Addr, dir: &Path) -> Result<ToolOutput> {
    if !addr.is_loopback() {
        return Err(LabError::Invalid(format!("{addr}: not a loopback address")));
    }
    let conf_dir = dir.join("smbclient");
    let dir_lines = samba_dirs(&conf_dir)?;
    let conf = conf_dir.join("smb.conf");
    let text = format!(
        "[global]\n\
         \x20 workgroup = TESTGROUP\n\
         \x20 netbios name = RAPCLIENT\n\
         \x20 disable netbios = no\n\
         {dir_lines}\
         \x20 log file = {log}\n\
         \x20 client min protocol = NT1\n",
        log = conf_dir.join("log").join("log.client").display(),
    );
    std::fs::write(&conf, text).map_err(io_err(format!("write {}", conf.display())))?;
    let mut cmd = std::process::Command::new("smbclient");
    cmd.arg("-s")
        .arg(&conf)
        .args(["-L", &addr.to_string(), "-p", "139", "-N"])
        .args([
            "--option=client min protocol=NT1",
            "--option=client use spnego=no",
        ]);
    Ok(crate::util::run_bounded(cmd, CLIENT_TIMEOUT)?.into())
}
