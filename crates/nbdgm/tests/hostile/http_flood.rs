//! Attack: connection exhaustion on the HTTP endpoints (issue 12 item 7) and DNS
//! rebinding (item 12). Attacker (a) or (b) opens 1,100 idle TCP connections to the
//! browse HTTP endpoint of `nbdgm serve` and to the web listener of `nbdgm monitor run`,
//! both started with 512 descriptors; the API and the endpoints must keep answering and
//! the log must not fill with accept errors. A browser page on a rebound name (any
//! `Host` that is not ours) gets 421.

use crate::common::{bin, ports, Daemon, DaemonSpec, Scratch};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const FLOOD: usize = 1100;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A TCP connection from `from` to 127.0.0.1:`port` (bounded connect time).
fn connect_from(from: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&SocketAddr::from((from, 0)).into())?;
    s.connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into(),
        Duration::from_secs(2),
    )?;
    Ok(s.into())
}

/// `GET path` with `host` from `from`; the status code, or None without an answer in 5 s.
fn get(from: Ipv4Addr, port: u16, path: &str, host: &str) -> Option<u16> {
    let mut s = connect_from(from, port).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Open `FLOOD` idle connections from `from` (kept open by the returned vector).
fn flood(from: Ipv4Addr, port: u16) -> Vec<TcpStream> {
    let start = Instant::now();
    let mut v = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        if let Ok(s) = connect_from(from, port) {
            v.push(s);
        }
        if start.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    // Let the server accept what it will.
    std::thread::sleep(Duration::from_millis(1500));
    v
}

fn accept_error_lines(log: &str) -> usize {
    log.lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("accept") && (l.contains("fail") || l.contains("error"))
        })
        .count()
}

#[test]
fn http_flood_browse_endpoint_keeps_api_and_http_answering() {
    let s = Scratch::new("hostile-flood");
    let addr = Ipv4Addr::new(127, 0, 52, 1);
    let http = free_port();
    let extra = format!("[browser]\nhttp = \"127.0.0.1:{http}\"\n");
    let mut spec = DaemonSpec::loopback(&s.0, "flood", "FLOODNODE", addr, ports(), &extra);
    spec.wrapper = vec!["prlimit".into(), "--nofile=512:512".into()];
    let d = Daemon::start(spec);
    d.wait_names(&["FLOODNODE<00>"]);
    let host = format!("127.0.0.1:{http}");
    assert_eq!(
        get(Ipv4Addr::new(127, 0, 52, 3), http, "/healthz", &host),
        Some(200)
    );

    let held = flood(Ipv4Addr::new(127, 0, 52, 2), http);
    eprintln!("{} flood connections open", held.len());
    // The API still accepts and answers.
    let api = std::thread::spawn({
        let socket = d.socket.clone();
        move || {
            let mut c = nbdgm_client::Client::connect(&socket).ok()?;
            c.set_timeout(Duration::from_secs(5)).ok()?;
            c.hello().ok().map(|h| h.server)
        }
    });
    // A fresh request from another address is served.
    let fresh = get(Ipv4Addr::new(127, 0, 52, 3), http, "/api/browse", &host);
    let api = api.join().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let log = d.log_text();
    let errors = accept_error_lines(&log);
    eprintln!("fresh HTTP request: {fresh:?}; API: {api:?}; accept-error log lines: {errors}");
    assert_eq!(api.as_deref(), Some("nbdgm"), "the API stopped answering");
    assert_eq!(fresh, Some(200), "the HTTP endpoint stopped serving");
    assert!(errors <= 3, "{errors} accept-error lines:\n{log}");
    drop(held);
    let st = d.stats();
    assert!(
        st["api"]["http"]["refused_per_ip"].as_u64().unwrap_or(0) > 0,
        "refusals not counted: {st}"
    );
}

