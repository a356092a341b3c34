//! Shared helpers of the daemon tests: `nbdgm serve` with a generated configuration
//! (started and stopped by the `nbdgm_lab::daemon` harness), waiting until its names are
//! registered, scratch directories, loopback ports, RFC 1001 §17.1.2 fragments.
#![allow(dead_code)]

use nbdgm_client::proto::NameState;
use nbdgm_client::Client;
use nbdgm_lab::daemon::{self as harness, DaemonOptions};
use nbdgm_wire::datagram::MsgType;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nbdgm"))
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run nbdgm")
}

/// A scratch directory (`tempfile`, mode 0755), removed on drop; `.0` is its path.
pub struct Scratch(pub PathBuf, tempfile::TempDir);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = harness::scratch_dir(&format!("test-{tag}")).expect("scratch directory");
        Scratch(dir.path().to_owned(), dir)
    }
}

/// Two free UDP ports on loopback for the name and datagram services. The broadcast
/// sockets bind 127.255.255.255 with SO_REUSEADDR, so a port is "free" when nobody
/// else in this test run uses it: take ports from a per-process range.
pub fn ports() -> (u16, u16) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let base = 20_000 + (std::process::id() % 200) * 100;
        let n = NEXT.fetch_add(2, Ordering::Relaxed);
        let (a, b) = ((base + n % 100) as u16, (base + n % 100 + 1) as u16);
        let free = |p: u16| UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 1), p)).is_ok();
        if free(a) && free(b) {
            return (a, b);
        }
    }
}

/// How long a daemon gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running `nbdgm serve`, stopped by PID (SIGTERM, then SIGKILL) when dropped.
pub struct Daemon {
    pub inner: harness::Daemon,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    pub addr: Ipv4Addr,
}

pub struct DaemonSpec<'a> {
    pub dir: &'a Path,
    pub tag: &'a str,
    pub name: &'a str,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub ports: (u16, u16),
    /// More TOML appended to the file.
    pub extra: &'a str,
    /// Command to run the binary under (e.g. `ip netns exec NS`); empty: directly.
    pub wrapper: Vec<String>,
}

impl<'a> DaemonSpec<'a> {
    /// A daemon on loopback (127.0.0.0/8, one broadcast domain) at `addr`.
    pub fn loopback(
        dir: &'a Path,
        tag: &'a str,
        name: &'a str,
        addr: Ipv4Addr,
        ports: (u16, u16),
        extra: &'a str,
    ) -> Self {
        DaemonSpec {
            dir,
            tag,
            name,
            addr,
            prefix: 8,
            ports,
            extra,
            wrapper: vec![],
        }
    }

    /// A daemon in a lab host's namespace on the real ports 137/138 (/24).
    pub fn in_host(
        host: &'a nbdgm_lab::Host,
        dir: &'a Path,
        name: &'a str,
        extra: &'a str,
    ) -> Self {
        DaemonSpec {
            dir,
            tag: host.name(),
            name,
            addr: host.addr(),
            prefix: 24,
            ports: (137, 138),
            extra,
            wrapper: vec![
                "ip".into(),
                "netns".into(),
                "exec".into(),
                host.netns().to_string(),
            ],
        }
    }

    /// The file. When `extra` starts with a `[node]` table (then an `[api]` table), its
    /// keys join ours.
    pub fn toml(&self) -> String {
        let (node_keys, extra) = match self.extra.strip_prefix("[node]\n") {
            Some(rest) => match rest.find("\n[") {
                Some(i) => (&rest[..=i], &rest[i + 1..]),
                None => (rest, ""),
            },
            None => ("", self.extra),
        };
        // Likewise an `[api]` table (after the `[node]` one, if any) joins ours.
        let (api_keys, extra) = match extra.strip_prefix("[api]\n") {
            Some(rest) => match rest.find("\n[") {
                Some(i) => (&rest[..=i], &rest[i + 1..]),
                None => (rest, ""),
            },
            None => ("", extra),
        };
        format!(
            "[node]\nname = \"{}\"\nworkgroup = \"TESTGROUP\"\n{node_keys}\n[[interface]]\naddress = \"{}/{}\"\n\n\
             [ports]\nname = {}\ndatagram = {}\n\n[api]\nsocket = \"{}\"\n{api_keys}\n[log]\nlevel = \"debug\"\n\n{}\n",
            self.name,
            self.addr,
            self.prefix,
            self.ports.0,
            self.ports.1,
            self.dir.join(format!("{}.sock", self.tag)).display(),
            extra
        )
    }
}

