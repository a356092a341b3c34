//! Dashboard tests (issue 15 §2): a SQLite store seeded through the Store API (several
//! checks and hosts, violations, a vantage check `lan@dmz`, changes over the last days, a
//! hostile check name, host name and evidence) behind the monitor's router with a
//! maintenance window. Over HTTP: escaping, summary count, timeline, filters, the live
//! fragment, the per-port history, badges, assets with CSP and caching, accessibility
//! markup, the Host check. In headless Chromium: screenshots at 1400 and 390 px kept in
//! `target/test-artefacts/`, and measurements taken with the page's script running (no
//! horizontal overflow, the summary count, the timeline entries).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "dashboard_support/cdp.rs"]
mod cdp;
mod monitor_support;

use chrono::{DateTime, Duration as CDuration, Utc};
use monitor_support::*;
use nbdgm_monitor::config::MonitorConfig;
use nbdgm_monitor::engine::{AlertKind, Key};
use nbdgm_monitor::metrics::Metrics;
use nbdgm_monitor::store::{NewChange, Query, Store, Verdict};
use nbdgm_monitor::web;
use nbdgm_probe::probe::{HostResult, Port, PortResult, PortState};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

const HOSTILE_CHECK: &str = "<script>\"onmouseover=alert(1)";
const HOSTILE_HOST: &str = "<script>alert(2)</script>";
const HOSTILE_EVIDENCE: &str = "\"onmouseover=alert(3) <b>x</b>";

fn port_result(port: Port, state: PortState, evidence: &str) -> PortResult {
    PortResult {
        port,
        state,
        evidence: evidence.into(),
        rtt_ms: Some(1.2),
        attempts: 1,
    }
}

fn cycle(
    s: &mut Store,
    check: &str,
    at: DateTime<Utc>,
    hosts: &[(&str, Option<&str>, &[PortResult])],
) {
    let results: Vec<HostResult> = hosts
        .iter()
        .map(|(addr, name, ports)| HostResult {
            address: addr.parse().unwrap(),
            hostname: name.map(str::to_owned),
            ports: ports.to_vec(),
            info: None,
            duration_ms: 2.0,
        })
        .collect();
    s.record_cycle(check, at, at, &results).unwrap();
}

/// Commit a chain of confirmed values for one key (expected closed).
fn chain(
    s: &mut Store,
    check: &str,
    target: &str,
    port: &str,
    steps: &[(&str, CDuration)],
    maint: bool,
) {
    let key = Key {
        check: check.into(),
        target: target.into(),
        port: port.into(),
    };
    let now = Utc::now();
    let mut old: Option<&str> = None;
    for (value, ago) in steps {
        let bad = *value == "open";
        s.commit_change(&NewChange {
            key: &key,
            old,
            new: value,
            kind: match (old, bad) {
                (None, false) => None,
                (_, true) => Some(AlertKind::PortNewOpen),
                (_, false) => Some(AlertKind::PortNowClosed),
            },
            expected: "closed",
            bad,
            in_maintenance: maint && bad,
            at: now - *ago,
        })
        .unwrap();
        old = Some(value);
    }
}

