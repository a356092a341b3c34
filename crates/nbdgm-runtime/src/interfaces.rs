//! IPv4 interface discovery (`getifaddrs`): the interfaces a node can serve when none
//! is configured, and the default of the tools that run without a daemon.
//!
//! Discovery leaves out container and virtual bridges and their links (issue 17 §5):
//! serving them registers names and announces addresses nobody outside the host can
//! reach, and starts browser elections on networks nobody asked for. An interface is
//! left out when (first rule that applies):
//!
//! 1. it has a device behind it (`/sys/class/net/IF/device`: a physical NIC, a VM's
//!    virtio or emulated NIC): **never** left out, whatever its name;
//! 2. its name starts with one of [`SKIPPED_PREFIXES`] (Docker, Podman, libvirt, LXC/LXD,
//!    CNI plugins, Kubernetes, tun/tap);
//! 3. it is a bridge (`IF/bridge`) none of whose ports has a device behind it or is a
//!    bond or VLAN (a bridge with a physical uplink is the LAN of a VM host and is kept);
//! 4. it is a tun/tap device (`IF/tun_flags`) or an overlay (`DEVTYPE=vxlan` or
//!    `geneve` in `IF/uevent`).
//!
//! Anything else is kept, veths included: a veth that carries an IPv4 address is a
//! namespace's own link (a container's `eth0`), the one a daemon inside a container
//! must serve; the host-side ends of container veths carry no address.
//! The operator includes a left-out interface by naming its address in `[[interface]]`.

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

/// Where the kernel describes network interfaces.
pub const SYSFS_NET: &str = "/sys/class/net";

/// Name prefixes of container, VM and overlay interfaces (rule 2).
pub const SKIPPED_PREFIXES: &[&str] = &[
    "docker", "br-", "podman", "cni", "flannel", "cali", "weave", "vxlan", "virbr", "lxcbr",
    "lxdbr", "kube-", "cilium", "vnet", "tun", "tap",
];

/// An up, non-loopback IPv4 address of the system and the interface that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInterface {
    /// The kernel's interface name (escape it before printing).
    pub name: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub broadcast: Option<Ipv4Addr>,
}

/// Why discovery left an interface out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Rule 2: the name starts with this prefix.
    Name(&'static str),
    /// Rule 3: a bridge without a physical port.
    VirtualBridge,
    /// Rule 4: a tun/tap device.
    TunTap,
    /// Rule 4: an overlay link (`vxlan`, `geneve`).
    Overlay(&'static str),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Name(p) => {
                write!(f, "container or virtual interface (name starts with {p:?})")
            }
            SkipReason::VirtualBridge => {
                f.write_str("bridge without a physical port (container or VM bridge)")
            }
            SkipReason::TunTap => f.write_str("tun/tap device"),
            SkipReason::Overlay(k) => write!(f, "{k} overlay link"),
        }
    }
}

/// What sysfs says about one interface (all `false`/`None` when sysfs is missing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkFacts {
    /// `IF/device` exists: hardware or a VM's NIC.
    pub has_device: bool,
    /// `IF/bridge` exists.
    pub is_bridge: bool,
    /// A bridge port has a device behind it or is a bond or VLAN.
    pub bridge_uplink: bool,
    /// `IF/tun_flags` exists.
    pub tun: bool,
    /// `DEVTYPE=` of `IF/uevent`.
    pub devtype: Option<String>,
}

/// Bridge ports looked at per bridge (a bridge may have thousands of veths).
const MAX_PORTS: usize = 4096;

fn safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

fn devtype(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("uevent")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("DEVTYPE="))
        .map(|s| s.trim().to_owned())
}

fn is_uplink(sysfs_net: &Path, port: &str) -> bool {
    if !safe_name(port) {
        return false;
    }
    let dir = sysfs_net.join(port);
    dir.join("device").exists()
        || dir.join("bonding").exists()
        || devtype(&dir).as_deref() == Some("vlan")
}

impl LinkFacts {
    /// Read the facts of `name` under `sysfs_net` (normally [`SYSFS_NET`]).
    pub fn read(sysfs_net: &Path, name: &str) -> LinkFacts {
        if !safe_name(name) {
            return LinkFacts::default();
        }
        let dir = sysfs_net.join(name);
        let is_bridge = dir.join("bridge").is_dir();
        let bridge_uplink = is_bridge
            && std::fs::read_dir(dir.join("brif")).is_ok_and(|ports| {
                ports
                    .take(MAX_PORTS)
                    .flatten()
                    .any(|p| is_uplink(sysfs_net, &p.file_name().to_string_lossy()))
            });
        LinkFacts {
            has_device: dir.join("device").exists(),
            is_bridge,
            bridge_uplink,
            tun: dir.join("tun_flags").exists(),
            devtype: devtype(&dir),
        }
    }
}

