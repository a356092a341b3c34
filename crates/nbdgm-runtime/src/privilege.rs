//! Privileges: dropping root after the sockets are bound, checking whether
//! ports 137/138 can be bound at all, and turning bind errors into advice. Issue 12
//! item 10: the warning for root without `[privileges] user`, and exec hooks that
//! start with no capability at all ([`confine_hook`]).

use nix::errno::Errno;
use nix::unistd::{self, Gid, Group, Uid, User};
use std::io;
use std::net::SocketAddr;

/// Bit of `CAP_NET_BIND_SERVICE` in the capability sets (linux/capability.h).
pub const CAP_NET_BIND_SERVICE: u32 = 10;
/// Lowest port that needs `CAP_NET_BIND_SERVICE` on Linux unless the sysctl
/// `net.ipv4.ip_unprivileged_port_start` says otherwise.
pub const DEFAULT_UNPRIVILEGED_PORT_START: u16 = 1024;

/// Why privileges could not be dropped.
#[derive(Debug, thiserror::Error)]
pub enum PrivError {
    #[error("not running as root (euid {euid}): nothing to drop; [privileges] user applies only when started as root")]
    NotRoot { euid: u32 },
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
    #[error("looking up {what} {name:?}: {errno}")]
    Lookup {
        what: &'static str,
        name: String,
        errno: Errno,
    },
    #[error("user {0:?} is root (uid 0): refusing to \"drop\" to it")]
    TargetIsRoot(String),
    #[error("setgroups([{gid}]) failed: {errno}")]
    SetGroups { gid: u32, errno: Errno },
    #[error("setgid({gid}) failed: {errno}")]
    SetGid { gid: u32, errno: Errno },
    #[error("setuid({uid}) failed: {errno}")]
    SetUid { uid: u32, errno: Errno },
    #[error("privileges were not dropped: root can still be regained")]
    RegainedRoot,
}

/// Resolve a user by name, or by number when no user has that name.
fn lookup_user(name: &str) -> Result<User, PrivError> {
    let by_name = User::from_name(name).map_err(|errno| PrivError::Lookup {
        what: "user",
        name: name.to_owned(),
        errno,
    })?;
    let found = match (by_name, name.parse::<u32>()) {
        (Some(u), _) => Some(u),
        (None, Ok(uid)) => User::from_uid(Uid::from_raw(uid)).ok().flatten(),
        (None, Err(_)) => None,
    };
    found.ok_or_else(|| PrivError::UnknownUser(name.to_owned()))
}

/// Resolve a group by name, or by number when no group has that name.
fn lookup_group(name: &str) -> Result<Gid, PrivError> {
    let by_name = Group::from_name(name).map_err(|errno| PrivError::Lookup {
        what: "group",
        name: name.to_owned(),
        errno,
    })?;
    match (by_name, name.parse::<u32>()) {
        (Some(g), _) => Ok(g.gid),
        (None, Ok(gid)) => Ok(Gid::from_raw(gid)),
        (None, Err(_)) => Err(PrivError::UnknownGroup(name.to_owned())),
    }
}

/// Become `user` (and `group`, else the user's primary group) for good:
/// `setgroups([gid])`, setgid, setuid, in that order, then check that root cannot
/// be regained. Call it once the sockets are bound. If not running as root it
/// changes nothing and returns [`PrivError::NotRoot`].
pub fn drop_privileges(user: &str, group: Option<&str>) -> Result<(), PrivError> {
    let euid = unistd::geteuid();
    if !euid.is_root() {
        return Err(PrivError::NotRoot {
            euid: euid.as_raw(),
        });
    }
    let target = lookup_user(user)?;
    if target.uid.is_root() {
        return Err(PrivError::TargetIsRoot(user.to_owned()));
    }
    let gid = match group {
        Some(g) => lookup_group(g)?,
        None => target.gid,
    };
    unistd::setgroups(&[gid]).map_err(|errno| PrivError::SetGroups {
        gid: gid.as_raw(),
        errno,
    })?;
    unistd::setgid(gid).map_err(|errno| PrivError::SetGid {
        gid: gid.as_raw(),
        errno,
    })?;
    unistd::setuid(target.uid).map_err(|errno| PrivError::SetUid {
        uid: target.uid.as_raw(),
        errno,
    })?;
    let regained = unistd::setuid(Uid::from_raw(0)).is_ok()
        || unistd::seteuid(Uid::from_raw(0)).is_ok()
        || unistd::getuid() != target.uid
        || unistd::geteuid() != target.uid
        || unistd::getgid() != gid
        || unistd::getegid() != gid;
    if regained {
        return Err(PrivError::RegainedRoot);
    }
    Ok(())
}

