//! Test helpers of the monitor tests: a tiny HTTP receiver (webhooks), a tiny SMTP sink,
//! a private PostgreSQL cluster, a headless Chromium, probe results. Loopback only, bounded, and every
//! process started here is stopped by its PID.
#![allow(dead_code)]

use nbdgm_probe::probe::{HostResult, Port, PortResult, PortState};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `true` under CI=true (a missing prerequisite then fails instead of skipping).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Print SKIPPED (visible even for passing tests), or panic under CI.
pub fn skip(test: &str, why: &str) {
    if ci() {
        panic!("{test}: {why} (CI=true: prerequisites must be present)");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// A scratch directory (`tempfile`, via the lab harness), removed on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        TempDir(nbdgm_lab::daemon::scratch_dir(&format!("mon-{tag}")).expect("scratch dir"))
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A probe result of `addr`: `ports` as (port, state, evidence), 1.5 ms each, one attempt;
/// no host name or host information.
pub fn host_result(addr: &str, ports: &[(Port, PortState, &str)]) -> HostResult {
    HostResult {
        address: addr.parse().unwrap(),
        hostname: None,
        ports: ports
            .iter()
            .map(|&(port, state, evidence)| PortResult {
                port,
                state,
                evidence: evidence.into(),
                rtt_ms: Some(1.5),
                attempts: 1,
            })
            .collect(),
        info: None,
        duration_ms: 1.0,
    }
}

/// One HTTP request received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A webhook receiver on 127.0.0.1 (of the namespace it is started in). Answers 500 to
/// the first `fail_first` requests, 200 after. At most 10 000 requests are kept.
pub struct HttpSink {
    pub addr: SocketAddr,
    rx: Receiver<Request>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn read_request(s: &mut TcpStream) -> Option<Request> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    let mut len = 0usize;
    for _ in 0..100 {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut body = vec![0u8; len.min(1 << 20)];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    })
}

impl HttpSink {
    pub fn start(fail_first: usize) -> HttpSink {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx): (SyncSender<Request>, _) = sync_channel(10_000);
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut served = 0usize;
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        if let Some(req) = read_request(&mut s) {
                            let status = if served < fail_first {
                                "500 Internal Server Error"
                            } else {
                                "200 OK"
                            };
                            served += 1;
                            let _ = write!(
                                s,
                                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            );
                            let _ = tx.try_send(req);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        HttpSink {
            addr,
            rx,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received within `wait`.
    pub fn take(&self, wait: Duration) -> Vec<Request> {
        let end = Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(r) => out.push(r),
                Err(_) => break,
            }
            if Instant::now() >= end {
                while let Ok(r) = self.rx.try_recv() {
                    out.push(r);
                }
                break;
            }
        }
        out
    }

    /// Wait for the first request matching `f` (others are kept in `seen`).
    pub fn wait_for(
        &self,
        wait: Duration,
        seen: &mut Vec<Request>,
        f: impl Fn(&Request) -> bool,
    ) -> Option<Request> {
        let end = Instant::now() + wait;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.rx.recv_timeout(left) {
                Ok(r) => {
                    seen.push(r.clone());
                    if f(&r) {
                        return Some(r);
                    }
                }
                Err(_) => return None,
            }
        }
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A plain HTTP GET to 127.0.0.1 (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.take(4 << 20).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // Undo chunked encoding if present.
    let chunked = text
        .split_once("\r\n\r\n")
        .map(|(h, _)| {
            h.to_ascii_lowercase()
                .contains("transfer-encoding: chunked")
        })
        .unwrap_or(false);
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, r)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || r.len() < n {
                break;
            }
            out.push_str(&r[..n]);
            rest = r[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_owned()
    };
    (status, body)
}

/// A tiny SMTP server on 127.0.0.1 that accepts every message (at most 100, 1 MiB each).
pub struct SmtpSink {
    pub addr: SocketAddr,
    rx: Receiver<String>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn smtp_session(s: TcpStream, tx: &SyncSender<String>) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    w.write_all(b"220 nbdgm-test ESMTP\r\n")?;
    let mut transcript = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        transcript.push_str(&line);
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") {
            w.write_all(b"250-nbdgm-test\r\n250 8BITMIME\r\n")?;
        } else if cmd.starts_with("HELO")
            || cmd.starts_with("MAIL")
            || cmd.starts_with("RCPT")
            || cmd.starts_with("RSET")
            || cmd.starts_with("NOOP")
        {
            w.write_all(b"250 OK\r\n")?;
        } else if cmd == "DATA" {
            w.write_all(b"354 go ahead\r\n")?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l)? == 0 || data.len() > (1 << 20) {
                    return Ok(());
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                data.push_str(&l);
            }
            transcript.push_str(&data);
            let _ = tx.try_send(transcript.clone());
            w.write_all(b"250 queued\r\n")?;
        } else if cmd == "QUIT" {
            w.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            w.write_all(b"502 not implemented\r\n")?;
        }
    }
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = sync_channel(100);
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = smtp_session(s, &tx);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SmtpSink {
            addr,
            rx,
            stop,
            thread: Some(thread),
        }
    }

    pub fn next(&self, wait: Duration) -> Option<String> {
        self.rx.recv_timeout(wait).ok()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A private PostgreSQL cluster (initdb + postgres as `nobody` when run as root), on
/// 127.0.0.1 and a free port, stopped by PID on drop.
pub struct PgCluster {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

fn pg_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").is_file() && p.join("postgres").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

impl PgCluster {
    /// Start one, or `None` (SKIPPED printed; a panic under CI) when PostgreSQL is missing.
    pub fn start(test: &str) -> Option<PgCluster> {
        let Some(bin) = pg_bin() else {
            skip(
                test,
                "PostgreSQL (initdb, postgres) not found under /usr/lib/postgresql",
            );
            return None;
        };
        let dir = TempDir::new("pg");
        let data = dir.path().join("data");
        let root = nix::unistd::Uid::effective().is_root();
        let as_user = |program: &Path| -> Command {
            if root {
                let mut c = Command::new("setpriv");
                c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
                    .arg(program);
                c
            } else {
                Command::new(program)
            }
        };
        if root {
            let u = nix::unistd::User::from_name("nobody").unwrap().unwrap();
            std::os::unix::fs::chown(dir.path(), Some(u.uid.as_raw()), Some(u.gid.as_raw()))
                .unwrap();
        }
        let out = as_user(&bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .env("LC_ALL", "C")
            .current_dir(dir.path())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("postgres.log")).unwrap();
        if root {
            let u = nix::unistd::User::from_name("nobody").unwrap().unwrap();
            let _ = std::os::unix::fs::chown(
                dir.path().join("postgres.log"),
                Some(u.uid.as_raw()),
                Some(u.gid.as_raw()),
            );
        }
        // setpriv execs postgres, so the child's PID is the postmaster's.
        let child = as_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "fsync=off", "-c", "max_connections=40"])
            .env("LC_ALL", "C")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        let pg = PgCluster {
            child,
            port,
            _dir: dir,
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if postgres::Client::connect(&pg.url("postgres"), postgres::NoTls).is_ok() {
                break;
            }
            assert!(Instant::now() < end, "postgres did not start: {}", pg.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(pg)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// A fresh database; its URL.
    pub fn database(&self, name: &str) -> String {
        let mut c = postgres::Client::connect(&self.url("postgres"), postgres::NoTls).unwrap();
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        self.url(name)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let pid = Pid::from_raw(self.child.id() as i32);
        // SIGINT = fast shutdown.
        let _ = kill(pid, Signal::SIGINT);
        wait_or_kill(&mut self.child, Duration::from_secs(10));
    }
}

/// Waits at most `limit` for `child` (started by the test) to exit, else kills it by its
/// PID; reaps it either way. `true` when it exited by itself.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// The installed Chromium binary, if any.
pub fn chromium_bin() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
}

/// The flags of every headless Chromium run here: no sandbox, GPU, QUIC or background
/// network services, and the fresh profile `profile`.
pub fn chromium_flags(profile: &Path) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ]
    .map(String::from)
    .into();
    flags.push(format!("--user-data-dir={}", profile.display()));
    flags
}

/// Run headless Chromium (`bin`, fresh profile) with `args`; its stdout (at most 8 MiB).
/// Killed by PID, and the test fails, if it has not finished within `limit`.
pub fn chromium_run(bin: &str, args: &[String], limit: Duration) -> String {
    let profile = TempDir::new("chromium");
    let mut child = Command::new(bin)
        .args(chromium_flags(profile.path()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = (&mut out).take(8 << 20).read_to_string(&mut s);
        s
    });
    if !wait_or_kill(&mut child, limit) {
        panic!("chromium did not finish in {} s", limit.as_secs());
    }
    reader.join().unwrap_or_default()
}

/// `chromium --headless --dump-dom URL`, or `None` (SKIPPED; panic under CI) when missing.
pub fn chromium_dump_dom(test: &str, url: &str) -> Option<String> {
    let Some(bin) = chromium_bin() else {
        skip(test, "chromium not installed");
        return None;
    };
    let args = ["--dump-dom".to_owned(), url.to_owned()];
    Some(chromium_run(bin, &args, Duration::from_secs(60)))
}