/// The rules of the module comment: `Some(reason)` when discovery leaves `name` out.
pub fn classify(name: &str, facts: &LinkFacts) -> Option<SkipReason> {
    if facts.has_device {
        return None;
    }
    if let Some(p) = SKIPPED_PREFIXES.iter().find(|p| name.starts_with(**p)) {
        return Some(SkipReason::Name(p));
    }
    if facts.is_bridge && !facts.bridge_uplink {
        return Some(SkipReason::VirtualBridge);
    }
    if facts.tun {
        return Some(SkipReason::TunTap);
    }
    match facts.devtype.as_deref() {
        Some("vxlan") => Some(SkipReason::Overlay("vxlan")),
        Some("geneve") => Some(SkipReason::Overlay("geneve")),
        _ => None,
    }
}

/// The result of discovery: what is served and what was left out, with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    pub kept: Vec<SystemInterface>,
    pub skipped: Vec<(SystemInterface, SkipReason)>,
}

/// Every up, non-loopback IPv4 address of the system, once each.
pub fn all_system_interfaces() -> io::Result<Vec<SystemInterface>> {
    use nix::net::if_::InterfaceFlags;
    let addrs = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    let mut out: Vec<SystemInterface> = Vec::new();
    for ifa in addrs {
        if !ifa.flags.contains(InterfaceFlags::IFF_UP)
            || ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK)
        {
            continue;
        }
        let v4 = |a: &Option<nix::sys::socket::SockaddrStorage>| {
            a.as_ref().and_then(|s| s.as_sockaddr_in()).map(|s| s.ip())
        };
        let Some(ip) = v4(&ifa.address) else {
            continue;
        };
        let prefix = v4(&ifa.netmask).map_or(32, |m| u32::from(m).leading_ones() as u8);
        let broadcast = if ifa.flags.contains(InterfaceFlags::IFF_BROADCAST) {
            v4(&ifa.broadcast)
        } else {
            None
        };
        if !out.iter().any(|o| o.addr == ip) {
            out.push(SystemInterface {
                name: ifa.interface_name,
                addr: ip,
                prefix,
                broadcast,
            });
        }
    }
    Ok(out)
}

/// Split `list` by [`classify`], reading facts under `sysfs_net`.
pub fn split_interfaces(list: Vec<SystemInterface>, sysfs_net: &Path) -> Discovery {
    let mut d = Discovery::default();
    for i in list {
        match classify(&i.name, &LinkFacts::read(sysfs_net, &i.name)) {
            Some(r) => d.skipped.push((i, r)),
            None => d.kept.push(i),
        }
    }
    d
}

/// Discovery on this system ([`all_system_interfaces`] split by [`classify`]).
pub fn discover_interfaces() -> io::Result<Discovery> {
    Ok(split_interfaces(
        all_system_interfaces()?,
        Path::new(SYSFS_NET),
    ))
}

/// The system interface holding `addr` and, when discovery would leave it out, why.
pub fn interface_of(addr: Ipv4Addr) -> Option<(SystemInterface, Option<SkipReason>)> {
    let i = all_system_interfaces()
        .ok()?
        .into_iter()
        .find(|i| i.addr == addr)?;
    let r = classify(&i.name, &LinkFacts::read(Path::new(SYSFS_NET), &i.name));
    Some((i, r))
}

/// `addr` is in Docker's default bridge network, 172.17.0.0/16.
pub fn is_docker_default(addr: Ipv4Addr) -> bool {
    let [a, b, _, _] = addr.octets();
    a == 172 && b == 17
}