/// The start-up and `--check-config` warning when the daemon runs as root (`euid`)
/// and `[privileges] user` is not set: it would keep root for its whole life.
pub fn root_warning(euid_is_root: bool, user: Option<&str>) -> Option<&'static str> {
    (euid_is_root && user.is_none()).then_some(
        "running as root without [privileges] user: the daemon keeps root after binding; \
         set [privileges] user (e.g. \"nbdgm\") or run it through the systemd unit",
    )
}

/// [`root_warning`] for this process.
pub fn root_warning_now(user: Option<&str>) -> Option<&'static str> {
    root_warning(unistd::geteuid().is_root(), user)
}

/// Last capability number the kernel may know (the sets are 64 bits wide).
const CAP_LAST: libc::c_ulong = 63;

/// Confine an exec hook: in the child, between fork and exec, clear the ambient and
/// inheritable capability sets, empty the bounding set (when we may: root has
/// CAP_SETPCAP) and set no_new_privs. After execve the hook holds no capability,
/// whether the daemon runs as a user with the unit's ambient CAP_NET_BIND_SERVICE or
/// as root, and cannot gain any through setuid or file capabilities.
#[allow(unsafe_code)] // pre_exec; see the SAFETY comment below
pub fn confine_hook(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: `drop_all_capabilities` makes only raw syscalls on stack data (no
    // allocation, no locks), which is what may run between fork and exec.
    unsafe {
        cmd.pre_exec(drop_all_capabilities);
    }
}

/// The child side of [`confine_hook`]. Async-signal-safe: prctl and capget/capset on
/// stack buffers only.
#[allow(unsafe_code)] // raw prctl/capget/capset; see the SAFETY comment below
fn drop_all_capabilities() -> io::Result<()> {
    /// `struct __user_cap_header_struct` / `__user_cap_data_struct` (linux/capability.h).
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let check = |r: libc::c_long| {
        if r == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: prctl with integer arguments; capget/capset with a valid header and the
    // two data structs that version 3 reads and writes.
    unsafe {
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into())?;
        check(
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            )
            .into(),
        )?;
        // EPERM without CAP_SETPCAP (then exec grants nothing from it anyway: not
        // root, no file capabilities under no_new_privs), EINVAL past the last cap.
        for cap in 0..=CAP_LAST {
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut data = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        // Clearing the inheritable set is belt and braces: under no_new_privs, with the
        // ambient set empty and no file capabilities, execve grants nothing from it. So
        // a failure is not fatal: the systemd unit's SystemCallFilter=~@privileged
        // answers capget/capset with EPERM.
        if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) == 0 {
            for d in &mut data {
                d.inheritable = 0;
            }
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr());
        }
    }
    Ok(())
}

/// The `CapEff:` mask from the text of `/proc/<pid>/status`.
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let hex = line.strip_prefix("CapEff:")?.trim();
        u64::from_str_radix(hex, 16).ok()
    })
}

/// Whether a capability mask holds `CAP_NET_BIND_SERVICE`.
pub fn has_net_bind_service(cap_eff: u64) -> bool {
    cap_eff & (1u64 << CAP_NET_BIND_SERVICE) != 0
}

/// The value of `/proc/sys/net/ipv4/ip_unprivileged_port_start`.
/// (0..=65536; 65536 means every port is privileged).
pub fn parse_unprivileged_port_start(text: &str) -> Option<u32> {
    text.trim().parse().ok()
}

/// Whether this process may bind `port`: root, `CAP_NET_BIND_SERVICE` in the
/// effective set, or a port at or above the unprivileged-port sysctl.
pub fn can_bind_port(port: u16) -> bool {
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|t| parse_unprivileged_port_start(&t))
        .unwrap_or(u32::from(DEFAULT_UNPRIVILEGED_PORT_START));
    u32::from(port) >= start || can_bind_low_ports()
}

/// Whether this process may bind ports below 1024 (euid 0, or
/// `CAP_NET_BIND_SERVICE` in the effective set, read from `/proc/self/status`).
pub fn can_bind_low_ports() -> bool {
    if unistd::geteuid().is_root() {
        return true;
    }
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_cap_eff(&s))
        .is_some_and(has_net_bind_service)
}

