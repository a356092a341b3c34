//! Containers and multi-homed hosts (issue 17 §5), in a lab namespace: a host with a
//! normal link (the lab's veth, standing for a NIC), a Docker-style bridge `docker0`
//! with a veth port, and a port-less bridge `lan9` (a virtual bridge by kind only).
//! Without `[[interface]]` the daemon serves only the normal link, logs what it left
//! out, and no name-service or browser traffic leaves `docker0`; browser roles run on
//! the discovered link only with `[browser] auto_interfaces = true`; naming the
//! bridge's address in `[[interface]]` serves it, with a warning.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_lab::{Host, Proc};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const T: &str = "containers";
const DOCKER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

fn ip(host: &Host, args: &[&str]) {
    let out = host.output("ip", args).unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `docker0` (203.0.113.1/25) with a veth port whose peer is up, and `lan9`
/// (203.0.113.129/25) without ports.
fn add_container_bridges(h: &Host) {
    ip(
        h,
        &[
            "link",
            "add",
            "docker0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ],
    );
    ip(h, &["addr", "add", "203.0.113.1/25", "dev", "docker0"]);
    ip(
        h,
        &[
            "link", "add", "vethc0", "type", "veth", "peer", "name", "cpeer0",
        ],
    );
    ip(h, &["link", "set", "vethc0", "master", "docker0"]);
    for l in ["vethc0", "cpeer0", "docker0"] {
        ip(h, &["link", "set", l, "up"]);
    }
    ip(h, &["link", "add", "lan9", "type", "bridge"]);
    ip(h, &["addr", "add", "203.0.113.129/25", "dev", "lan9"]);
    ip(h, &["link", "set", "lan9", "up"]);
}

/// A NetBIOS capture on one interface of the host, stopped with SIGINT.
struct Capture {
    proc: Proc,
    path: PathBuf,
}

impl Capture {
    fn start(h: &Host, iface: &str, path: PathBuf) -> Capture {
        let mut cmd = h.cmd("tshark");
        cmd.args([
            "-q",
            "-i",
            iface,
            "-F",
            "pcap",
            "-f",
            "udp port 137 or udp port 138",
            "-w",
        ])
        .arg(&path);
        let proc = h.spawn(cmd).unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        while !proc
            .read_stderr()
            .unwrap_or_default()
            .contains("Capturing on")
        {
            assert!(proc.is_running(), "tshark on {iface} exited");
            assert!(Instant::now() < until, "tshark on {iface} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Capture { proc, path }
    }

    /// Stop and list the packets: `source address<TAB>browser command` per packet.
    fn stop(self) -> Vec<String> {
        self.proc.signal(nix::sys::signal::Signal::SIGINT).unwrap();
        assert!(self
            .proc
            .wait_timeout(Duration::from_secs(10))
            .unwrap()
            .is_some());
        read_pcap(&self.path)
    }
}

fn read_pcap(path: &Path) -> Vec<String> {
    let out = std::process::Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args(["-T", "fields", "-e", "ip.src", "-e", "browser.command"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Election requests (MS-BRWS command 8) in a listing of [`Capture::stop`].
fn elections(list: &[String]) -> usize {
    list.iter()
        .filter(|l| l.ends_with("\t0x08") || l.ends_with("\t8"))
        .count()
}

fn config(dir: &Path, tag: &str, interfaces: &str, browser: &str) -> String {
    format!(
        "[node]\nname = \"CTEST\"\nworkgroup = \"TESTGROUP\"\n\n{interfaces}\n\
         [api]\nsocket = \"{}\"\n\n[log]\nlevel = \"debug\"\n\n\
         [browser]\nlocal_master = true\npreferred_master = true\nos_level = 200\n{browser}",
        dir.join(format!("{tag}.sock")).display()
    )
}

fn start(h: &Host, dir: &Path, tag: &str, toml: &str) -> Daemon {
    let wrapper = vec![
        "ip".into(),
        "netns".into(),
        "exec".into(),
        h.netns().to_string(),
    ];
    let d = Daemon::start_toml(dir, tag, h.addr(), toml, &wrapper);
    d.wait_names(&["CTEST<00>"]);
    d
}

fn served(d: &Daemon) -> Vec<IpAddr> {
    let names = d.client().names().unwrap();
    names.interfaces.iter().map(|i| i.interface).collect()
}

fn role(d: &Daemon) -> String {
    let b = d.client().browse(None).unwrap();
    b.interfaces
        .first()
        .map(|i| i.role.clone())
        .unwrap_or_default()
}

#[test]
fn container_bridges_are_not_served_or_elected_on_unless_named() {
    if !nbdgm_lab::require_tools_or_skip(T, &["tshark"]) {
        return;
    }
    let lab = nbdgm_lab::Lab::new(nbdgm_lab::LabSpec::one_subnet()).unwrap();
    let h = lab.add_host("d", "198.51.100.10/24").unwrap();
    add_container_bridges(&h);
    let dir = Scratch::new(T);
    let lan = IpAddr::V4(h.addr());

    // 1. Discovered interfaces, browser roles not asked for them: only listening.
    let cap = Capture::start(&h, h.iface(), dir.0.join("quiet.pcap"));
    let mut d = start(&h, &dir.0, "quiet", &config(&dir.0, "quiet", "", ""));
    assert_eq!(served(&d), [lan]);
    let log = d.log_text();
    assert!(log.contains("browser.auto_interfaces"), "{log}");
    // Long enough for the election the other run shows (start-up + a few seconds).
    std::thread::sleep(Duration::from_secs(6));
    assert_ne!(role(&d), "master");
    d.stop();
    let quiet = cap.stop();
    assert!(
        !quiet.is_empty(),
        "no name registration captured on {}",
        h.iface()
    );
    assert_eq!(elections(&quiet), 0, "{quiet:?}");

    // 2. Browser roles asked for discovered interfaces: an election on the LAN link,
    // nothing at all on docker0.
    let on_lan = Capture::start(&h, h.iface(), dir.0.join("lan.pcap"));
    let on_docker = Capture::start(&h, "docker0", dir.0.join("docker0.pcap"));
    let toml = config(&dir.0, "auto", "", "auto_interfaces = true\n");
    let mut d = start(&h, &dir.0, "auto", &toml);
    assert_eq!(served(&d), [lan]);
    let log = d.log_text();
    for (iface, why) in [
        ("docker0", "name starts with"),
        ("lan9", "bridge without a physical port"),
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("not served") && l.contains(iface) && l.contains(why)),
            "{iface}: {log}"
        );
    }
    let lan_addr = h.addr().to_string();
    assert!(
        !log.lines()
            .any(|l| l.contains("not served") && l.contains(&lan_addr)),
        "{log}"
    );
    let until = Instant::now() + Duration::from_secs(30);
    while role(&d) != "master" {
        assert!(
            Instant::now() < until,
            "no master after 30 s:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    d.stop();
    let lan_list = on_lan.stop();
    let docker_list = on_docker.stop();
    assert!(elections(&lan_list) > 0, "{lan_list:?}");
    assert!(
        docker_list.is_empty(),
        "traffic on docker0: {docker_list:?}"
    );

    // 3. The bridge named in [[interface]]: served, with a warning naming it.
    let ifaces = format!(
        "[[interface]]\naddress = \"{}/24\"\n\n[[interface]]\naddress = \"{DOCKER}/25\"\n",
        h.addr()
    );
    let mut d = start(&h, &dir.0, "named", &config(&dir.0, "named", &ifaces, ""));
    let mut list = served(&d);
    list.sort();
    assert_eq!(list, [lan, IpAddr::V4(DOCKER)]);
    let log = d.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("is docker0") && l.contains("announce_address")),
        "{log}"
    );
    assert!(!log.contains("not served"), "{log}");
    d.stop();
}
