//! Attack: name takeover through the API (issue 12 item 5), attacker (c): a local user
//! with the API group. Client B tries to take and release what client A, the
//! configuration and the browser own; every attempt is refused and the names stay.

use crate::common::{ports, Daemon, DaemonSpec, Scratch};
use nbdgm_client::proto::{ErrorCode, NameState};
use nbdgm_client::{Client, Error};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// The state of `name` on the daemon's (only) interface, if it holds it.
fn state(d: &Daemon, name: &str) -> Option<NameState> {
    d.client()
        .names()
        .unwrap()
        .interfaces
        .iter()
        .flat_map(|i| i.names.iter())
        .find(|n| n.name == name)
        .map(|n| n.state)
}

fn wait_registered(d: &Daemon, name: &str, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    while state(d, name) != Some(NameState::Registered) {
        assert!(
            Instant::now() < until,
            "{name} not registered: {:?}\n{}",
            d.client().names().unwrap(),
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn expect_refused<T: std::fmt::Debug>(what: &str, r: Result<T, Error>) {
    match r {
        Err(Error::Server {
            code: ErrorCode::Denied,
            ..
        }) => {}
        other => panic!("{what}: expected denied, got {other:?}"),
    }
}

#[test]
fn api_ownership_names_of_others_are_refused() {
    let s = Scratch::new("hostile-own");
    let addr = Ipv4Addr::new(127, 0, 50, 1);
    let extra = "[browser]\nlocal_master = true\npreferred_master = true\nos_level = 200\n";
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0,
        "own",
        "OWNNODE",
        addr,
        ports(),
        extra,
    ));
    d.wait_names(&["OWNNODE<00>", "TESTGROUP<00>"]);

    let mut a = d.client();
    let mut b = d.client();
    a.register("APPNAME<03>", false).unwrap();
    a.register("TEAM<00>", true).unwrap();
    wait_registered(&d, "APPNAME<03>", 10);

    // B registers A's unique name: refused, A keeps it.
    expect_refused("B registers A's name", b.register("APPNAME<03>", false));
    expect_refused(
        "B registers A's name as group",
        b.register("APPNAME<03>", true),
    );
    // B releases A's names, the configured names and the browser's names.
    expect_refused("B releases A's name", b.release("APPNAME<03>"));
    expect_refused("B releases A's group name", b.release("TEAM<00>"));
    for configured in ["OWNNODE<00>", "TESTGROUP<00>"] {
        expect_refused("B releases a configured name", b.release(configured));
        expect_refused(
            "B registers a configured name",
            b.register(configured, configured.starts_with("TESTGROUP")),
        );
    }
    // The browser becomes master on its own (preferred, alone): <1D> and MSBROWSE.
    wait_registered(&d, "TESTGROUP<1d>", 25);
    wait_registered(&d, "<01><02>__MSBROWSE__<02><01>", 10);
    for browser in [
        "TESTGROUP<1d>",
        "TESTGROUP<1e>",
        "\u{1}\u{2}__MSBROWSE__\u{2}<01>",
    ] {
        expect_refused("B releases a browser name", b.release(browser));
    }
    expect_refused(
        "B registers the browser's name",
        b.register("TESTGROUP<1d>", false),
    );
    // B's disconnect must not take anything with it.
    drop(b);
    std::thread::sleep(Duration::from_millis(300));
    for name in [
        "APPNAME<03>",
        "TEAM<00>",
        "OWNNODE<00>",
        "TESTGROUP<00>",
        "TESTGROUP<1d>",
        "<01><02>__MSBROWSE__<02><01>",
    ] {
        assert_eq!(
            state(&d, name),
            Some(NameState::Registered),
            "{name} lost\n{}",
            d.log_text()
        );
    }
    // A may still release its own name; then it is free for others.
    a.release("APPNAME<03>").unwrap();
    let mut c = d.client();
    c.register("APPNAME<03>", false).unwrap();
    let st = d.stats();
    assert!(
        st["api"]["names"]["refused_owned"].as_u64().unwrap() >= 4,
        "{st}"
    );
    assert!(
        st["api"]["names"]["refused_reserved"].as_u64().unwrap() >= 8,
        "{st}"
    );
    drop(c);
    a.hello().unwrap();
}

/// Attacker (b) on a TCP API: a local user without the token file's secret gets nothing.
#[test]
fn api_ownership_tcp_api_requires_token() {
    use nbdgm_client::proto::ServerMsg;
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new("hostile-token");
    let addr = Ipv4Addr::new(127, 0, 50, 2);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let token = "s3cret-token-0123456789abcdef";
    let token_file = s.0.join("api.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Without a token file a TCP API is a configuration error.
    let no_token = format!("[api]\ntcp = \"127.0.0.1:{port}\"\n");
    let spec = DaemonSpec::loopback(&s.0, "notoken", "TOKNODE", addr, ports(), &no_token);
    let file = s.0.join("notoken.toml");
    std::fs::write(&file, spec.toml()).unwrap();
    let out = crate::common::run(&[
        "serve",
        "--check-config",
        "--config",
        file.to_str().unwrap(),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success() && text.contains("tcp_token_file"),
        "a TCP API without a token must be refused: {text}"
    );

    let extra = format!(
        "[api]\ntcp = \"127.0.0.1:{port}\"\ntcp_token_file = \"{}\"\n",
        token_file.display()
    );
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0,
        "tok",
        "TOKNODE",
        addr,
        ports(),
        &extra,
    ));
    let connect = || {
        let mut c = Client::connect_tcp(("127.0.0.1", port)).unwrap();
        c.set_timeout(Duration::from_secs(5)).unwrap();
        c
    };
    // Each line is sent on a fresh connection; the answer must be `denied`.
    let refused = |first: &str| {
        let mut c = connect();
        c.send_raw_line(first.as_bytes()).unwrap();
        c.send_raw_line(br#"{"id":2,"op":"names"}"#).unwrap();
        match c.read_raw(Some(Duration::from_secs(5))) {
            Ok(Some(ServerMsg::Response(r))) => {
                assert!(!r.ok, "{first}: answered {r:?}");
                assert_eq!(r.error.unwrap().code, ErrorCode::Denied, "{first}");
            }
            other => panic!("{first}: {other:?}"),
        }
        // Nothing more: the connection is closed.
        assert!(
            !matches!(c.read_raw(Some(Duration::from_secs(5))), Ok(Some(_))),
            "{first}: more answers after the refusal"
        );
    };
    refused(r#"{"id":1,"op":"names"}"#);
    refused(r#"{"id":1,"op":"hello","client":"x"}"#);
    refused(r#"{"id":1,"op":"hello","token":"s3cret-token-0123456789abcdeX"}"#);
    refused(r#"{"id":1,"op":"hello","token":""}"#);
    // The right token opens the API.
    let mut c = connect();
    c.send_raw_line(format!(r#"{{"id":1,"op":"hello","token":"{token}"}}"#).as_bytes())
        .unwrap();
    match c.read_raw(Some(Duration::from_secs(5))).unwrap() {
        Some(ServerMsg::Response(r)) => assert!(r.ok, "{r:?}"),
        other => panic!("{other:?}"),
    }
    c.names().unwrap();
    // The Unix socket needs no token.
    d.client().names().unwrap();
    assert!(!d.log_text().contains(token), "the token reached the log");
}