impl Daemon {
    /// Start and wait until the API answers (not for the names).
    pub fn start(spec: DaemonSpec<'_>) -> Daemon {
        let toml = spec.toml();
        Daemon::start_toml(spec.dir, spec.tag, spec.addr, &toml, &spec.wrapper)
    }

    /// Start from a full configuration text whose API socket is `dir/{tag}.sock`, under
    /// `wrapper` (e.g. `ip netns exec NS`; empty: directly); wait until the API answers.
    pub fn start_toml(
        dir: &Path,
        tag: &str,
        addr: Ipv4Addr,
        toml: &str,
        wrapper: &[String],
    ) -> Daemon {
        let socket = dir.join(format!("{tag}.sock"));
        let opts = DaemonOptions::new(env!("CARGO_BIN_EXE_nbdgm"), dir, tag, toml, &socket)
            .wrapper(wrapper.to_vec())
            .grace(STOP_GRACE);
        let inner = harness::Daemon::start(opts)
            .unwrap_or_else(|e| panic!("daemon {tag} did not open its API: {e}"));
        Daemon {
            socket,
            config: inner.config_path().to_owned(),
            log: inner.log_path().to_owned(),
            addr,
            inner,
        }
    }

    pub fn client(&self) -> Client {
        let mut c = Client::connect(&self.socket).expect("connect to the daemon");
        c.set_timeout(Duration::from_secs(10)).unwrap();
        c
    }

    pub fn log_text(&self) -> String {
        self.inner.log_text()
    }

    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// Wait until every configured name is registered (or one is in conflict).
    pub fn wait_names(&self, want: &[&str]) -> Vec<(String, NameState)> {
        let mut c = self.client();
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let names = c.names().expect("names");
            let list: Vec<(String, NameState)> = names
                .interfaces
                .iter()
                .flat_map(|i| i.names.iter().map(|n| (n.name.clone(), n.state)))
                .collect();
            let settled = want.iter().all(|w| {
                list.iter()
                    .any(|(n, s)| n == w && *s != NameState::Registering)
            });
            if settled {
                return list;
            }
            assert!(
                Instant::now() < until,
                "names not settled: {list:?}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        self.inner.signal(sig).expect("signal the daemon");
    }

    /// SIGTERM and wait (bounded, then SIGKILL); returns the exit code (`None` when it
    /// had to be killed).
    pub fn stop(&mut self) -> Option<i32> {
        self.inner.stop_code()
    }

    pub fn stats(&self) -> serde_json::Value {
        self.client().stats().expect("stats")
    }
}

/// A counter from `stats`: interfaces[0].<path> (dotted).
pub fn counter(stats: &serde_json::Value, path: &str) -> u64 {
    let mut v = &stats["interfaces"][0];
    for p in path.split('.') {
        v = &v[p];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("no counter {path} in {stats}"))
}

/// Fragments of one datagram from SENDER<00> by the rules of RFC 1001 §17.1.2: the
/// names in the first, `chunk` bytes of data section per fragment, PACKET_OFFSET over the
/// data section, DGM_LENGTH the total.
pub fn fragments(
    msg_type: MsgType,
    src: SocketAddrV4,
    dest: &str,
    data: &[u8],
    id: u16,
    chunk: usize,
) -> Vec<Vec<u8>> {
    use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, NodeType};
    use nbdgm_wire::Name;
    let source: Name = "SENDER<00>".parse().unwrap();
    let destination: Name = dest.parse().unwrap();
    let mut section = Vec::new();
    source.emit(&mut section);
    destination.emit(&mut section);
    section.extend_from_slice(data);
    let total = section.len() as u16;
    let names_len = source.encoded_len() + destination.encoded_len();
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < section.len() {
        let first = off == 0;
        let end = if first {
            (names_len + chunk).min(section.len())
        } else {
            (off + chunk).min(section.len())
        };
        let more = end < section.len();
        let body = if first {
            DataBody::Names {
                source_name: source.clone(),
                destination_name: destination.clone(),
                user_data: section[names_len..end].to_vec(),
            }
        } else {
            DataBody::Continuation {
                data: section[off..end].to_vec(),
            }
        };
        let d: Datagram = Datagram {
            msg_type,
            flags: Flags {
                more,
                first,
                node_type: NodeType::B,
                reserved: 0,
            },
            id,
            source_ip: *src.ip(),
            source_port: src.port(),
            body: Body::Data {
                length: Some(total),
                offset: off as u16,
                body,
            },
        };
        out.push(d.to_bytes().unwrap());
        off = end;
    }
    out
}
