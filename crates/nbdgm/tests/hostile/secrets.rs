//! Attack: secrets (issue 12 item 10, monitor side). A malicious SMTP peer (d) that offers
//! no STARTTLS must never see the credentials; webhook tokens stay out of logs, the store
//! and text output; the store is private to its owner (b); exec sinks see only the
//! documented environment.

use crate::common::{bin, Scratch};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "hunter2-S3CRET-PASS";
const TOKEN: &str = "XOXB-S3CRET-TOKEN";

struct Monitor(Child);

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `nbdgm monitor run` on `dir/m.toml` with every port scripted open (a bad baseline: one
/// alert per port at once).
fn start(dir: &Path, env: &[(&str, &str)]) -> Monitor {
    start_under(dir, env, &[])
}

/// [`start`] under a wrapper command (e.g. `setpriv ...`).
fn start_under(dir: &Path, env: &[(&str, &str)], wrapper: &[&str]) -> Monitor {
    std::fs::write(dir.join("states"), "138/udp open\nnames EVIL<20>\n").unwrap();
    let err = std::fs::File::create(dir.join("run.log")).unwrap();
    let mut c = match wrapper.split_first() {
        Some((w, rest)) => {
            let mut c = std::process::Command::new(w);
            c.args(rest).arg(env!("CARGO_BIN_EXE_nbdgm"));
            c
        }
        None => bin(),
    };
    c.args(["monitor", "run", "--config"])
        .arg(dir.join("m.toml"))
        .arg("--fake-states")
        .arg(dir.join("states"))
        .env("NBDGM_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    for (k, v) in env {
        c.env(k, v);
    }
    Monitor(c.spawn().expect("start nbdgm monitor run"))
}

fn config(dir: &Path, store: &str, sinks: &str) {
    std::fs::write(
        dir.join("m.toml"),
        format!(
            "[store]\nurl = \"{store}\"\ninstance = \"t\"\n[alerts]\nattempts = 1\n\
             [[check]]\nname = \"c\"\ntargets = [\"198.51.100.10\"]\nports = [\"138/udp\"]\n\
             interval = \"200ms\"\nconfirmations = 1\n{sinks}"
        ),
    )
    .unwrap();
}

fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Every byte of the SQLite files (db, -wal, -shm) as text.
fn store_bytes(db: &Path) -> String {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", db.display());
        all.extend(std::fs::read(p).unwrap_or_default());
    }
    String::from_utf8_lossy(&all).into_owned()
}

/// A hostile SMTP server: offers AUTH but no STARTTLS, records every line it is sent.
fn plaintext_smtp() -> (u16, Arc<Mutex<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(String::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        l.set_nonblocking(true).unwrap();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            let Ok((s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let _ = w.write_all(b"220 evil ESMTP\r\n");
            for _ in 0..50 {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                s2.lock().unwrap().push_str(&line);
                let cmd = line.trim_end().to_ascii_uppercase();
                let reply: &[u8] = if cmd.starts_with("EHLO") {
                    b"250-evil\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                } else if cmd.starts_with("AUTH") {
                    b"235 ok\r\n"
                } else if cmd == "DATA" {
                    b"354 go\r\n"
                } else if cmd == "QUIT" {
                    let _ = w.write_all(b"221 bye\r\n");
                    break;
                } else {
                    b"250 ok\r\n"
                };
                let _ = w.write_all(reply);
            }
        }
    });
    (port, seen)
}