/// One line of advice for a failed UDP bind.
pub fn explain_bind_error(err: &io::Error, addr: SocketAddr) -> String {
    let port = addr.port();
    match err.raw_os_error().map(Errno::from_raw) {
        Some(Errno::EADDRINUSE) => {
            if port == 137 || port == 138 {
                format!(
                    "UDP {addr} is already in use (is Samba's nmbd running? `ss -lunp 'sport = :{port}'`)"
                )
            } else {
                format!("UDP {addr} is already in use (see `ss -lunp 'sport = :{port}'`)")
            }
        }
        Some(Errno::EACCES) | Some(Errno::EPERM) => format!(
            "binding port {port} needs root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep $(which nbdgm), or run via the systemd unit)"
        ),
        Some(Errno::EADDRNOTAVAIL) => format!(
            "address {} is not configured on this host (check [[interface]] address and `ip -4 addr`)",
            addr.ip()
        ),
        _ => format!("cannot bind UDP {addr}: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn explains_address_in_use() {
        let e = io::Error::from_raw_os_error(Errno::EADDRINUSE as i32);
        assert_eq!(
            explain_bind_error(&e, addr("0.0.0.0:138")),
            "UDP 0.0.0.0:138 is already in use (is Samba's nmbd running? `ss -lunp 'sport = :138'`)"
        );
        let other = explain_bind_error(&e, addr("127.0.0.1:10138"));
        assert!(
            other.contains("10138") && !other.contains("nmbd"),
            "{other}"
        );
    }

    #[test]
    fn explains_permission_denied() {
        let e = io::Error::from_raw_os_error(Errno::EACCES as i32);
        assert_eq!(
            explain_bind_error(&e, addr("0.0.0.0:137")),
            "binding port 137 needs root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep $(which nbdgm), or run via the systemd unit)"
        );
    }

    #[test]
    fn explains_address_not_available_and_others() {
        let e = io::Error::from_raw_os_error(Errno::EADDRNOTAVAIL as i32);
        let msg = explain_bind_error(&e, addr("203.0.113.9:138"));
        assert!(msg.starts_with("address 203.0.113.9 is not configured on this host"));
        let e = io::Error::other("boom");
        assert_eq!(
            explain_bind_error(&e, addr("0.0.0.0:138")),
            "cannot bind UDP 0.0.0.0:138: boom"
        );
    }

    #[test]
    fn parses_cap_eff() {
        let status = "Name:\tnbdgm\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000400\n\
                      CapEff:\t0000000000000400\nCapBnd:\t000001ffffffffff\n";
        let eff = parse_cap_eff(status);
        assert_eq!(eff, Some(0x400));
        assert!(has_net_bind_service(0x400));
        assert!(has_net_bind_service(0x0000_01ff_ffff_ffff));
        assert!(!has_net_bind_service(0x3ff));
        assert!(!has_net_bind_service(0));
        assert_eq!(parse_cap_eff("CapEff:\tzz\n"), None);
        assert_eq!(parse_cap_eff("CapPrm:\t0400\n"), None);
        assert_eq!(parse_cap_eff(""), None);
    }

    #[test]
    fn parses_unprivileged_port_start() {
        assert_eq!(parse_unprivileged_port_start("1024\n"), Some(1024));
        assert_eq!(parse_unprivileged_port_start("0"), Some(0));
        assert_eq!(parse_unprivileged_port_start("65536"), Some(65536));
        assert_eq!(parse_unprivileged_port_start("x"), None);
    }

    #[test]
    fn root_warning_only_for_root_without_user() {
        assert!(root_warning(true, None).is_some_and(|w| w.contains("[privileges] user")));
        assert_eq!(root_warning(true, Some("nbdgm")), None);
        assert_eq!(root_warning(false, None), None);
    }

    #[test]
    fn confined_child_has_no_capabilities() {
        let mut cmd = std::process::Command::new("/bin/cat");
        cmd.arg("/proc/self/status");
        confine_hook(&mut cmd);
        let out = cmd.output().expect("run /bin/cat");
        let status = String::from_utf8_lossy(&out.stdout);
        for key in ["CapInh:", "CapPrm:", "CapEff:", "CapAmb:"] {
            let v = status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|h| u64::from_str_radix(h.trim(), 16).unwrap());
            assert_eq!(v, Some(0), "{key} in {status}");
        }
        assert!(status.lines().any(|l| l == "NoNewPrivs:\t1"), "{status}");
    }

    #[test]
    fn live_checks_agree_with_euid() {
        if unistd::geteuid().is_root() {
            assert!(can_bind_low_ports());
            assert!(can_bind_port(137));
        } else {
            assert!(matches!(
                drop_privileges("nobody", None),
                Err(PrivError::NotRoot { .. })
            ));
        }
    }
}
