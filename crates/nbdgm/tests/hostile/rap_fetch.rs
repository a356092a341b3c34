//! Attack: the backup browser's list fetch (issue 12 item 1), attackers (a) a host on the
//! subnet and (d) the malicious master we connect to. A fake master (a thread speaking
//! just enough NBSS / SMB1 on 127.0.x.y:139) announces itself as local master, sends
//! BecomeBackup naming the daemon and answers NetServerEnum2 with a crafted reply whose
//! comment pointers all aim at one long run of non-NUL bytes. Bounds: the daemon's
//! peak RSS grows by less than 32 MiB and the listed comments stay within the field
//! limit; BecomeBackup from anyone but the known master is refused (counter) and makes
//! no connection; promotions over and over make at most one fetch per 12 minutes.
//! Port 139 needs root: the tests print SKIPPED and return otherwise.

use crate::common::*;
use nbdgm_wire::browser::{Announcement, BecomeBackup, BrowserFrame, ResetStateRequest};
use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::Name;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A browser frame in a DIRECT_GROUP datagram from `src_name` at `src` to `dest`.
pub(crate) fn dgram(
    src: SocketAddrV4,
    src_name: &str,
    dest: Name,
    frame: &BrowserFrame,
) -> Vec<u8> {
    let data = MailslotWrite::new(BROWSE, frame.to_bytes().unwrap())
        .to_bytes()
        .unwrap();
    Datagram {
        msg_type: MsgType::DirectGroup,
        flags: Flags {
            more: false,
            first: true,
            node_type: NodeType::B,
            reserved: 0,
        },
        id: 0x5151,
        source_ip: *src.ip(),
        source_port: src.port(),
        body: Body::Data {
            length: None,
            offset: 0,
            body: DataBody::Names {
                source_name: Name::new(src_name, 0).unwrap(),
                destination_name: dest,
                user_data: data,
            },
        },
    }
    .to_bytes()
    .unwrap()
}

pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `VmRSS` / `VmHWM` of `pid` in bytes.
fn vm(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with(key)).unwrap();
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

fn lma(name: &str) -> BrowserFrame {
    BrowserFrame::LocalMasterAnnouncement(Announcement {
        periodicity_ms: 720_000,
        server_name: name.into(),
        os_major: 6,
        os_minor: 1,
        server_type: 0x0005_1003 | 0x0004_0000, // + master browser
        comment: String::new(),
        ..Default::default()
    })
}

fn become_backup(who: &str) -> BrowserFrame {
    BrowserFrame::BecomeBackup(BecomeBackup {
        browser_to_promote: who.into(),
        trailing: vec![],
    })
}

/// The NetServerEnum2 reply data of issue 12 item 1: 2,520 entries (the whole 64 KiB
/// data block) without a NUL anywhere but at the end; every comment pointer aims at
/// offset 0, so each comment "runs" to the end of the block (bytes ≥ 0x80: two bytes a
/// character once decoded). Returns (params, data).
fn bomb() -> (Vec<u8>, Vec<u8>) {
    const CONVERTER: u16 = 0x4141;
    let n = 2520usize;
    let mut data = Vec::with_capacity(65_524);
    for i in 0..n {
        let mut e = format!("E{i:04}").into_bytes();
        e.resize(16, 0xC1); // no NUL in the 16-byte name field
        e.extend_from_slice(&[0xC1, 0xC1]); // OS version
        e.extend_from_slice(&[0xC1; 4]); // server type
        e.extend_from_slice(&0x4141_4141u32.to_le_bytes()); // low word = converter: offset 0
        data.extend_from_slice(&e);
    }
    data.extend_from_slice(&[0xC1; 3]);
    data.push(0);
    let mut p = Vec::new();
    for v in [0u16, CONVERTER, n as u16, n as u16] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    (p, data)
}