fn b64(s: &str) -> String {
    // Enough base64 for the check: the credentials of AUTH PLAIN are "\0user\0pass".
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn smtp_credentials_never_cross_plaintext() {
    let dir = Scratch::new("secrets-smtp");
    let (port, seen) = plaintext_smtp();
    let sink = |tls: &str| {
        format!(
            "[[sink]]\nname = \"mail\"\ntype = \"email\"\nserver = \"127.0.0.1\"\nport = {port}\n\
             from = \"nbdgm@example.org\"\nto = [\"ops@example.org\"]\nusername = \"alice\"\n\
             password_env = \"SMTP_PASS\"\ntimeout = \"3s\"\n{tls}"
        )
    };
    let db = dir.0.join("m.db");
    // Credentials on a plaintext connection (the old default): refused as a config error.
    config(&dir.0, db.to_str().unwrap(), &sink(""));
    let mut m = start(&dir.0, &[("SMTP_PASS", PASSWORD)]);
    let exited = wait_until(Duration::from_secs(8), || {
        matches!(m.0.try_wait(), Ok(Some(_)))
    });
    let log = std::fs::read_to_string(dir.0.join("run.log")).unwrap_or_default();
    let transcript = seen.lock().unwrap().clone();
    assert!(
        !transcript.to_ascii_uppercase().contains("AUTH"),
        "credentials were offered on a plaintext connection:\n{transcript}"
    );
    let code = m.0.try_wait().ok().flatten().and_then(|s| s.code());
    assert!(exited && code == Some(2), "not refused ({code:?}): {log}");
    assert!(
        log.contains("sink[0].tls") && log.contains("TLS"),
        "the error names the key: {log}"
    );
    drop(m);

    // STARTTLS required, and the peer offers none: the alert fails, nothing is sent.
    config(&dir.0, db.to_str().unwrap(), &sink("tls = \"starttls\"\n"));
    let _m = start(&dir.0, &[("SMTP_PASS", PASSWORD)]);
    let failed = wait_until(Duration::from_secs(15), || {
        store_bytes(&db).contains("STARTTLS")
    });
    let transcript = seen.lock().unwrap().clone();
    assert!(
        !transcript.to_ascii_uppercase().contains("AUTH")
            && !transcript.contains(&b64(&format!("\0alice\0{PASSWORD}")))
            && !transcript.contains("MAIL FROM"),
        "{transcript}"
    );
    let log = std::fs::read_to_string(dir.0.join("run.log")).unwrap_or_default();
    assert!(failed, "the delivery error names STARTTLS: {log}");
    assert!(!log.contains(PASSWORD));
}

/// A webhook receiver that answers 500 with a body full of control bytes.
fn rude_receiver() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        l.set_nonblocking(true).unwrap();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            let Ok((mut s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 8192];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let body = "no\x1b[2J\nFORGED log line";
            let _ = write!(
                s,
                "HTTP/1.1 500 Oops\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn webhook_tokens_stay_out_of_logs_store_and_output() {
    let dir = Scratch::new("secrets-webhook");
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rude = rude_receiver();
    let db = dir.0.join("m.db");
    let sinks = format!(
        "[[sink]]\nname = \"slack\"\ntype = \"webhook\"\nformat = \"slack\"\ntimeout = \"2s\"\n\
         url = \"http://127.0.0.1:{closed}/services/T0/B0/{TOKEN}\"\n\
         [[sink]]\nname = \"ntfy\"\ntype = \"webhook\"\nformat = \"ntfy\"\ntimeout = \"2s\"\n\
         url = \"http://bob:{TOKEN}P@127.0.0.1:{rude}/topic-{TOKEN}Q?auth={TOKEN}A\"\n"
    );
    config(&dir.0, db.to_str().unwrap(), &sinks);
    let check = bin()
        .args(["monitor", "run", "--check-config", "--config"])
        .arg(dir.0.join("m.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{text}");
    assert!(!text.contains(TOKEN), "{text}");

    let m = start(&dir.0, &[]);
    let both = wait_until(Duration::from_secs(20), || {
        let log = std::fs::read_to_string(dir.0.join("run.log")).unwrap_or_default();
        log.matches("alert not delivered").count() >= 2
    });
    drop(m);
    let log = std::fs::read_to_string(dir.0.join("run.log")).unwrap_or_default();
    assert!(both, "both deliveries fail: {log}");
    assert!(!log.contains(TOKEN), "token in the log: {log}");
    assert!(
        !log.contains("\nFORGED"),
        "peer text forged a log line: {log}"
    );
    assert!(log.contains("127.0.0.1"), "the host is still shown: {log}");
    let stored = store_bytes(&db);
    assert!(stored.contains("HTTP 500"), "the failure is stored");
    assert!(!stored.contains(TOKEN), "token in the store");
    for args in [
        &["status"][..],
        &["history"][..],
        &["history", "--changes"][..],
    ] {
        let mut c = bin();
        c.arg("monitor").args(args).arg("--store").arg(&db);
        let o = c.output().unwrap();
        let t =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(!t.contains(TOKEN), "{args:?}: {t}");
    }
}

#[test]
fn store_is_private() {
    let dir = Scratch::new("secrets-store");
    let db = dir.0.join("state").join("m.db");
    config(
        &dir.0,
        db.to_str().unwrap(),
        "[[sink]]\nname = \"t\"\ntype = \"exec\"\nprogram = \"/bin/true\"\n",
    );
    let m = start(&dir.0, &[]);
    let ok = wait_until(Duration::from_secs(10), || {
        Path::new(&format!("{}-wal", db.display())).exists()
            && Path::new(&format!("{}-shm", db.display())).exists()
    });
    drop(m);
    assert!(ok, "the store was written");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.0.join("state")), 0o700, "store directory");
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", db.display());
        assert_eq!(mode(Path::new(&p)), 0o600, "{p}");
    }
}

#[test]
fn exec_sink_sees_only_the_documented_environment() {
    let dir = Scratch::new("secrets-exec");
    let out = dir.0.join("env.txt");
    let caps = dir.0.join("caps.txt");
    config(
        &dir.0,
        dir.0.join("m.db").to_str().unwrap(),
        &format!(
            "[[sink]]\nname = \"hook\"\ntype = \"exec\"\nprogram = \"/bin/sh\"\n\
             args = [\"-c\", \"grep CapAmb /proc/self/status > {}; env > {}.tmp; mv {}.tmp {}\"]\n",
            caps.display(),
            out.display(),
            out.display(),
            out.display()
        ),
    );
    // The monitor runs with an ambient capability (as a unit's AmbientCapabilities= gives
    // it); the hook must not inherit it.
    let m = start_under(
        &dir.0,
        &[("AWS_SECRET_ACCESS_KEY", PASSWORD), ("LANG", "C.UTF-8")],
        &[
            "/usr/bin/setpriv",
            "--inh-caps",
            "+net_bind_service",
            "--ambient-caps",
            "+net_bind_service",
        ],
    );
    let ok = wait_until(Duration::from_secs(10), || out.exists());
    drop(m);
    assert!(ok, "the hook ran");
    let env = std::fs::read_to_string(&out).unwrap();
    assert!(!env.contains(PASSWORD), "{env}");
    for line in env.lines() {
        let Some((k, _)) = line.split_once('=') else {
            continue; // a continuation of a multi-line value
        };
        assert!(
            k.starts_with("NBDGM_") || ["PATH", "LANG", "PWD", "SHLVL", "_"].contains(&k),
            "unexpected variable {k} in the hook's environment:\n{env}"
        );
    }
    assert!(env.contains("NBDGM_ALERT_KIND=PORT_NEW_OPEN"), "{env}");
    assert!(env.contains("LANG=C.UTF-8"), "{env}");
    let amb = std::fs::read_to_string(&caps).unwrap();
    assert_eq!(
        amb.trim(),
        "CapAmb:\t0000000000000000",
        "ambient capabilities inherited"
    );
}
