//! ICMP errors read from a socket's error queue (`IP_RECVERR`, `struct sock_extended_err`;
//! RFC 792 and RFC 1812 §5.2.7.1 for the destination-unreachable codes).

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::RawFd;

/// An entry of a socket's error queue (`IP_RECVERR`, `struct sock_extended_err`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    /// `SO_EE_ORIGIN_*`: 1 local, 2 ICMP.
    pub origin: u8,
    pub icmp_type: u8,
    pub code: u8,
    /// The errno the kernel derived from it.
    pub errno: i32,
    /// Who sent the ICMP (the offender address).
    pub from: Option<Ipv4Addr>,
    /// Our own address on the probing socket, when known (an ICMP from it means the
    /// local kernel gave up, e.g. ARP got no answer).
    pub local: Option<Ipv4Addr>,
}

pub const SO_EE_ORIGIN_LOCAL: u8 = 1;

pub const SO_EE_ORIGIN_ICMP: u8 = 2;

pub const ICMP_DEST_UNREACH: u8 = 3;

pub const ICMP_TIME_EXCEEDED: u8 = 11;

/// The RFC 792/1812 name of a destination-unreachable code.
pub fn unreach_code_name(code: u8) -> &'static str {
    match code {
        0 => "net unreachable",
        1 => "host unreachable",
        2 => "protocol unreachable",
        3 => "port unreachable",
        4 => "fragmentation needed",
        5 => "source route failed",
        6 => "destination network unknown",
        7 => "destination host unknown",
        8 => "source host isolated",
        9 => "network administratively prohibited",
        10 => "host administratively prohibited",
        11 => "network unreachable for TOS",
        12 => "host unreachable for TOS",
        13 => "communication administratively prohibited",
        14 => "host precedence violation",
        15 => "precedence cutoff in effect",
        _ => "unknown code",
    }
}

impl fmt::Display for IcmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.origin == SO_EE_ORIGIN_ICMP {
            write!(f, "ICMP type {} code {}", self.icmp_type, self.code)?;
            if self.icmp_type == ICMP_DEST_UNREACH {
                write!(f, " ({})", unreach_code_name(self.code))?;
            } else if self.icmp_type == ICMP_TIME_EXCEEDED {
                f.write_str(" (time exceeded)")?;
            }
            if let Some(from) = self.from {
                write!(f, " from {from}")?;
                if Some(from) == self.local && self.icmp_type == ICMP_DEST_UNREACH && self.code == 1
                {
                    f.write_str(" (this host: no ARP answer from the target)")?;
                }
            }
            Ok(())
        } else {
            write!(
                f,
                "local error (origin {}): {}",
                self.origin,
                errno_text(self.errno)
            )
        }
    }
}

/// The sender of the ICMP error an evidence text written by [`IcmpError`]'s `Display` names
/// (`ICMP type 3 code 3 (port unreachable) from 198.51.100.7`); `None` for any other text.
/// The monitor uses it to tell an ICMP error of the target itself from one of a router.
pub fn icmp_sender(evidence: &str) -> Option<Ipv4Addr> {
    let rest = evidence.strip_prefix("ICMP type ")?;
    let (_, after) = rest.split_once(" from ")?;
    after.split(' ').next()?.parse().ok()
}

pub(super) fn errno_text(errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    format!("{} ({e:?})", e.desc())
}

/// Read one entry of the error queue, if there is one (never blocks).
pub(super) fn read_errqueue(fd: RawFd, local: Option<Ipv4Addr>) -> io::Result<Option<IcmpError>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrIn};
    let mut data = [0u8; 576];
    let mut iov = [io::IoSliceMut::new(&mut data)];
    let mut cmsg = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in);
    let msg = match recvmsg::<SockaddrIn>(
        fd,
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(m) => m,
        Err(nix::errno::Errno::EAGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Ok(cmsgs) = msg.cmsgs() else {
        return Ok(None);
    };
    for c in cmsgs {
        if let ControlMessageOwned::Ipv4RecvErr(ee, offender) = c {
            return Ok(Some(IcmpError {
                origin: ee.ee_origin,
                icmp_type: ee.ee_type,
                code: ee.ee_code,
                errno: ee.ee_errno as i32,
                from: offender.map(|sin| Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))),
                local,
            }));
        }
    }
    Ok(None)
}
