//! The sockets bound to the NetBIOS ports and their owners, from `/proc/net/{udp,udp6,tcp,tcp6}`
//! (read through `/proc/thread-self/net`, so a thread that joined another network namespace
//! sees that namespace's sockets) and the `socket:[INODE]` links under `/proc/*/fd`.
//! Everything read here is input: malformed lines are skipped, vanished processes ignored.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// The ports whose sockets are listed.
pub const AUDIT_PORTS: [u16; 4] = [137, 138, 139, 445];
/// Most lines read from one `/proc/net` table, processes scanned, fds per process.
const MAX_LINES: usize = 1_000_000;
const MAX_PROCS: usize = 1_000_000;
const MAX_FDS: usize = 1_000_000;
/// TCP state LISTEN in `/proc/net/tcp`.
const TCP_LISTEN: u8 = 0x0A;

/// A process owning a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// `/proc/PID/comm`.
    pub command: String,
    /// Real uid from `/proc/PID/status`.
    pub uid: Option<u32>,
    pub user: Option<String>,
}

/// One bound socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundSocket {
    /// `udp` or `tcp`.
    pub proto: String,
    pub local: IpAddr,
    pub port: u16,
    /// `listen` (TCP), `bound` (UDP unconnected), `connected` (UDP).
    pub state: String,
    pub inode: u64,
    /// The uid that created the socket (from the socket table; readable without root).
    pub socket_uid: u32,
    /// The processes with the socket open (several after fork).
    pub owners: Vec<Owner>,
    /// Why the owner is not known, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl BoundSocket {
    /// Bound to a loopback address only (unreachable from outside).
    pub fn loopback_only(&self) -> bool {
        self.local.is_loopback()
    }

    /// `nmbd[812] (root)` or `unknown owner (uid 0)`.
    pub fn owner_text(&self) -> String {
        if self.owners.is_empty() {
            let user = user_name(self.socket_uid).unwrap_or_else(|| self.socket_uid.to_string());
            return format!("unknown owner (socket uid {user})");
        }
        self.owners
            .iter()
            .map(|o| {
                let user = o
                    .user
                    .clone()
                    .or_else(|| o.uid.map(|u| u.to_string()))
                    .unwrap_or_else(|| "?".into());
                format!("{}[{}] ({user})", o.command, o.pid)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One parsed line of a `/proc/net/{udp,tcp}{,6}` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcNetEntry {
    pub local: IpAddr,
    pub port: u16,
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

/// Parse one table line (`sl local rem st tx:rx tr:when retr uid timeout inode ...`).
/// The header and malformed lines give `None`.
pub fn parse_proc_net_line(line: &str) -> Option<ProcNetEntry> {
    let f: Vec<&str> = line.split_whitespace().take(10).collect();
    if f.len() < 10 || !f[0].ends_with(':') {
        return None;
    }
    let (addr, port) = f[1].split_once(':')?;
    let local = parse_hex_addr(addr)?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let state = u8::from_str_radix(f[3], 16).ok()?;
    let uid = f[7].parse().ok()?;
    let inode = f[9].parse().ok()?;
    Some(ProcNetEntry {
        local,
        port,
        state,
        uid,
        inode,
    })
}

/// `0100007F` → 127.0.0.1 and the 32-digit IPv6 form: 32-bit words in host byte order.
fn parse_hex_addr(s: &str) -> Option<IpAddr> {
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match s.len() {
        8 => {
            let v = u32::from_str_radix(s, 16).ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(v.to_ne_bytes())))
        }
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(s.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// The entries of one table text on the audited ports (TCP: LISTEN only).
pub fn parse_proc_net(text: &str, tcp: bool) -> Vec<ProcNetEntry> {
    text.lines()
        .take(MAX_LINES)
        .filter_map(parse_proc_net_line)
        .filter(|e| AUDIT_PORTS.contains(&e.port))
        .filter(|e| !tcp || e.state == TCP_LISTEN)
        .collect()
}

fn udp_state(st: u8) -> &'static str {
    if st == 1 {
        "connected"
    } else {
        "bound"
    }
}

/// The `/proc` directory of this thread's network namespace.
fn net_dir(proc_root: &Path) -> std::path::PathBuf {
    let ts = proc_root.join("thread-self/net");
    if ts.exists() {
        ts
    } else {
        proc_root.join("net")
    }
}

/// The bound sockets of the audited ports in this thread's network namespace, with owners.
/// `notes` receives what could not be read.
pub fn bound_sockets(proc_root: &Path, notes: &mut Vec<String>) -> Vec<BoundSocket> {
    let dir = net_dir(proc_root);
    let mut out = Vec::new();
    for (file, proto, tcp) in [
        ("udp", "udp", false),
        ("udp6", "udp", false),
        ("tcp", "tcp", true),
        ("tcp6", "tcp", true),
    ] {
        let path = dir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for e in parse_proc_net(&text, tcp) {
                    out.push(BoundSocket {
                        proto: proto.into(),
                        local: e.local,
                        port: e.port,
                        state: if tcp {
                            "listen".into()
                        } else {
                            udp_state(e.state).into()
                        },
                        inode: e.inode,
                        socket_uid: e.uid,
                        owners: Vec::new(),
                        note: None,
                    })
                }
            }
            // udp6/tcp6 are missing when IPv6 is disabled.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.ends_with('6') => {}
            Err(e) => notes.push(format!("cannot read {}: {e}", path.display())),
        }
    }
    let wanted: HashSet<u64> = out.iter().map(|s| s.inode).filter(|&i| i != 0).collect();
    let scan = scan_owners(proc_root, &wanted);
    if scan.unreadable > 0 {
        notes.push(format!(
            "the file descriptors of {} processes could not be read (run as root to see every owner)",
            scan.unreadable
        ));
    }
    for s in &mut out {
        if let Some(owners) = scan.owners.get(&s.inode) {
            s.owners = owners.clone();
        } else if s.inode == 0 {
            s.note = Some("socket has no inode (closing)".into());
        } else if scan.unreadable > 0 {
            s.note = Some("unknown owner: some processes' fds were unreadable".into());
        } else {
            s.note = Some("unknown owner: no process holds the socket (kernel socket?)".into());
        }
    }
    out.sort_by(|a, b| (a.port, &a.proto, a.local).cmp(&(b.port, &b.proto, b.local)));
    out
}

/// Result of scanning `/proc/*/fd`.
#[derive(Debug, Default)]
pub struct OwnerScan {
    pub owners: HashMap<u64, Vec<Owner>>,
    /// Processes whose fd directory could not be read (not vanished ones).
    pub unreadable: usize,
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Map the wanted socket inodes to the processes holding them.
pub fn scan_owners(proc_root: &Path, wanted: &HashSet<u64>) -> OwnerScan {
    let mut scan = OwnerScan::default();
    if wanted.is_empty() {
        return scan;
    }
    let Ok(dir) = std::fs::read_dir(proc_root) else {
        scan.unreadable += 1;
        return scan;
    };
    for ent in dir.flatten().take(MAX_PROCS) {
        let name = ent.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let fd_dir = ent.path().join("fd");
        let fds = match std::fs::read_dir(&fd_dir) {
            Ok(d) => d,
            // The process exited between the listing and now.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => {
                scan.unreadable += 1;
                continue;
            }
        };
        for fd in fds.flatten().take(MAX_FDS) {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = link.to_str().and_then(socket_inode) else {
                continue;
            };
            if !wanted.contains(&inode) {
                continue;
            }
            let owners = scan.owners.entry(inode).or_default();
            if owners.iter().any(|o| o.pid == pid) {
                continue;
            }
            owners.push(owner_of(proc_root, pid));
        }
    }
    scan
}

fn owner_of(proc_root: &Path, pid: u32) -> Owner {
    let base = proc_root.join(pid.to_string());
    let command = std::fs::read_to_string(base.join("comm"))
        .map(|s| s.trim().chars().take(64).collect())
        .unwrap_or_else(|_| "?".into());
    let uid = std::fs::read_to_string(base.join("status"))
        .ok()
        .and_then(|s| status_uid(&s));
    Owner {
        pid,
        command,
        uid,
        user: uid.and_then(user_name),
    }
}

/// The real uid from a `/proc/PID/status` text.
pub fn status_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|u| u.parse().ok())
}

