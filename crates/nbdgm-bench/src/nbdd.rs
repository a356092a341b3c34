//! Helpers of the NBDD relay benchmark (`nbdd_bench`, run by `bench/nbdd.sh`):
//! the relayed DIRECT_GROUP datagrams (sequence number and send time in the user data),
//! group NAME REGISTRATION REQUESTs for member sockets, and the TOML of an `nbdgm serve`
//! with the NBNS and NBDD roles (the `[node]` table carries `role`).
//!
//! Benchmarks, never tests: nothing here asserts a timing.

use crate::daemon::RAISED_LIMITS;
use anyhow::{bail, Context};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::nbns::{
    NbAddress, Packet, RData, Record, CLASS_IN, FLAG_RD, FLAG_RESPONSE, NB_GROUP, TYPE_NB,
};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes at the start of the user data: sequence number and send time (ns), both u64 BE.
pub const STAMP_LEN: usize = 16;

/// A DIRECT_GROUP datagram from `from` (SOURCE_IP/PORT = the UDP source, as the NBDD
/// requires) to `group`, with `user_len` (≥ [`STAMP_LEN`]) bytes of user data. Returns
/// the bytes and the offset of the user data (where [`stamp`] writes).
pub fn group_datagram(
    from: SocketAddrV4,
    group: &Name,
    user_len: usize,
) -> anyhow::Result<(Vec<u8>, usize)> {
    let user_len = user_len.max(STAMP_LEN);
    let bytes = Datagram::data(
        MsgType::DirectGroup,
        NodeType::P,
        1,
        (*from.ip(), from.port()),
        Name::new("NBDDBENCH", 0)?,
        group.clone(),
        vec![0x5a; user_len],
    )
    .to_bytes()?;
    let off = bytes.len() - user_len;
    Ok((bytes, off))
}

/// Write DGM_ID, the sequence number and the send time into a [`group_datagram`].
pub fn stamp(pkt: &mut [u8], off: usize, seq: u64, t_ns: u64) {
    crate::packets::set_dgm_id(pkt, (seq & 0xFFFF) as u16);
    pkt[off..off + 8].copy_from_slice(&seq.to_be_bytes());
    pkt[off + 8..off + 16].copy_from_slice(&t_ns.to_be_bytes());
}

/// Sequence number and send time of a received copy, if it is long enough.
pub fn read_stamp(pkt: &[u8], off: usize) -> Option<(u64, u64)> {
    let s = pkt.get(off..off + STAMP_LEN)?;
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&s[..8]);
    b.copy_from_slice(&s[8..]);
    Some((u64::from_be_bytes(a), u64::from_be_bytes(b)))
}

/// A unicast NAME REGISTRATION REQUEST (RD set, B clear; RFC 1002 §4.2.2) of the group
/// name `group` at `ip` by a P-node, as a P-node sends it to its NBNS.
pub fn group_registration(group: &Name, ip: Ipv4Addr, id: u16) -> anyhow::Result<Vec<u8>> {
    let mut p = Packet::request(id, (5 << 11) | FLAG_RD, group.clone(), TYPE_NB);
    p.additional.push(Record {
        name: group.clone(),
        rr_type: TYPE_NB,
        rr_class: CLASS_IN,
        ttl: 3600,
        // G = 1, ONT = 01 (P-node).
        rdata: RData::Nb(vec![NbAddress {
            flags: NB_GROUP | 0x2000,
            ip,
        }]),
    });
    Ok(p.to_bytes()?)
}

/// Register `group` at each of `members` with the NBNS at `nbns` (from a socket on the
/// member's address), waiting (≤ 2 s, 3 tries) for each positive response.
pub fn register_members(
    nbns: SocketAddrV4,
    group: &Name,
    members: &[Ipv4Addr],
) -> anyhow::Result<()> {
    for (i, &ip) in members.iter().enumerate() {
        let sock = UdpSocket::bind((ip, 0)).with_context(|| format!("bind {ip}:0"))?;
        sock.set_read_timeout(Some(Duration::from_millis(700)))?;
        let id = 0x4000 + i as u16;
        let pkt = group_registration(group, ip, id)?;
        let mut ok = false;
        'tries: for _ in 0..3 {
            sock.send_to(&pkt, nbns)?;
            let mut buf = [0u8; 1500];
            let until = Instant::now() + Duration::from_millis(700);
            while Instant::now() < until {
                let Ok((n, _)) = sock.recv_from(&mut buf) else {
                    break;
                };
                let Ok(r) = Packet::parse(&buf[..n]) else {
                    continue;
                };
                if r.id == id && r.flags & FLAG_RESPONSE != 0 {
                    if r.rcode() == 0 {
                        ok = true;
                        break 'tries;
                    }
                    bail!(
                        "registration of {group} at {ip} refused: rcode {}",
                        r.rcode()
                    );
                }
            }
        }
        if !ok {
            bail!("no answer to the registration of {group} at {ip}");
        }
    }
    Ok(())
}

/// The configuration of the NBDD under test: a B-node on `address/8` with the NBNS and
/// NBDD roles, `[limits]` raised (the daemon's own per-source receive limit is not what
/// is measured), and `nbdd_server` (TOML lines of `[nbdd_server]`).
pub fn nbdd_toml(address: Ipv4Addr, ports: (u16, u16), socket: &Path, nbdd_server: &str) -> String {
    format!(
        "# written by nbdgm-bench (nbdd_bench)\n[node]\nname = \"NBDDSRV\"\nworkgroup = \"NBDDWG\"\n\
         role = [\"nbns\", \"nbdd\"]\n\n[[interface]]\naddress = \"{address}/8\"\n\n\
         [ports]\nname = {}\ndatagram = {}\n\n[api]\nsocket = \"{}\"\n\n[browser]\nlisten = false\n\n\
         [nbns_server]\nmax_group_members = 1000\n\n[nbdd_server]\n{nbdd_server}\n\n{RAISED_LIMITS}\n",
        ports.0,
        ports.1,
        socket.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_parse_back() {
        let g = Name::new("BENCHGRP", 0).unwrap();
        let from = SocketAddrV4::new(Ipv4Addr::new(127, 0, 10, 1), 4000);
        let (mut d, off) = group_datagram(from, &g, 128).unwrap();
        stamp(&mut d, off, 77, 12345);
        assert_eq!(read_stamp(&d, off), Some((77, 12345)));
        let p = Datagram::parse(&d).unwrap();
        assert_eq!(p.msg_type, MsgType::DirectGroup);
        let r = Packet::parse(&group_registration(&g, *from.ip(), 9).unwrap()).unwrap();
        assert_eq!(r.kind(), "NAME REGISTRATION REQUEST");
    }
}