/// A well-formed small reply: `n` servers with short comments.
fn small(n: usize) -> (Vec<u8>, Vec<u8>) {
    let mut data = vec![0u8; n * 26];
    let mut strings = Vec::new();
    for i in 0..n {
        let e = &mut data[i * 26..(i + 1) * 26];
        let name = format!("SMALL{i}");
        e[..name.len()].copy_from_slice(name.as_bytes());
        e[16] = 6;
        e[17] = 1;
        e[18..22].copy_from_slice(&0x1003u32.to_le_bytes());
        let off = (n * 26 + strings.len()) as u32;
        e[22..26].copy_from_slice(&off.to_le_bytes());
        strings.extend_from_slice(b"fine\0");
    }
    data.extend_from_slice(&strings);
    let mut p = Vec::new();
    for v in [0u16, 0, n as u16, n as u16] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    (p, data)
}

fn read_nbss(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).ok()?;
    let len = (usize::from(h[1] & 1) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((h[0], body))
}

fn write_nbss(s: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let len = body.len();
    let mut out = vec![0u8, ((len >> 16) & 1) as u8, (len >> 8) as u8, len as u8];
    out.extend_from_slice(body);
    s.write_all(&out)
}

/// An SMB1 reply to `req` (header copied: command, TID, UID, MID), success.
fn smb_reply(req: &[u8], words: &[u8], bytes: &[u8], tid: u16, uid: u16) -> Vec<u8> {
    let mut m = req[..32].to_vec();
    m[5..9].fill(0); // status: success
    m[9] |= 0x80; // reply
    m[24..26].copy_from_slice(&tid.to_le_bytes());
    m[28..30].copy_from_slice(&uid.to_le_bytes());
    m.push((words.len() / 2) as u8);
    m.extend_from_slice(words);
    m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    m.extend_from_slice(bytes);
    m
}

/// TRANSACTION reply carrying `params` and `data` in one piece.
fn trans_reply(req: &[u8], params: &[u8], data: &[u8]) -> Vec<u8> {
    let param_off = 32 + 1 + 20 + 2;
    let data_off = param_off + params.len();
    let mut w = Vec::new();
    for v in [
        params.len() as u16,
        data.len() as u16,
        0,
        params.len() as u16,
        param_off as u16,
        0,
        data.len() as u16,
        data_off as u16,
        0,
    ] {
        w.extend_from_slice(&v.to_le_bytes());
    }
    w.extend_from_slice(&[0, 0]); // SetupCount, Reserved
    let mut b = params.to_vec();
    b.extend_from_slice(data);
    smb_reply(req, &w, &b, 7, 9)
}

/// One connection: session, NEGOTIATE, SESSION SETUP, TREE CONNECT, TRANSACTION.
fn serve_one(mut s: TcpStream, reply: &(Vec<u8>, Vec<u8>)) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    while let Some((t, body)) = read_nbss(&mut s) {
        if t == 0x81 {
            if s.write_all(&[0x82, 0, 0, 0]).is_err() {
                return;
            }
            continue;
        }
        if t != 0x00 || body.len() < 33 {
            return;
        }
        let out = match body[4] {
            0x72 => {
                let mut w = vec![0u8; 34]; // DialectIndex 0 (NT LM 0.12)
                w[3] = 1; // MaxMpxCount
                w[5] = 1; // MaxNumberVcs
                w[7..11].copy_from_slice(&16_644u32.to_le_bytes()); // MaxBufferSize
                smb_reply(&body, &w, &[], 0, 0)
            }
            0x73 => smb_reply(&body, &[0xFF, 0, 0, 0, 0, 0], &[], 0, 9),
            0x75 => smb_reply(&body, &[0xFF, 0, 0, 0, 0, 0], b"IPC\0", 7, 9),
            0x25 => trans_reply(&body, &reply.0, &reply.1),
            _ => return,
        };
        if write_nbss(&mut s, &out).is_err() {
            return;
        }
    }
}