/// The user name of `uid` from `/etc/passwd` (None when unknown).
pub fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_name(&text, uid)
}

/// Look `uid` up in a passwd text.
pub fn passwd_name(text: &str, uid: u32) -> Option<String> {
    text.lines().take(100_000).find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _pw = f.next()?;
        let u: u32 = f.next()?.parse().ok()?;
        (u == uid && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  253: 00000000:008A 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41234 2 0000000000000000 0
  254: FF6433C6:008A 00000000:0000 07 00000000:00000000 00:00000000 00000000   108        0 41235 2 0000000000000000 0
  300: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 999 2 0000000000000000 0
  garbage line
  12: ZZZZZZZZ:008A 00000000:0000 07
";

    #[test]
    fn parses_udp_table() {
        let e = parse_proc_net(UDP, false);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].port, 138);
        assert_eq!(e[0].local, "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(e[0].inode, 41234);
        if cfg!(target_endian = "little") {
            assert_eq!(e[1].local, "198.51.100.255".parse::<IpAddr>().unwrap());
        }
        assert_eq!(e[1].uid, 108);
    }

    #[test]
    fn parses_tcp6_listen_only() {
        let t = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:01BD 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5555 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:008B 00000000000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000     0        0 5556 1 0000000000000000 100 0 0 10 0
";
        let e = parse_proc_net(t, true);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].port, 445);
        assert_eq!(e[0].local, "::".parse::<IpAddr>().unwrap());
        if cfg!(target_endian = "little") {
            let l = parse_proc_net_line(t.lines().nth(2).unwrap()).unwrap();
            assert_eq!(l.local, "::1".parse::<IpAddr>().unwrap());
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(socket_inode("socket:[123]"), Some(123));
        assert_eq!(socket_inode("pipe:[123]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
        assert_eq!(
            status_uid("Name:\tx\nUid:\t1000\t1000\t1000\t1000\n"),
            Some(1000)
        );
        assert_eq!(status_uid("Uid:"), None);
        assert_eq!(
            passwd_name(
                "root:x:0:0::/root:/bin/sh\nbad\nnobody:x:65534:65534::/:/x\n",
                65534
            ),
            Some("nobody".into())
        );
        for s in ["", ":", "0: :", "0: 1:2 3 4 5 6 7 8 9 10", "\u{0}\u{ffff}"] {
            let _ = parse_proc_net_line(s);
        }
    }
}
