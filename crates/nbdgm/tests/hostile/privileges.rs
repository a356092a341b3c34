//! Attack: privileges (issue 12 item 10, daemon half), attacker (a): a WinPopup message
//! from the subnet starts the messenger exec hook. The hook must not get the unit's
//! ambient capability (CAP_NET_BIND_SERVICE, `AmbientCapabilities=` in
//! dist/nbdgm.service) nor, under a root daemon, root's capabilities; its environment
//! holds only PATH and LANG. A daemon running as root without `[privileges] user` warns
//! at start-up and in `--check-config`.

use crate::common::*;
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, MESSNGR};
use nbdgm_wire::messenger::Message;
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// What the hook saw: its /proc status and its environment.
struct HookView {
    status: String,
    env: Vec<String>,
}

impl HookView {
    fn cap(&self, key: &str) -> u64 {
        let line = self
            .status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {}", self.status));
        u64::from_str_radix(line.trim_start_matches(':').trim(), 16).unwrap()
    }
}

/// Start a daemon (under `wrapper`), send one WinPopup message to `HOOKED<03>` and
/// return what its exec hook recorded.
fn hook_view(s: &Scratch, tag: &str, addr: Ipv4Addr, wrapper: Vec<String>) -> (Daemon, HookView) {
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let base = s.0.join(format!("{tag}-hook"));
    // $$ is the hook itself (sh started by execve): its environment and status as the
    // daemon left them.
    let script =
        "/bin/cat /proc/$$/environ > \"$0.env.tmp\"; /bin/cat /proc/$$/status > \"$0.st.tmp\"; \
                  /bin/mv \"$0.env.tmp\" \"$0.env\"; /bin/mv \"$0.st.tmp\" \"$0.status\"";
    let extra = format!(
        "[node]\nmessenger = true\n[messenger]\nexec = [\"/bin/sh\", \"-c\", {}, \"{}\"]\n",
        toml_str(script),
        base.display()
    );
    let ports = ports();
    let mut spec = DaemonSpec::loopback(&s.0, tag, "HOOKED", addr, ports, &extra);
    spec.wrapper = wrapper;
    let d = Daemon::start(spec);
    d.wait_names(&["HOOKED<03>"]);

    let sock = UdpSocket::bind((Ipv4Addr::new(addr.octets()[0], 0, 123, 200), 0)).unwrap();
    let me = sock.local_addr().unwrap();
    let body = Message::new("ATTACKER", "HOOKED", "hello")
        .to_bytes()
        .unwrap();
    let data = MailslotWrite::new(MESSNGR, body).to_bytes().unwrap();
    let std::net::SocketAddr::V4(me) = me else {
        unreachable!()
    };
    let dgram = Datagram::data(
        MsgType::DirectUnique,
        NodeType::B,
        9,
        (*me.ip(), me.port()),
        Name::new("ATTACKER", 0).unwrap(),
        Name::new("HOOKED", 3).unwrap(),
        data,
    );
    sock.send_to(&dgram.to_bytes().unwrap(), (addr, ports.1))
        .unwrap();

    let status = base.with_extension("status");
    let env = base.with_extension("env");
    let until = Instant::now() + Duration::from_secs(10);
    while !status.exists() || !env.exists() {
        assert!(
            Instant::now() < until,
            "the hook did not run; stats {}\nlog:\n{}",
            d.stats(),
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let view = HookView {
        status: std::fs::read_to_string(&status).unwrap(),
        env: read_env(&env),
    };
    (d, view)
}

fn read_env(p: &Path) -> Vec<String> {
    std::fs::read(p)
        .unwrap()
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn assert_no_privileges(v: &HookView) {
    for key in ["CapAmb", "CapPrm", "CapEff", "CapInh"] {
        assert_eq!(v.cap(key), 0, "{key} of the hook:\n{}", v.status);
    }
    assert!(
        v.status.lines().any(|l| l == "NoNewPrivs:\t1"),
        "no_new_privs not set:\n{}",
        v.status
    );
    for var in &v.env {
        let key = var.split('=').next().unwrap_or("");
        assert!(
            key == "PATH" || key == "LANG",
            "unexpected variable {var:?} in {:?}",
            v.env
        );
    }
}

#[test]
fn hook_drops_the_units_ambient_capability() {
    if !is_root() {
        eprintln!("SKIPPED: needs root (setpriv to a user with an ambient capability)");
        return;
    }
    let s = Scratch::new("priv-ambient");
    // The systemd unit in miniature: user nobody, CAP_NET_BIND_SERVICE ambient.
    let wrapper: Vec<String> = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+net_bind_service",
        "--ambient-caps=+net_bind_service",
    ]
    .map(String::from)
    .to_vec();
    let (_d, v) = hook_view(&s, "amb", Ipv4Addr::new(127, 0, 123, 10), wrapper);
    assert_no_privileges(&v);
}

#[test]
fn root_daemon_warns_and_its_hook_runs_without_capabilities() {
    if !is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let s = Scratch::new("priv-root");
    let (d, v) = hook_view(&s, "root", Ipv4Addr::new(127, 0, 123, 20), vec![]);
    assert_no_privileges(&v);
    let log = d.log_text();
    assert!(
        log.contains("running as root without [privileges] user"),
        "no root warning in the log:\n{log}"
    );
    let out = run(&[
        "serve",
        "--check-config",
        "--config",
        d.config.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("running as root without [privileges] user"),
        "no root warning in --check-config:\n{text}"
    );
}