/// A fake master's TCP 139 on `addr`: answers every connection with `reply` until the
/// returned guard is dropped; counts connections.
struct FakeMaster {
    connections: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeMaster {
    fn start(addr: Ipv4Addr, reply: (Vec<u8>, Vec<u8>)) -> FakeMaster {
        let l = TcpListener::bind((addr, 139)).expect("bind 139");
        l.set_nonblocking(true).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, st) = (connections.clone(), stop.clone());
        let reply = Arc::new(reply);
        let thread = std::thread::spawn(move || {
            // Bounded: 60 s at most, 32 connections at most.
            let until = Instant::now() + Duration::from_secs(60);
            while !st.load(Ordering::Relaxed) && Instant::now() < until {
                match l.accept() {
                    Ok((s, _)) => {
                        if c.fetch_add(1, Ordering::Relaxed) >= 32 {
                            continue;
                        }
                        let _ = s.set_nonblocking(false);
                        let r = reply.clone();
                        std::thread::spawn(move || serve_one(s, &r));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeMaster {
            connections,
            stop,
            thread: Some(thread),
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn daemon_toml(more: &str) -> String {
    format!(
        "[browser]\nannounce = true\nlocal_master = true\nos_level = 1\n\
         preferred_master = false\n{more}\n"
    )
}

fn wait_for(what: &str, d: &Daemon, secs: u64, ok: impl Fn(&serde_json::Value) -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let st = d.stats();
        if ok(&st) {
            return;
        }
        assert!(
            Instant::now() < until,
            "{what}: not within {secs} s; stats: {st}\nlog:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Attacker {
    sock: UdpSocket,
    me: SocketAddrV4,
    daemon: SocketAddrV4,
}

impl Attacker {
    fn new(addr: Ipv4Addr, daemon: SocketAddrV4) -> Attacker {
        let sock = UdpSocket::bind((addr, 0)).unwrap();
        let me = match sock.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        Attacker { sock, me, daemon }
    }

    fn send(&self, src_name: &str, dest: Name, f: &BrowserFrame) {
        let b = dgram(self.me, src_name, dest, f);
        self.sock.send_to(&b, self.daemon).unwrap();
    }
}

fn wg(suffix: u8) -> Name {
    Name::new("TESTGROUP", suffix).unwrap()
}

#[test]
fn rap_fetch_memory_bomb_is_bounded() {
    if !is_root() {
        println!("SKIPPED rap_fetch_memory_bomb_is_bounded: needs root (TCP 139)");
        return;
    }
    let s = Scratch::new("hostile-rap-bomb");
    let ports = ports();
    let (daddr, maddr) = (Ipv4Addr::new(127, 0, 61, 1), Ipv4Addr::new(127, 0, 61, 2));
    let extra = daemon_toml("");
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0,
        "rapbomb",
        "RAPVICTIM",
        daddr,
        ports,
        &extra,
    ));
    d.wait_names(&["RAPVICTIM<00>"]);
    let master = FakeMaster::start(maddr, bomb());
    let a = Attacker::new(maddr, SocketAddrV4::new(daddr, ports.1));
    let rss0 = vm(d.pid(), "VmRSS:");
    let hwm0 = vm(d.pid(), "VmHWM:");
    a.send("FAKEMAST", wg(0x1E), &lma("FAKEMAST"));
    std::thread::sleep(Duration::from_millis(200));
    a.send("FAKEMAST", wg(0x1E), &become_backup("RAPVICTIM"));
    wait_for("the fetch ends", &d, 30, |st| {
        counter(st, "browser.master_syncs") + counter(st, "browser.master_sync_failures") >= 1
    });
    let hwm = vm(d.pid(), "VmHWM:");
    let growth = hwm.saturating_sub(rss0);
    println!(
        "rap_fetch bomb: VmRSS before {} KiB, VmHWM before {} KiB, VmHWM after {} KiB: \
         peak growth {} KiB; connections {}",
        rss0 / 1024,
        hwm0 / 1024,
        hwm / 1024,
        growth / 1024,
        master.connections()
    );
    assert!(master.connections() >= 1, "the daemon never connected");
    assert!(
        growth < 32 << 20,
        "peak RSS grew by {} MiB (bound 32 MiB)",
        growth >> 20
    );
    // The entries arrived, cut at their field limits; the daemon still serves.
    let st = d.stats();
    assert!(counter(&st, "browser.master_syncs") >= 1, "{st}");
    // One small page: 500 entries of this list exceed the API's 256 KiB line (see the
    // report; not this test's subject).
    let list: nbdgm_client::proto::BrowseResult = d
        .client()
        .call(nbdgm_client::proto::Op::Browse {
            workgroup: None,
            offset: Some(0),
            limit: Some(50),
            local: false,
        })
        .expect("browse");
    let from_master: Vec<_> = list.interfaces[0]
        .servers
        .iter()
        .filter(|s| s.name.starts_with('E'))
        .collect();
    assert!(!from_master.is_empty(), "no entry of the master's list");
    for srv in &from_master {
        assert!(srv.name.chars().count() <= 15, "{:?}", srv.name);
        assert!(srv.comment.chars().count() <= 48, "{:?}", srv.comment);
    }
}

#[test]
fn rap_fetch_become_backup_from_a_stranger_is_refused() {
    if !is_root() {
        println!("SKIPPED rap_fetch_become_backup_from_a_stranger_is_refused: needs root");
        return;
    }
    let s = Scratch::new("hostile-rap-stranger");
    let ports = ports();
    let daddr = Ipv4Addr::new(127, 0, 62, 1);
    let maddr = Ipv4Addr::new(127, 0, 62, 2);
    let evil = Ipv4Addr::new(127, 0, 62, 3);
    let extra = daemon_toml("");
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0,
        "rapstranger",
        "RAPSTRANGE",
        daddr,
        ports,
        &extra,
    ));
    d.wait_names(&["RAPSTRANGE<00>"]);
    let master = FakeMaster::start(maddr, small(3));
    let to = SocketAddrV4::new(daddr, ports.1);
    let m = Attacker::new(maddr, to);
    let e = Attacker::new(evil, to);
    m.send("REALMAST", wg(0x1E), &lma("REALMAST"));
    std::thread::sleep(Duration::from_millis(200));
    // The stranger: under its own name, then under the master's name.
    e.send("EVIL", wg(0x1E), &become_backup("RAPSTRANGE"));
    e.send("REALMAST", wg(0x1E), &become_backup("RAPSTRANGE"));
    std::thread::sleep(Duration::from_secs(3));
    let conns = master.connections();
    println!("rap_fetch stranger: connections to the master {conns}");
    assert_eq!(conns, 0, "a stranger's BecomeBackup made us connect");
    let st = d.stats();
    assert_eq!(counter(&st, "browser.refused_become_backup"), 2, "{st}");
    assert_eq!(
        d.client().browse(None).unwrap().interfaces[0].role,
        "potential"
    );
}

#[test]
fn rap_fetch_repeated_promotion_fetches_once_per_period() {
    if !is_root() {
        println!("SKIPPED rap_fetch_repeated_promotion_fetches_once_per_period: needs root");
        return;
    }
    let s = Scratch::new("hostile-rap-repeat");
    let ports = ports();
    let daddr = Ipv4Addr::new(127, 0, 63, 1);
    let maddr = Ipv4Addr::new(127, 0, 63, 2);
    // ResetStateRequest obeyed: the master can drop us back to potential and promote
    // us again, over and over.
    let extra = daemon_toml("allow_reset = true");
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0,
        "raprepeat",
        "RAPREPEAT",
        daddr,
        ports,
        &extra,
    ));
    d.wait_names(&["RAPREPEAT<00>"]);
    let master = FakeMaster::start(maddr, small(3));
    let m = Attacker::new(maddr, SocketAddrV4::new(daddr, ports.1));
    let reset = BrowserFrame::ResetStateRequest(ResetStateRequest {
        reset_type: 0x02, // clear all: back to potential
        ..Default::default()
    });
    let me = Name::new("RAPREPEAT", 0).unwrap();
    let rounds = 6;
    for _ in 0..rounds {
        m.send("REALMAST", wg(0x1E), &lma("REALMAST"));
        std::thread::sleep(Duration::from_millis(100));
        m.send("REALMAST", wg(0x1E), &become_backup("RAPREPEAT"));
        std::thread::sleep(Duration::from_millis(1200));
        m.send("REALMAST", me.clone(), &reset);
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    let conns = master.connections();
    let st = d.stats();
    println!(
        "rap_fetch repeated: {rounds} promotions, {conns} connections (2 per fetch), \
         deferred {}",
        st["interfaces"][0]["browser"]["master_syncs_deferred"]
    );
    // One fetch (two NetServerEnum2 connections: servers, workgroups) in 12 minutes.
    assert!(conns <= 2, "{conns} connections for {rounds} promotions");
    assert!(counter(&st, "browser.master_syncs_deferred") >= 1, "{st}");
}