/// The interfaces discovery keeps: (address, prefix length, broadcast).
pub fn system_interfaces() -> io::Result<Vec<(Ipv4Addr, u8, Option<Ipv4Addr>)>> {
    Ok(discover_interfaces()?
        .kept
        .into_iter()
        .map(|i| (i.addr, i.prefix, i.broadcast))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn system_interfaces_are_ipv4_non_loopback_and_unique() {
        // No assumption about the machine beyond: what is listed is usable.
        if let Ok(list) = system_interfaces() {
            for (i, (ip, prefix, _)) in list.iter().enumerate() {
                assert!(!ip.is_loopback(), "{ip}");
                assert!(*prefix <= 32);
                assert!(!list[..i].iter().any(|(o, _, _)| o == ip), "{ip} twice");
            }
        }
    }

    fn facts() -> LinkFacts {
        LinkFacts::default()
    }

    #[test]
    fn container_names_are_skipped_without_a_device() {
        for n in [
            "docker0",
            "br-3f2a9c",
            "virbr0",
            "cni0",
            "flannel.1",
            "cali12ab",
            "weave",
            "vxlan.calico",
            "podman0",
            "lxcbr0",
            "lxdbr0",
            "tun0",
            "tap3",
            "kube-ipvs0",
            "cilium_host",
            "vnet7",
        ] {
            assert!(
                matches!(classify(n, &facts()), Some(SkipReason::Name(_))),
                "{n}"
            );
        }
        // Plain names, a container's own veth and a LAN bridge named br0 are kept.
        for n in [
            "eth0",
            "ens3",
            "enp0s31f6",
            "wlan0",
            "br0",
            "bond0",
            "eth0.100",
            "veth0",
            "vethab12",
        ] {
            assert_eq!(classify(n, &facts()), None, "{n}");
        }
    }

    #[test]
    fn a_device_behind_the_interface_always_keeps_it() {
        let hw = LinkFacts {
            has_device: true,
            is_bridge: true,
            tun: true,
            devtype: Some("vxlan".into()),
            ..facts()
        };
        for n in ["eth0", "docker0", "tap0", "br-x"] {
            assert_eq!(classify(n, &hw), None, "{n}");
        }
    }

    #[test]
    fn bridges_tun_and_overlays_by_kind() {
        let bridge = LinkFacts {
            is_bridge: true,
            ..facts()
        };
        assert_eq!(classify("lan9", &bridge), Some(SkipReason::VirtualBridge));
        let uplinked = LinkFacts {
            bridge_uplink: true,
            ..bridge
        };
        assert_eq!(classify("lan9", &uplinked), None);
        let tun = LinkFacts {
            tun: true,
            ..facts()
        };
        assert_eq!(classify("vpn0", &tun), Some(SkipReason::TunTap));
        let vx = LinkFacts {
            devtype: Some("vxlan".into()),
            ..facts()
        };
        assert_eq!(classify("ov1", &vx), Some(SkipReason::Overlay("vxlan")));
        let vlan = LinkFacts {
            devtype: Some("vlan".into()),
            ..facts()
        };
        assert_eq!(classify("lan.5", &vlan), None);
    }

    fn iface(name: &str, last: u8) -> SystemInterface {
        SystemInterface {
            name: name.into(),
            addr: Ipv4Addr::new(198, 51, 100, last),
            prefix: 24,
            broadcast: Some(Ipv4Addr::new(198, 51, 100, 255)),
        }
    }

    /// A fake `/sys/class/net`: a NIC, a VM host's bridge with the NIC as port, a
    /// container bridge with veth ports, a tun, a virtio NIC with a container-like name.
    #[test]
    fn facts_are_read_from_an_injected_sysfs() {
        let root = std::env::temp_dir().join(format!("nbdgm-sysfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let net = root.as_path();
        let mk = |p: &str| fs::create_dir_all(net.join(p)).unwrap();
        mk("eth0/device");
        mk("br0/bridge");
        mk("br0/brif/eth0");
        mk("lan9/bridge");
        mk("lan9/brif/veth1");
        mk("veth1");
        mk("eth1/device");
        mk("bond0/bonding");
        mk("br1/bridge");
        mk("br1/brif/bond0");
        mk("vpn0");
        fs::write(net.join("vpn0/tun_flags"), "0x1001\n").unwrap();
        mk("ov1");
        fs::write(net.join("ov1/uevent"), "DEVTYPE=vxlan\nINTERFACE=ov1\n").unwrap();
        mk("tap9/device"); // a virtio NIC someone named tap9
        let list = vec![
            iface("eth0", 1),
            iface("br0", 2),
            iface("lan9", 3),
            iface("br1", 4),
            iface("vpn0", 5),
            iface("ov1", 6),
            iface("tap9", 7),
            iface("../etc", 8),
        ];
        let d = split_interfaces(list, net);
        let kept: Vec<&str> = d.kept.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(kept, ["eth0", "br0", "br1", "tap9", "../etc"]);
        let skipped: Vec<(&str, &SkipReason)> = d
            .skipped
            .iter()
            .map(|(i, r)| (i.name.as_str(), r))
            .collect();
        assert_eq!(
            skipped,
            [
                ("lan9", &SkipReason::VirtualBridge),
                ("vpn0", &SkipReason::TunTap),
                ("ov1", &SkipReason::Overlay("vxlan")),
            ]
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn docker_default_network() {
        assert!(is_docker_default(Ipv4Addr::new(172, 17, 0, 1)));
        assert!(!is_docker_default(Ipv4Addr::new(172, 18, 0, 1)));
        assert!(!is_docker_default(Ipv4Addr::new(198, 51, 100, 1)));
    }
}
