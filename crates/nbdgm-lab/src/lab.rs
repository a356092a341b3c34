//! Namespaces, bridges, the router and hosts.

use crate::error::{io_err, LabError, Result};
use crate::prereq::{tool, NETNS_LOCK};
use crate::process::{terminate_all, Proc, SharedSlot, Slot, GRACE};
use crate::util::{describe, lock, run_bounded, run_checked};
use std::ffi::OsStr;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Subnet 1 (bridge `br0`): 198.51.100.0/24, router at .1, broadcast .255.
pub const SUBNET1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 0);
/// Subnet 2 (bridge `br1`): 203.0.113.0/24, router at .1, broadcast .255.
pub const SUBNET2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 0);

const IP_TIMEOUT: Duration = Duration::from_secs(15);
/// Default bound for [`Host::output`].
const OUTPUT_TIMEOUT: Duration = Duration::from_secs(30);

static LAB_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What to build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabSpec {
    /// Also build subnet 2 (`br1`, 203.0.113.0/24) and the router namespace joining the two.
    pub second_subnet: bool,
}

impl LabSpec {
    /// Subnet 1 only: no router.
    pub fn one_subnet() -> Self {
        LabSpec {
            second_subnet: false,
        }
    }

    /// Both subnets and the router (198.51.100.1 / 203.0.113.1).
    pub fn two_subnets() -> Self {
        LabSpec {
            second_subnet: true,
        }
    }
}

pub(crate) struct Inner {
    prefix: String,
    second_subnet: bool,
    ip: PathBuf,
    dir: PathBuf,
    tempdir: Mutex<Option<tempfile::TempDir>>,
    /// Namespaces we created, in creation order (bridge first).
    namespaces: Mutex<Vec<String>>,
    host_names: Mutex<Vec<String>>,
    procs: Mutex<Vec<SharedSlot>>,
    counter: AtomicU64,
    torn_down: AtomicBool,
}

impl Inner {
    fn bridge_ns(&self) -> String {
        format!("{}-br", self.prefix)
    }