fn seed(s: &mut Store) {
    use PortState::{Closed, Open};
    let now = Utc::now();
    let m = CDuration::minutes;
    let (h, d) = (CDuration::hours, CDuration::days);
    let recent = now - m(1);
    cycle(
        s,
        "lan",
        recent,
        &[
            (
                "198.51.100.10",
                Some("FILESRV"),
                &[
                    port_result(
                        Port::Ns137Udp,
                        Closed,
                        "ICMP port unreachable from 198.51.100.10",
                    ),
                    port_result(Port::Dgm138Udp, Closed, "ICMP port unreachable"),
                ],
            ),
            (
                "198.51.100.11",
                Some(HOSTILE_HOST),
                &[
                    port_result(Port::Ns137Udp, Open, "NBSTAT answer: 3 names"),
                    port_result(Port::Dgm138Udp, Closed, HOSTILE_EVIDENCE),
                ],
            ),
        ],
    );
    cycle(
        s,
        "lan@dmz",
        recent,
        &[(
            "198.51.100.10",
            Some("FILESRV"),
            &[
                port_result(Port::Ns137Udp, Closed, "ICMP port unreachable"),
                port_result(Port::Dgm138Udp, Open, "datagram answered"),
            ],
        )],
    );
    cycle(
        s,
        "servers",
        recent,
        &[(
            "203.0.113.20",
            None,
            &[
                port_result(Port::Ssn139Tcp, Closed, "RST"),
                port_result(Port::Smb445Tcp, Closed, "RST"),
            ],
        )],
    );
    cycle(
        s,
        HOSTILE_CHECK,
        recent,
        &[(
            "203.0.113.5",
            Some(HOSTILE_HOST),
            &[port_result(Port::Ssn139Tcp, Closed, HOSTILE_EVIDENCE)],
        )],
    );
    chain(
        s,
        "lan",
        "198.51.100.10",
        "137/udp",
        &[("closed", d(6))],
        false,
    );
    chain(
        s,
        "lan",
        "198.51.100.10",
        "138/udp",
        &[("closed", d(6)), ("open", h(30)), ("closed", h(5))],
        false,
    );
    chain(
        s,
        "lan",
        "198.51.100.11",
        "137/udp",
        &[("closed", d(5)), ("open", m(50))],
        true,
    );
    chain(
        s,
        "lan",
        "198.51.100.11",
        "138/udp",
        &[("closed", d(5))],
        false,
    );
    chain(
        s,
        "lan@dmz",
        "198.51.100.10",
        "137/udp",
        &[("closed", d(3))],
        false,
    );
    chain(
        s,
        "lan@dmz",
        "198.51.100.10",
        "138/udp",
        &[("closed", d(3)), ("open", h(2))],
        false,
    );
    chain(
        s,
        "servers",
        "203.0.113.20",
        "139/tcp",
        &[("closed", d(2))],
        false,
    );
    chain(
        s,
        "servers",
        "203.0.113.20",
        "445/tcp",
        &[("closed", d(2))],
        false,
    );
    chain(
        s,
        HOSTILE_CHECK,
        "203.0.113.5",
        "139/tcp",
        &[("closed", h(3))],
        false,
    );
}