#[test]
fn http_flood_host_header_is_checked() {
    let s = Scratch::new("hostile-host");
    let addr = Ipv4Addr::new(127, 0, 52, 11);
    let http = free_port();
    let extra = format!(
        "[browser]\nhttp = \"127.0.0.1:{http}\"\nhttp_allowed_hosts = [\"browse.example\"]\n"
    );
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0,
        "host",
        "HOSTNODE",
        addr,
        ports(),
        &extra,
    ));
    d.wait_names(&["HOSTNODE<00>"]);
    let from = Ipv4Addr::new(127, 0, 52, 12);
    for ok in [
        format!("127.0.0.1:{http}"),
        "127.0.0.1".to_string(),
        format!("localhost:{http}"),
        "browse.example".to_string(),
        format!("BROWSE.example:{http}"),
    ] {
        assert_eq!(get(from, http, "/api/browse", &ok), Some(200), "Host: {ok}");
    }
    for bad in [
        format!("rebind.attacker.example:{http}"),
        "attacker.example".to_string(),
        format!("127.0.0.2:{http}"),
        "browse.example.attacker.example".to_string(),
    ] {
        assert_eq!(
            get(from, http, "/api/browse", &bad),
            Some(421),
            "Host: {bad}"
        );
    }
}

/// `nbdgm monitor run` with a web listener, killed by PID on drop.
struct Monitor(Child);

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_monitor(dir: &std::path::Path, port: u16, nofile: bool) -> Monitor {
    std::fs::write(
        dir.join("m.toml"),
        format!(
            "[store]\nurl = \"{}\"\ninstance = \"flood\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
             allowed_hosts = [\"monitor.example\"]\n\
             [[check]]\nname = \"lab\"\ntargets = [\"198.51.100.10\"]\nports = [\"137/udp\"]\n\
             interval = \"1s\"\nconfirmations = 1\n",
            dir.join("m.db").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("monitor.log")).unwrap();
    let mut cmd = if nofile {
        let mut c = std::process::Command::new("prlimit");
        c.arg("--nofile=512:512").arg(env!("CARGO_BIN_EXE_nbdgm"));
        c
    } else {
        bin()
    };
    let child = cmd
        .args(["monitor", "run", "--config"])
        .arg(dir.join("m.toml"))
        .arg("--fake-states")
        .arg(dir.join("states"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start nbdgm monitor run");
    let m = Monitor(child);
    let until = Instant::now() + Duration::from_secs(10);
    let host = format!("127.0.0.1:{port}");
    while get(Ipv4Addr::new(127, 0, 53, 3), port, "/healthz", &host) != Some(200) {
        assert!(
            Instant::now() < until,
            "monitor web did not start: {}",
            std::fs::read_to_string(dir.join("monitor.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    m
}

#[test]
fn http_flood_monitor_web_keeps_serving() {
    let s = Scratch::new("hostile-monflood");
    let port = free_port();
    let _m = start_monitor(&s.0, port, true);
    let host = format!("127.0.0.1:{port}");
    let held = flood(Ipv4Addr::new(127, 0, 53, 2), port);
    eprintln!("{} flood connections open", held.len());
    let fresh = get(Ipv4Addr::new(127, 0, 53, 3), port, "/api/state", &host);
    let metrics = get(Ipv4Addr::new(127, 0, 53, 4), port, "/metrics", &host);
    std::thread::sleep(Duration::from_secs(1));
    let log = std::fs::read_to_string(s.0.join("monitor.log")).unwrap_or_default();
    let errors = accept_error_lines(&log);
    eprintln!("fresh: {fresh:?}, metrics: {metrics:?}, accept-error lines: {errors}");
    assert_eq!(fresh, Some(200), "the monitor web stopped serving:\n{log}");
    assert_eq!(metrics, Some(200));
    assert!(errors <= 3, "{errors} accept-error lines:\n{log}");
    // DNS rebinding: a foreign Host is refused on every route.
    for path in ["/", "/api/state", "/metrics"] {
        assert_eq!(
            get(
                Ipv4Addr::new(127, 0, 53, 5),
                port,
                path,
                "rebind.attacker.example"
            ),
            Some(421),
            "{path}"
        );
        assert_eq!(
            get(Ipv4Addr::new(127, 0, 53, 5), port, path, "monitor.example"),
            Some(200),
            "{path}"
        );
    }
}