    fn router_ns(&self) -> String {
        format!("{}-rt", self.prefix)
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ip ARGS...`, failing on non-zero exit.
    fn ip<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.ip);
        cmd.args(args);
        run_checked(cmd, IP_TIMEOUT)
    }

    /// Run a shell snippet inside `ns` (used only for per-namespace sysctls).
    fn sh_in(&self, ns: &str, script: &str) -> Result<Output> {
        let mut cmd = Command::new(&self.ip);
        cmd.args(["netns", "exec", ns, "sh", "-c", script]);
        run_checked(cmd, IP_TIMEOUT)
    }

    /// Try to create namespace `ns`. `Ok(false)` if the name is taken (never touch it).
    fn add_netns(&self, ns: &str) -> Result<bool> {
        let _g = lock(&NETNS_LOCK);
        let mut cmd = Command::new(&self.ip);
        cmd.args(["netns", "add", ns]);
        let what = describe(&cmd);
        let out = run_bounded(cmd, IP_TIMEOUT)?;
        if out.status.success() {
            lock(&self.namespaces).push(ns.to_string());
            return Ok(true);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.contains("File exists") {
            return Ok(false);
        }
        Err(LabError::Command {
            cmd: what,
            status: out.status.to_string(),
            stderr,
        })
    }

    /// IPv6 off, loopback up.
    fn init_netns(&self, ns: &str, ip_forward: bool) -> Result<()> {
        let mut script = String::from(
            "if [ -d /proc/sys/net/ipv6 ]; then \
             echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && \
             echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; fi",
        );
        if ip_forward {
            script.push_str(" && echo 1 > /proc/sys/net/ipv4/ip_forward");
        }
        self.sh_in(ns, &script)?;
        self.ip(["-n", ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// A veth pair: `port` in the bridge namespace enslaved to `bridge`, `iface` in `ns` with
    /// `addr/24`, both up.
    fn plug(&self, ns: &str, port: &str, iface: &str, bridge: &str, addr: Ipv4Addr) -> Result<()> {
        let br = self.bridge_ns();
        self.ip([
            "-n", &br, "link", "add", "name", port, "type", "veth", "peer", "name", iface, "netns",
            ns,
        ])?;
        self.ip(["-n", &br, "link", "set", port, "master", bridge, "up"])?;
        let cidr = format!("{addr}/24");
        let brd = broadcast_of(addr).to_string();
        self.ip(["-n", ns, "addr", "add", &cidr, "brd", &brd, "dev", iface])?;
        self.ip(["-n", ns, "link", "set", iface, "up"])?;
        Ok(())
    }

    fn teardown(&self) {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return;
        }
        // 1. Every process we started, by PID.
        let slots: Vec<SharedSlot> = std::mem::take(&mut *lock(&self.procs));
        terminate_all(&slots, GRACE);
        // 2. Namespaces, newest first, so the bridge namespace goes last.
        let namespaces: Vec<String> = std::mem::take(&mut *lock(&self.namespaces));
        for ns in namespaces.iter().rev() {
            self.kill_leftovers(ns);
            let _g = lock(&NETNS_LOCK);
            let mut cmd = Command::new(&self.ip);
            cmd.args(["netns", "del", ns]);
            match run_bounded(cmd, IP_TIMEOUT) {
                Ok(out) if out.status.success() => {}
                Ok(out) => eprintln!(
                    "nbdgm-lab: ip netns del {ns}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                Err(e) => eprintln!("nbdgm-lab: ip netns del {ns}: {e}"),
            }
        }
        // 3. The scratch directory (kept with NBDGM_LAB_KEEP=1 for debugging).
        if let Some(td) = lock(&self.tempdir).take() {
            if std::env::var_os("NBDGM_LAB_KEEP").is_some_and(|v| v == "1") {
                let kept = td.keep();
                eprintln!("nbdgm-lab: kept {}", kept.display());
            } else if let Err(e) = td.close() {
                eprintln!("nbdgm-lab: removing {}: {e}", self.dir.display());
            }
        }
    }

    /// Processes still inside a namespace *we created* (grandchildren such as dumpcap or
    /// samba-dcerpcd): SIGKILL them by PID after checking that the PID really is in that
    /// namespace. Deleting a namespace does not stop its processes.
    fn kill_leftovers(&self, ns: &str) {
        let Ok(out) = self.ip(["netns", "pids", ns]) else {
            return;
        };
        let Some(ns_ino) = netns_inode_of_file(&netns_path(ns)) else {
            return;
        };
        for pid in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
            let same = link
                .as_ref()
                .and_then(|l| l.to_str())
                .and_then(|l| l.strip_prefix("net:["))
                .and_then(|l| l.strip_suffix(']'))
                .and_then(|l| l.parse::<u64>().ok())
                == Some(ns_ino);
            if same {
                eprintln!("nbdgm-lab: killing leftover pid {pid} in namespace {ns}");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn netns_path(ns: &str) -> PathBuf {
    let run = Path::new("/run/netns").join(ns);
    if run.exists() {
        run
    } else {
        Path::new("/var/run/netns").join(ns)
    }
}

fn netns_inode_of_file(p: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| m.ino())
}

fn broadcast_of(addr: Ipv4Addr) -> Ipv4Addr {
    let [a, b, c, _] = addr.octets();
    Ipv4Addr::new(a, b, c, 255)
}

fn subnet_of(addr: Ipv4Addr) -> Option<u8> {
    let [a, b, c, _] = addr.octets();
    match [a, b, c] {
        [198, 51, 100] => Some(1),
        [203, 0, 113] => Some(2),
        _ => None,
    }
}

/// A lab: a bridge namespace, optionally a router namespace, and hosts.
/// Dropping it stops every tracked process by PID and deletes its namespaces (bridge last)
/// and its temporary directory.
pub struct Lab {
    inner: Arc<Inner>,
}

impl Lab {
    /// Build the bridge namespace (`br0`, and with [`LabSpec::second_subnet`] also `br1`
    /// plus the router namespace). No host yet; see [`Lab::add_host`].
    pub fn new(spec: LabSpec) -> Result<Lab> {
        let ip = tool("ip")?;
        let tempdir = tempfile::Builder::new()
            .prefix("nbdgm-lab-")
            .tempdir()
            .map_err(io_err("create lab directory"))?;
        let dir = tempdir.path().to_path_buf();
        let pid = std::process::id();
        // Find a free prefix: a namespace of that name may survive from an earlier run that
        // had the same PID; we skip it and never touch it.
        let mut inner = None;
        for _ in 0..64 {
            let prefix = format!("nbl{pid}-{}", LAB_COUNTER.fetch_add(1, Ordering::Relaxed));
            let candidate = Inner {
                prefix,
                second_subnet: spec.second_subnet,
                ip: ip.clone(),
                dir: dir.clone(),
                tempdir: Mutex::new(None),
                namespaces: Mutex::new(Vec::new()),
                host_names: Mutex::new(Vec::new()),
                procs: Mutex::new(Vec::new()),
                counter: AtomicU64::new(0),
                torn_down: AtomicBool::new(false),
            };
            if candidate.add_netns(&candidate.bridge_ns())? {
                inner = Some(candidate);
                break;
            }
        }
        let Some(inner) = inner else {
            return Err(LabError::Prerequisite(
                "no free namespace prefix after 64 attempts".into(),
            ));
        };
        *lock(&inner.tempdir) = Some(tempdir);
        // From here on, Drop cleans up whatever was built if a step fails.
        let lab = Lab {
            inner: Arc::new(inner),
        };
        lab.build()?;
        Ok(lab)
    }

    fn build(&self) -> Result<()> {
        let i = &self.inner;
        let br = i.bridge_ns();
        i.init_netns(&br, false)?;
        let bridges: &[&str] = if i.second_subnet {
            &["br0", "br1"]
        } else {
            &["br0"]
        };
        for b in bridges {
            i.ip([
                "-n",
                &br,
                "link",
                "add",
                b,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
            ])?;
            i.ip(["-n", &br, "link", "set", b, "up"])?;
        }
        if i.second_subnet {
            let rt = i.router_ns();
            if !i.add_netns(&rt)? {
                return Err(LabError::Invalid(format!("namespace {rt} already exists")));
            }
            i.init_netns(&rt, true)?;
            i.plug(&rt, "rt0", "vethr0", "br0", Ipv4Addr::new(198, 51, 100, 1))?;
            i.plug(&rt, "rt1", "vethr1", "br1", Ipv4Addr::new(203, 0, 113, 1))?;
        }
        Ok(())
    }

    /// Add a host namespace `name` (1–10 characters `a-z0-9`, unique in this lab) with the
    /// address `cidr` (`198.51.100.N/24` or `203.0.113.N/24`, N in 2..=254). The host gets a
    /// veth `veth{name}` into the bridge of its subnet and, when the lab has two subnets, a
    /// route to the other subnet via the router. No default route.
    pub fn add_host(&self, name: &str, cidr: &str) -> Result<Host> {
        let i = &self.inner;
        if name.is_empty()
            || name.len() > 10
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(LabError::Invalid(format!(
                "host name {name:?}: use 1-10 characters a-z0-9"
            )));
        }
        let (addr_s, len_s) = cidr
            .split_once('/')
            .ok_or_else(|| LabError::Invalid(format!("{cidr:?}: expected ADDR/24")))?;
        let addr: Ipv4Addr = addr_s
            .parse()
            .map_err(|_| LabError::Invalid(format!("{cidr:?}: bad IPv4 address")))?;
        if len_s != "24" {
            return Err(LabError::Invalid(format!("{cidr:?}: prefix must be /24")));
        }
        let subnet = subnet_of(addr).ok_or_else(|| {
            LabError::Invalid(format!(
                "{addr}: only 198.51.100.0/24 and 203.0.113.0/24 are allowed"
            ))
        })?;
        let host_part = addr.octets()[3];
        if !(2..=254).contains(&host_part) {
            return Err(LabError::Invalid(format!(
                "{addr}: host part must be 2..=254 (.1 is the router)"
            )));
        }
        if subnet == 2 && !i.second_subnet {
            return Err(LabError::Invalid(format!(
                "{addr}: this lab has no second subnet (LabSpec::two_subnets)"
            )));
        }
        if i.torn_down.load(Ordering::SeqCst) {
            return Err(LabError::Invalid("lab is torn down".into()));
        }
        {
            let mut names = lock(&i.host_names);
            if names.iter().any(|n| n == name) {
                return Err(LabError::Invalid(format!("host {name:?} exists")));
            }
            names.push(name.to_string());
        }
        let ns = format!("{}-{name}", i.prefix);
        if !i.add_netns(&ns)? {
            return Err(LabError::Invalid(format!("namespace {ns} already exists")));
        }
        i.init_netns(&ns, false)?;
        let iface = format!("veth{name}");
        let bridge = if subnet == 1 { "br0" } else { "br1" };
        i.plug(&ns, &format!("p-{name}"), &iface, bridge, addr)?;
        if i.second_subnet {
            let (other, gw) = if subnet == 1 {
                ("203.0.113.0/24", "198.51.100.1")
            } else {
                ("198.51.100.0/24", "203.0.113.1")
            };
            i.ip(["-n", &ns, "route", "add", other, "via", gw])?;
        }
        Ok(Host {
            lab: Arc::clone(&self.inner),
            name: name.to_string(),
            netns: ns,
            addr,
            iface,
        })
    }

    /// The per-instance prefix of every namespace name (`nbl{pid}-{n}`).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The lab's temporary directory (logs, captures, configs). Removed on drop unless
    /// `NBDGM_LAB_KEEP=1`.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Name of the bridge namespace.
    pub fn bridge_netns(&self) -> String {
        self.inner.bridge_ns()
    }

    /// Name of the router namespace, if the lab has two subnets.
    pub fn router_netns(&self) -> Option<String> {
        self.inner.second_subnet.then(|| self.inner.router_ns())
    }

    /// Every namespace this lab has created and not yet deleted.
    pub fn namespaces(&self) -> Vec<String> {
        lock(&self.inner.namespaces).clone()
    }

    /// Whether subnet 2 and the router exist.
    pub fn has_second_subnet(&self) -> bool {
        self.inner.second_subnet
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.inner.teardown();
    }
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("prefix", &self.inner.prefix)
            .field("second_subnet", &self.inner.second_subnet)
            .field("dir", &self.inner.dir)
            .finish()
    }
}

/// A host namespace with one veth into a bridge. Cheap to clone. Valid while its [`Lab`]
/// lives; after the lab is dropped every operation fails.
#[derive(Clone)]
pub struct Host {
    lab: Arc<Inner>,
    name: String,
    netns: String,
    addr: Ipv4Addr,
    iface: String,
}

impl Host {
    /// The name given to [`Lab::add_host`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The network namespace name.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The host's IPv4 address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The subnet's broadcast address (x.y.z.255).
    pub fn broadcast(&self) -> Ipv4Addr {
        broadcast_of(self.addr)
    }

    /// The subnet's network address (x.y.z.0); always a /24.
    pub fn network(&self) -> Ipv4Addr {
        let [a, b, c, _] = self.addr.octets();
        Ipv4Addr::new(a, b, c, 0)
    }

    /// 1 for 198.51.100.0/24, 2 for 203.0.113.0/24.
    pub fn subnet(&self) -> u8 {
        subnet_of(self.addr).unwrap_or(0)
    }

    /// The router's address on this host's subnet, if the lab has a router.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        let [a, b, c, _] = self.addr.octets();
        self.lab.second_subnet.then_some(Ipv4Addr::new(a, b, c, 1))
    }

    /// The veth interface name inside the namespace (`veth{name}`).
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The lab's temporary directory.
    pub fn lab_dir(&self) -> &Path {
        self.lab.dir()
    }

    pub(crate) fn lab_inner(&self) -> &Inner {
        &self.lab
    }

    /// `ip netns exec NS program` (the program is resolved on `$PATH` and the sbin
    /// directories). Add arguments, then run it with [`Host::spawn`] or your own code.
    pub fn cmd(&self, program: impl AsRef<OsStr>) -> Command {
        let program = program.as_ref();
        let resolved = program
            .to_str()
            .and_then(crate::prereq::tool_path)
            .map_or_else(|| program.to_os_string(), |p| p.into_os_string());
        let mut cmd = Command::new(&self.lab.ip);
        cmd.args([
            OsStr::new("netns"),
            OsStr::new("exec"),
            OsStr::new(&self.netns),
        ]);
        cmd.arg(resolved);
        cmd
    }

    /// Run `program args...` in the namespace to completion, bounded by 30 s (killed after
    /// that, giving [`LabError::Timeout`]). A non-zero exit is returned, not an error.
    pub fn output<I, S>(&self, program: &str, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.output_timeout(program, args, OUTPUT_TIMEOUT)
    }

    /// [`Host::output`] with an explicit bound.
    pub fn output_timeout<I, S>(&self, program: &str, args: I, timeout: Duration) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.cmd(program);
        cmd.args(args);
        run_bounded(cmd, timeout)
    }

    /// Start `cmd` (normally built with [`Host::cmd`]) as a tracked process: stdin is
    /// `/dev/null`, stdout and stderr go to files in the lab directory. The returned
    /// [`Proc`] stops it by PID on drop; the lab stops it too when dropped first.
    pub fn spawn(&self, mut cmd: Command) -> Result<Proc> {
        if self.lab.torn_down.load(Ordering::SeqCst) {
            return Err(LabError::Invalid("lab is torn down".into()));
        }
        let label = label_of(&cmd);
        let n = self.lab.next_id();
        let base = format!("proc-{n}-{}-{}", self.name, sanitize(&label));
        let out_path = self.lab.dir.join(format!("{base}.out"));
        let err_path = self.lab.dir.join(format!("{base}.err"));
        let out =
            File::create(&out_path).map_err(io_err(format!("create {}", out_path.display())))?;
        let err =
            File::create(&err_path).map_err(io_err(format!("create {}", err_path.display())))?;
        cmd.stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .map_err(io_err(format!("spawn `{}`", describe(&cmd))))?;
        let pid = child.id();
        let slot = Slot::new(child);
        lock(&self.lab.procs).push(Arc::clone(&slot));
        Ok(Proc::new(
            slot,
            pid,
            format!("{label}@{}", self.name),
            out_path,
            err_path,
        ))
    }

    /// Run `f` on a thread that has joined this host's network namespace. Sockets created
    /// inside stay in the namespace after `f` returns and can be used from any thread, so
    /// tests can drive UDP from Rust directly. A panic in `f` is propagated.
    pub fn in_netns<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let path = netns_path(&self.netns);
        let file = File::open(&path).map_err(io_err(format!("open {}", path.display())))?;
        std::thread::scope(|s| {
            let handle = s.spawn(move || -> Result<T> {
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| io_err("setns(CLONE_NEWNET)")(e.into()))?;
                Ok(f())
            });
            match handle.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Reachability check without `ping`: a TCP connect from this host to `addr:port`
    /// (bounded by 2 s). `Ok(true)` if the peer answered with a reset ("connection refused"),
    /// `Ok(false)` if there was no answer, the host is unreachable, or the port accepted.
    pub fn tcp_refused(&self, addr: Ipv4Addr, port: u16) -> Result<bool> {
        check_allowed(addr)?;
        let target = SocketAddr::V4(SocketAddrV4::new(addr, port));
        self.in_netns(move || TcpStream::connect_timeout(&target, Duration::from_secs(2)))
            .map(|r| matches!(r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused))
    }

    /// `true` if `addr` answers a TCP connect to port 9 at all (refused or accepted).
    pub fn reachable(&self, addr: Ipv4Addr) -> Result<bool> {
        check_allowed(addr)?;
        let target = SocketAddr::V4(SocketAddrV4::new(addr, 9));
        self.in_netns(move || TcpStream::connect_timeout(&target, Duration::from_secs(2)))
            .map(|r| match r {
                Ok(_) => true,
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
            })
    }
}

/// Project rule: traffic only to the documentation nets or loopback.
fn check_allowed(addr: Ipv4Addr) -> Result<()> {
    if addr.is_loopback() || subnet_of(addr).is_some() {
        Ok(())
    } else {
        Err(LabError::Invalid(format!(
            "{addr}: only 198.51.100.0/24, 203.0.113.0/24 and loopback may be used"
        )))
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .field("netns", &self.netns)
            .field("addr", &self.addr)
            .field("iface", &self.iface)
            .finish()
    }
}

/// The program a command runs: skips `ip netns exec NS` and `setsid`.
fn label_of(cmd: &Command) -> String {
    let mut parts: Vec<&OsStr> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .collect();
    if parts.len() >= 5
        && Path::new(parts[0]).file_name() == Some(OsStr::new("ip"))
        && parts[1] == "netns"
        && parts[2] == "exec"
    {
        parts.drain(..4);
    }
    while parts.len() > 1 && Path::new(parts[0]).file_name() == Some(OsStr::new("setsid")) {
        parts.remove(0);
    }
    parts
        .first()
        .and_then(|p| Path::new(p).file_name())
        .map_or_else(|| "proc".into(), |n| n.to_string_lossy().into_owned())
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(24)
        .collect()
}
