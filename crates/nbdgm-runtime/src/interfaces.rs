//! IPv4 interface discovery (`getifaddrs`): the interfaces a node can serve when none
//! is configured, and the default of the tools that run without a daemon.

use std::io;
use std::net::Ipv4Addr;

/// Up, non-loopback IPv4 interfaces: (address, prefix length, broadcast).
pub fn system_interfaces() -> io::Result<Vec<(Ipv4Addr, u8, Option<Ipv4Addr>)>> {
    use nix::net::if_::InterfaceFlags;
    let addrs = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    let mut out: Vec<(Ipv4Addr, u8, Option<Ipv4Addr>)> = Vec::new();
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
        if !out.iter().any(|(o, _, _)| *o == ip) {
            out.push((ip, prefix, broadcast));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
