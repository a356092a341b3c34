//! Interface discovery: the system's up, non-loopback IPv4 interfaces (getifaddrs).

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