fn config() -> MonitorConfig {
    let now = Utc::now();
    let f = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = format!(
        r#"
[store]
url = "/nonexistent/unused.db"
[http]
listen = "127.0.0.1:0"
[[maintenance]]
from = {}
until = {}
[[check]]
name = "lan"
targets = ["198.51.100.10", "198.51.100.11"]
ports = ["137/udp", "138/udp"]
[[check.maintenance]]
days = ["sat"]
start = "22:00"
end = "02:00"
timezone = "utc"
[[check]]
name = "servers"
targets = ["203.0.113.20"]
ports = ["139/tcp", "445/tcp"]
[[check]]
name = "unprobed"
targets = ["203.0.113.30"]
ports = ["139/tcp"]
[[sink]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/hook"
"#,
        f(now - CDuration::hours(1)),
        f(now + CDuration::hours(1)),
    );
    MonitorConfig::parse(&text, None).unwrap_or_else(|e| panic!("{e}"))
}

/// The router on 127.0.0.1 over a seeded store.
struct Dash {
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: TempDir,
}

impl Dash {
    fn start(tag: &str) -> Dash {
        let dir = TempDir::new(tag);
        let s = Store::open_sqlite(&dir.path().join("m.db"), "test").unwrap();
        Dash::with_store(s, dir)
    }

    fn with_store(mut s: Store, dir: TempDir) -> Dash {
        seed(&mut s);
        let store = Arc::new(Mutex::new(s));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = web::router(web::WebState {
            store: store.clone(),
            metrics: Arc::new(Metrics::new()),
            config: Arc::new(RwLock::new(Arc::new(config()))),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serve = web::serve(listener, app, &[], async move {
            let _ = rx.await;
        });
        rt.spawn(serve);
        Dash {
            addr,
            store,
            rt,
            stop: Some(tx),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn violations(&self) -> usize {
        let rows = self.store.lock().unwrap().latest(None).unwrap();
        rows.iter()
            .filter(|r| r.verdict == Verdict::Violation)
            .count()
    }

    fn changes(&self, check: Option<&str>, target: Option<&str>, port: Option<&str>) -> usize {
        let q = Query {
            check: check.map(str::to_owned),
            target: target.map(str::to_owned),
            port: port.map(str::to_owned),
            since: Some(Utc::now() - CDuration::days(7)),
            until: None,
            limit: 10_000,
        };
        self.store.lock().unwrap().changes(&q).unwrap().len()
    }
}

impl Drop for Dash {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = &self.rt;
    }
}

/// GET with an explicit Host header: (status, lower-case headers, body).
fn get(addr: SocketAddr, path: &str, host: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.take(4 << 20).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, _) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (_, body) = http_get(addr, path);
    (
        status,
        head.to_ascii_lowercase(),
        if status == 200 { body } else { String::new() },
    )
}

/// Text as the templates escape it (numeric references).
fn escaped(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// No `HH:MM:SS.fraction` anywhere (stored timestamps have microseconds).
fn assert_no_fractional_seconds(page: &str) {
    let b = page.as_bytes();
    for i in 0..b.len().saturating_sub(9) {
        let w = &b[i..i + 10];
        let digits = |r: std::ops::Range<usize>| r.into_iter().all(|j| w[j].is_ascii_digit());
        if digits(0..2)
            && w[2] == b':'
            && digits(3..5)
            && w[5] == b':'
            && digits(6..8)
            && w[8] == b'.'
            && w[9].is_ascii_digit()
        {
            panic!(
                "fractional seconds at {i}: {}",
                String::from_utf8_lossy(&b[i.saturating_sub(40)..(i + 30).min(b.len())])
            );
        }
    }
}

/// Every `<select id=X>` / `<input id=X>` has a `<label for=X>`, every table `<th scope>`.
fn assert_accessible(page: &str) {
    for tag in ["<select id=\"", "<input type=\"checkbox\" id=\""] {
        for part in page.split(tag).skip(1) {
            let id = part.split('"').next().unwrap();
            assert!(
                page.contains(&format!("<label for=\"{id}\"")),
                "no label for {id}"
            );
        }
    }
    for table in page.split("<table").skip(1) {
        let table = table.split("</table>").next().unwrap();
        assert!(
            table.contains("<th scope=\"col\""),
            "table without column headers"
        );
        assert_eq!(count(table, "<th>"), 0, "th without scope");
    }
}

#[test]
fn dashboard_over_http() {
    let d = Dash::start("dash-http");
    let host = d.addr.to_string();
    let violations = d.violations();
    assert_eq!(
        violations, 2,
        "seeded: lan .11 137/udp and lan@dmz .10 138/udp"
    );

    let (code, head, page) = get(d.addr, "/", &host);
    if let Ok(p) = std::env::var("DASH_DUMP") {
        std::fs::write(p, &page).unwrap();
    }
    assert_eq!(code, 200);
    assert!(
        head.contains(&format!(
            "content-security-policy: {}",
            web::CSP.to_ascii_lowercase()
        )),
        "{head}"
    );
    assert!(head.contains("text/html; charset=utf-8"));
    // Escaped everywhere: no hostile markup, the text is there escaped.
    assert!(!page.contains("<script>"), "unescaped script");
    assert!(!page.contains("\"onmouseover="), "attribute injection");
    assert!(!page.contains("<b>x</b>"));
    assert!(
        page.contains(&escaped(HOSTILE_HOST)),
        "host name shown as text"
    );
    assert!(
        page.contains(&escaped(HOSTILE_CHECK)),
        "check name shown as text"
    );
    assert!(
        page.contains(&escaped(HOSTILE_EVIDENCE)),
        "evidence shown as text"
    );
    // The only scripts are the external asset.
    assert_eq!(count(&page, "<script"), 1);
    assert!(page.contains("<script src=\"/assets/app.js?v="));
    assert!(!page.contains("style=\""), "no inline style (CSP)");
    assert_no_fractional_seconds(&page);
    assert_accessible(&page);
    // Summary.
    assert!(
        page.contains(&format!(
            "id=\"violation-count\" data-count=\"{violations}\""
        )),
        "summary count"
    );
    assert!(page.contains("2</span> violations now"));
    assert!(page.contains("since <time datetime="));
    // Grouping: one section per base check; lan has both vantage points on one chip.
    assert_eq!(count(&page, "<section class=\"check\""), 3);
    assert!(page.contains("vantage: local, dmz"));
    assert!(page.contains("dmz: open"));
    assert!(page.contains("local: closed"));
    assert!(page.contains("data-verdict=\"violation\""));
    assert!(page.contains("<time datetime=\"") && page.contains(" min ago</time>"));
    // Maintenance: the active global window and the weekly one of lan.
    assert!(
        page.contains("in maintenance</span> all checks"),
        "active window shown"
    );
    assert!(page.contains("lan: Sat 22:00–02:00 UTC"));
    // Timeline: every change (all are within the last 7 days, fewer than the cap).
    let all = d.changes(None, None, None);
    assert_eq!(count(&page, "<li class=\"change"), all);
    assert!(page.contains("PORT_NEW_OPEN"));

    // Filters.
    let (_, _, only) = get(d.addr, "/?violations=1", &host);
    assert_eq!(count(&only, "data-verdict=\"violation\""), 2);
    assert_eq!(count(&only, "data-verdict=\"ok\""), 0);
    assert!(only.contains("name=\"violations\" value=\"1\" checked"));
    let (_, _, lan) = get(d.addr, "/?check=servers", &host);
    assert_eq!(count(&lan, "<section class=\"check\""), 1);
    assert!(lan.contains("<option value=\"servers\" selected>"));
    let (_, _, open) = get(d.addr, "/?state=open", &host);
    assert_eq!(
        count(&open, "<a class=\"chip"),
        2,
        "137/udp on .11, 138/udp on .10 (dmz)"
    );

    // The live fragment: the same summary and groups, no page shell.
    let (code, head, frag) = get(d.addr, "/fragment/overview?violations=1", &host);
    assert_eq!(code, 200);
    assert!(head.contains("content-security-policy"));
    assert!(!frag.contains("<html") && !frag.contains("<form"));
    assert!(frag.contains(&format!("data-count=\"{violations}\"")));
    assert_eq!(count(&frag, "data-verdict=\"violation\""), 2);

    // Per-port history: both vantage points, 24 h and 7 d bars, every change.
    let (code, _, port) = get(
        d.addr,
        "/port?check=lan&target=198.51.100.10&port=138%2Fudp",
        &host,
    );
    assert_eq!(code, 200);
    assert_eq!(count(&port, "<section class=\"vantage\""), 2);
    assert_eq!(count(&port, "data-bar=\"day\""), 2);
    assert_eq!(count(&port, "data-bar=\"week\""), 2);
    let expect = d.changes(Some("lan"), Some("198.51.100.10"), Some("138/udp"))
        + d.changes(Some("lan@dmz"), Some("198.51.100.10"), Some("138/udp"));
    assert_eq!(count(&port, "<tr class=\"change"), expect);
    // local: known for 6 d (144 h), open for 25 of them: closed 82.6 %; last 24 h: open
    // until 5 h ago: closed 20.8 %. dmz: known for 72 h, open for the last 2: 97.2 %, 91.7 %.
    assert!(
        port.contains("closed <span class=\"share-closed\">82.6 %</span>"),
        "{port}"
    );
    assert!(
        port.contains("closed <span class=\"share-closed\">20.8 %</span>"),
        "{port}"
    );
    for share in ["97.2 %", "91.7 %"] {
        assert!(
            port.contains(&format!("share-closed\">{share}<")),
            "dmz {share}"
        );
    }
    assert!(
        port.contains("class=\"maint\""),
        "maintenance marked on the bars"
    );
    assert_no_fractional_seconds(&port);
    assert_accessible(&port);
    let (code, _, hostile) = get(
        d.addr,
        "/port?check=%3Cscript%3E%22onmouseover%3Dalert(1)&target=203.0.113.5&port=139%2Ftcp",
        &host,
    );
    assert_eq!(code, 200);
    assert!(!hostile.contains("<script>") && !hostile.contains("\"onmouseover="));
    assert_eq!(
        get(
            d.addr,
            "/port?check=lan&target=198.51.100.10&port=445%2Ftcp",
            &host
        )
        .0,
        404
    );
    assert_eq!(get(d.addr, "/port?check=lan", &host).0, 400);

    // Badges.
    let (code, head, svg) = get(d.addr, "/badge/lan.svg", &host);
    assert_eq!(code, 200);
    assert!(head.contains("content-type: image/svg+xml"));
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(
        svg.contains(">2 violations</text>") && svg.contains("#c62828"),
        "{svg}"
    );
    let (_, _, svg) = get(d.addr, "/badge/servers.svg", &host);
    assert!(
        svg.contains(">ok</text>") && svg.contains("#2e7d32"),
        "{svg}"
    );
    let (_, _, svg) = get(d.addr, "/badge/unprobed.svg", &host);
    assert!(
        svg.contains(">unknown</text>") && svg.contains("#616161"),
        "{svg}"
    );
    let (code, _, svg) = get(
        d.addr,
        "/badge/%3Cscript%3E%22onmouseover%3Dalert(1).svg",
        &host,
    );
    assert_eq!(code, 200);
    let title = format!("<title>nbdgm {}: ok</title>", escaped(HOSTILE_CHECK));
    assert!(svg.contains(&title), "{svg}");
    assert!(!svg.contains("<script"));
    assert_eq!(get(d.addr, "/badge/nope.svg", &host).0, 404);
    assert_eq!(get(d.addr, "/badge/lan.png", &host).0, 404);

    // Assets: embedded, long cache, right types.
    let (code, head, css) = get(d.addr, "/assets/app.css", &host);
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: text/css") && head.contains("max-age=31536000, immutable")
    );
    assert!(css.contains("prefers-color-scheme: dark"));
    let (code, head, js) = get(d.addr, "/assets/app.js", &host);
    assert_eq!(code, 200);
    assert!(head.contains("content-type: text/javascript"));
    assert!(js.contains("/fragment") || js.contains("data-src"));

    // The rest stays.
    for p in ["/api/state", "/api/changes", "/metrics", "/healthz"] {
        assert_eq!(get(d.addr, p, &host).0, 200, "{p}");
    }
    // A foreign Host is refused before any handler.
    assert_eq!(get(d.addr, "/", "evil.example").0, 421);
    assert_eq!(get(d.addr, "/badge/lan.svg", "evil.example:80").0, 421);
}

/// The same queries on PostgreSQL: the summary, the timeline, the port history.
#[test]
fn dashboard_on_postgres() {
    let Some(pg) = PgCluster::start("dashboard_on_postgres") else {
        return;
    };
    let store = Store::open(&pg.database("dash"), "test").unwrap();
    let d = Dash::with_store(store, TempDir::new("dash-pg"));
    let host = d.addr.to_string();
    let (code, _, page) = get(d.addr, "/", &host);
    assert_eq!(code, 200);
    assert!(page.contains("id=\"violation-count\" data-count=\"2\""));
    assert_eq!(
        count(&page, "<li class=\"change"),
        d.changes(None, None, None)
    );
    let (code, _, port) = get(
        d.addr,
        "/port?check=lan&target=198.51.100.10&port=138%2Fudp",
        &host,
    );
    assert_eq!(code, 200);
    assert!(port.contains("share-closed\">82.6 %<"), "{port}");
    assert!(port.contains("share-closed\">97.2 %<"), "{port}");
    let (_, _, svg) = get(d.addr, "/badge/lan.svg", &host);
    assert!(svg.contains(">2 violations</text>"), "{svg}");
}

/// Layout and content facts of the page as laid out (the page's script has run).
const MEASURE: &str = "(() => {
  const d = document.documentElement;
  let wide = 0;
  let first = '';
  for (const e of document.body.querySelectorAll('*')) {
    if (e.getBoundingClientRect().right > d.clientWidth + 1) {
      wide += 1;
      if (!first) { first = e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right; }
    }
  }
  const c = document.getElementById('violation-count');
  const live = document.getElementById('live');
  return {
    scrollWidth: d.scrollWidth, clientWidth: d.clientWidth, overflowing: wide, first: first,
    count: c ? Number(c.textContent) : null,
    timeline: document.querySelectorAll('#timeline li.change').length,
    violationChips: document.querySelectorAll('a.chip[data-verdict=violation]').length,
    okChips: document.querySelectorAll('a.chip[data-verdict=ok]').length,
    portChanges: document.querySelectorAll('tr.change').length,
    refreshes: live ? Number(live.getAttribute('data-refreshes') || 0) : 0,
    violationsOnly: !!(document.getElementById('f-violations') || {}).checked,
    search: location.search,
    times: Array.from(document.querySelectorAll('time')).map(t => t.textContent).join('|'),
  };
})()";

fn artefacts() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artefacts");
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn screenshot(bin: &str, url: &str, name: &str, width: u32, height: u32, extra: &[&str]) {
    let shot = artefacts().join(name);
    let _ = std::fs::remove_file(&shot);
    let mut args = vec!["--hide-scrollbars".to_owned()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.extend([
        format!("--window-size={width},{height}"),
        "--virtual-time-budget=3000".into(),
        format!("--screenshot={}", shot.display()),
        url.to_owned(),
    ]);
    chromium_run(bin, &args, Duration::from_secs(90));
    let png = std::fs::read(&shot).unwrap_or_default();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot {name}"
    );
}

fn add_violation(d: &Dash) {
    let mut s = d.store.lock().unwrap();
    let now = Utc::now();
    cycle(
        &mut s,
        "servers",
        now,
        &[(
            "203.0.113.20",
            None,
            &[port_result(
                Port::Smb445Tcp,
                PortState::Open,
                "SMB negotiate answered",
            )],
        )],
    );
    chain(
        &mut s,
        "servers",
        "203.0.113.20",
        "445/tcp",
        &[
            ("closed", CDuration::days(2)),
            ("open", CDuration::seconds(1)),
        ],
        false,
    );
}

#[test]
fn dashboard_in_chromium() {
    let Some(bin) = chromium_bin() else {
        skip("dashboard_in_chromium", "chromium not installed");
        return;
    };
    let d = Dash::start("dash-chromium");
    let violations = d.violations();
    let all_changes = d.changes(None, None, None);
    let port = d.url("/port?check=lan&target=198.51.100.10&port=138%2Fudp");
    let port_changes = d.changes(Some("lan"), Some("198.51.100.10"), Some("138/udp"))
        + d.changes(Some("lan@dmz"), Some("198.51.100.10"), Some("138/udp"));
    for width in [1400u32, 390] {
        let tall = if width > 1000 { 1300 } else { 2600 };
        screenshot(
            bin,
            &d.url("/"),
            &format!("dashboard-{width}.png"),
            width,
            tall,
            &[],
        );
        screenshot(bin, &port, &format!("port-{width}.png"), width, 1400, &[]);
    }
    screenshot(
        bin,
        &d.url("/"),
        "dashboard-390-dark.png",
        390,
        1600,
        &[
            "--force-dark-mode",
            "--blink-settings=preferredColorScheme=0",
        ],
    );

    let mut b = cdp::Browser::start(bin);
    for width in [1400u32, 390] {
        b.viewport(width, 900);
        b.open(&d.url("/"), "document.getElementById('violation-count')");
        let m = b.eval(MEASURE);
        assert_eq!(m["clientWidth"], width, "{m}");
        assert!(
            m["scrollWidth"].as_u64().unwrap() <= u64::from(width),
            "horizontal overflow at {width}px: {m}"
        );
        assert_eq!(
            m["overflowing"], 0,
            "elements past the right edge at {width}px: {m}"
        );
        assert_eq!(
            m["count"], violations as u64,
            "summary count = violations in the store: {m}"
        );
        assert_eq!(
            m["timeline"], all_changes as u64,
            "one entry per change: {m}"
        );
        let times = m["times"].as_str().unwrap();
        assert!(
            times.contains(" ago") && !times.contains('.'),
            "relative times: {times}"
        );

        b.open(&port, "document.querySelector('svg.timeline-bar')");
        let m = b.eval(MEASURE);
        assert!(
            m["scrollWidth"].as_u64().unwrap() <= u64::from(width),
            "port page overflow at {width}px: {m}"
        );
        assert_eq!(m["overflowing"], 0, "port page at {width}px: {m}");
        assert_eq!(m["portChanges"], port_changes as u64, "port timeline: {m}");
    }
    b.open(&d.url("/"), "document.getElementById('violation-count')");
    let text = "document.body.textContent.includes('<script>alert(2)</script>') \
                && document.querySelectorAll('script').length === 1";
    assert_eq!(
        b.eval(text),
        true,
        "hostile names shown as text, no injected script"
    );

    // Live: a new violation in the store, then "violations only": the fragment is
    // fetched and swapped in at once (no reload), the filter goes into the address.
    add_violation(&d);
    b.eval("document.documentElement.setAttribute('data-marker', 'same page')");
    b.eval("document.getElementById('f-violations').click()");
    b.wait("document.getElementById('live').getAttribute('data-refreshes')");
    assert_eq!(
        b.eval("document.documentElement.getAttribute('data-marker')"),
        "same page",
        "no reload"
    );
    let m = b.eval(MEASURE);
    assert_eq!(m["count"], violations as u64 + 1, "{m}");
    assert_eq!(m["violationChips"], 3, "{m}");
    assert_eq!(m["okChips"], 0, "{m}");
    assert_eq!(m["timeline"], all_changes as u64 + 1, "{m}");
    // The filters are remembered: "/" without a query comes back filtered.
    b.open(
        &d.url("/"),
        "document.getElementById('live').getAttribute('data-refreshes')",
    );
    let m = b.eval(MEASURE);
    assert_eq!(m["violationsOnly"], true, "{m}");
    assert_eq!(m["search"], "?violations=1", "{m}");
    assert_eq!(m["okChips"], 0, "{m}");
    // And every 15 s without any action.
    let before = m["refreshes"].as_u64().unwrap();
    let end = Instant::now() + Duration::from_secs(25);
    loop {
        let n = b.eval(MEASURE)["refreshes"].as_u64().unwrap();
        if n > before {
            break;
        }
        assert!(Instant::now() < end, "no periodic refresh within 25 s");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// WCAG contrast ratio of two `#rrggbb` colours.
fn contrast(a: &str, b: &str) -> f64 {
    let lum = |c: &str| {
        let c = c.trim_start_matches('#');
        let ch = |i: usize| {
            let v = f64::from(u8::from_str_radix(&c[i..i + 2], 16).unwrap()) / 255.0;
            if v <= 0.039_28 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * ch(0) + 0.7152 * ch(2) + 0.0722 * ch(4)
    };
    let (x, y) = (lum(a), lum(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

/// The custom properties of the first `:root {` block after `from` in the style sheet.
fn palette(css: &str, from: &str) -> std::collections::HashMap<String, String> {
    let start = css.find(from).unwrap();
    let block = &css[start..];
    let block = &block[block.find(":root {").unwrap() + ":root {".len()..];
    let block = &block[..block.find('}').unwrap()];
    block
        .split(';')
        .filter_map(|d| d.trim().split_once(':'))
        .filter(|(k, _)| k.trim().starts_with("--"))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn text_contrast_light_and_dark() {
    let css = include_str!("../assets/app.css");
    let pairs = [
        ("--text", "--bg"),
        ("--text", "--card"),
        ("--muted", "--card"),
        ("--muted", "--bg"),
        ("--link", "--card"),
        ("--link", "--bg"),
        ("--ok-fg", "--ok-bg"),
        ("--ok-fg", "--card"),
        ("--bad-fg", "--bad-bg"),
        ("--bad-fg", "--card"),
        ("--text", "--bad-bg"),
        ("--text", "--ok-bg"),
        ("--muted", "--bad-bg"),
        ("--muted", "--ok-bg"),
        ("--link", "--bad-bg"),
        ("--unk-fg", "--unk-bg"),
        ("--unk-fg", "--card"),
        ("--text", "--unk-bg"),
        ("--maint-fg", "--maint-bg"),
        ("--open-fg", "--open-bg"),
        ("--closed-fg", "--closed-bg"),
        ("--filt-fg", "--filt-bg"),
        ("--amb-fg", "--amb-bg"),
        ("--text", "--bar-none"),
    ];
    for scheme in ["/* nbdgm", "prefers-color-scheme: dark"] {
        let p = palette(css, scheme);
        assert!(p.len() > 20, "{scheme}: {p:?}");
        for (fg, bg) in pairs {
            let r = contrast(&p[fg], &p[bg]);
            assert!(r >= 4.5, "{scheme}: {fg} on {bg} is {r:.2}:1");
        }
    }
    // Badges: white text on the label grey and the three colours.
    for bg in ["#555555", "#2e7d32", "#c62828", "#616161"] {
        assert!(contrast("#ffffff", bg) >= 4.5, "badge {bg}");
    }
}
