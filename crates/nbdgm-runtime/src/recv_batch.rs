//! Batched receive for the datagram and name-service sockets (RFC 1002 §5.1, §5.3 on
//! UDP 137/138): one `recvmmsg(2)` reads up to [`MAX_SLOTS`] queued datagrams into
//! buffers allocated once, instead of one `recvfrom(2)` per datagram.
//!
//! A small safe wrapper over `libc::recvmmsg` rather than `nix::sys::socket::recvmmsg`:
//! nix keeps its message headers in a `MultiHeaders` that holds raw pointers between
//! calls (not `Send`) and ties the buffers' borrow to the results. Here the headers live
//! on the stack for the duration of one call and point only into `self`, so the batch is
//! an ordinary `Send` value and nothing is allocated per call.
//!
//! Each slot also has room for one control message: on a socket with `IP_PKTINFO`
//! enabled ([`crate::sockets::enable_pktinfo`]) the kernel says, per datagram, the
//! destination address of its IP header and the interface it came in on ([`PktInfo`]),
//! which is how a socket bound to 0.0.0.0 tells broadcast from unicast.

use std::io;
use std::mem::{size_of, zeroed, MaybeUninit};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Most datagrams one call reads (the headers of one call live on the stack).
pub const MAX_SLOTS: usize = 32;

/// What one slot of the last batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The source; `None` when it was not an IPv4 address.
    pub from: Option<SocketAddrV4>,
    /// Bytes in the slot (at most the slot's size).
    pub len: usize,
    /// The datagram was longer than the slot and was cut (`MSG_TRUNC`).
    pub truncated: bool,
    /// Where it was sent and where it came in (`IP_PKTINFO`); `None` when the socket
    /// does not ask for it.
    pub pktinfo: Option<PktInfo>,
}

/// The `in_pktinfo` of one datagram (ip(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PktInfo {
    /// The destination address of the IP header (`ipi_addr`): a local address, a
    /// broadcast address or a multicast group.
    pub dst: Ipv4Addr,
    /// The local address the kernel would answer from (`ipi_spec_dst`).
    pub spec_dst: Ipv4Addr,
    /// The interface it came in on (`ipi_ifindex`).
    pub ifindex: u32,
}

const EMPTY: Entry = Entry {
    from: None,
    len: 0,
    truncated: false,
    pktinfo: None,
};

/// Control bytes per slot: room for one `in_pktinfo` (CMSG_SPACE(12) is 32 on 64-bit
/// Linux) and a spare one, as `u64`s for the alignment of `cmsghdr`.
const CONTROL_WORDS: usize = 8;

/// Buffers for one batch: `slots` buffers of `slot_len` bytes each, allocated once.
pub struct RecvBatch {
    bufs: Vec<u8>,
    slot_len: usize,
    entries: Vec<Entry>,
    filled: usize,
}

impl RecvBatch {
    /// `slots` is capped at [`MAX_SLOTS`] (and at least 1); `slot_len` at least 1.
    pub fn new(slots: usize, slot_len: usize) -> RecvBatch {
        let slots = slots.clamp(1, MAX_SLOTS);
        let slot_len = slot_len.max(1);
        RecvBatch {
            bufs: vec![0; slots * slot_len],
            slot_len,
            entries: vec![EMPTY; slots],
            filled: 0,
        }
    }

    /// Slots per batch.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Datagrams in the last batch.
    pub fn len(&self) -> usize {
        self.filled
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Read what is queued on `fd` without waiting: `Ok(n)` with 1 ≤ n ≤ capacity, or
    /// the error of the call (`WouldBlock` when nothing is queued; an error the socket
    /// holds, such as an ICMP port unreachable, comes before the datagrams behind it).
    /// The previous batch is forgotten either way.
    #[allow(unsafe_code)]
    pub fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.filled = 0;
        let n = self.capacity();
        // The kernel writes the addresses and control messages; only what it says it
        // wrote is read (`msg_namelen`, `msg_controllen`), so those stay uninitialized
        // (6 KiB less to clear per call).
        let mut names = [const { MaybeUninit::<libc::sockaddr_storage>::uninit() }; MAX_SLOTS];
        let mut controls = [const { MaybeUninit::<[u64; CONTROL_WORDS]>::uninit() }; MAX_SLOTS];
        // SAFETY (zeroed): plain C structs, all-zero is a valid value (null pointers,
        // zero lengths).
        let mut iovs: [libc::iovec; MAX_SLOTS] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; MAX_SLOTS] = unsafe { zeroed() };
        for (i, chunk) in self
            .bufs
            .chunks_exact_mut(self.slot_len)
            .take(n)
            .enumerate()
        {
            iovs[i] = libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: chunk.len(),
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = names[i].as_mut_ptr().cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = controls[i].as_mut_ptr().cast();
            h.msg_controllen = size_of::<[u64; CONTROL_WORDS]>() as _;
        }
        // SAFETY: the first `n` headers point at `names[i]`, `iovs[i]`, `controls[i]` and
        // slot `i` of `self.bufs`, all alive and exclusively borrowed for this call; the
        // kernel writes at most the lengths given. No timeout pointer.
        let r = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let got = usize::try_from(r).unwrap_or(0).min(n);
        for (entry, h) in self.entries.iter_mut().zip(&hdrs).take(got) {
            *entry = Entry {
                from: ipv4(&h.msg_hdr),
                len: (h.msg_len as usize).min(self.slot_len),
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
                pktinfo: pktinfo(&h.msg_hdr),
            };
        }
        self.filled = got;
        Ok(got)
    }

    /// Slot `i` of the last batch: what it holds and its bytes.
    pub fn get(&self, i: usize) -> Option<(Entry, &[u8])> {
        if i >= self.filled {
            return None;
        }
        let e = self.entries[i];
        let start = i * self.slot_len;
        Some((e, self.bufs.get(start..start + e.len).unwrap_or_default()))
    }
}

/// The source address the kernel wrote into a received header, if it is IPv4.
#[allow(unsafe_code)]
fn ipv4(h: &libc::msghdr) -> Option<SocketAddrV4> {
    if h.msg_name.is_null() || (h.msg_namelen as usize) < size_of::<libc::sockaddr_in>() {
        return None;
    }
    // SAFETY: `msg_name` points at a `sockaddr_storage` (aligned for any address) of
    // which the kernel wrote the first `msg_namelen` bytes, at least a sockaddr_in's.
    let sin: libc::sockaddr_in = unsafe { std::ptr::read(h.msg_name.cast()) };
    if sin.sin_family != libc::AF_INET as libc::sa_family_t {
        return None;
    }
    Some(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
        u16::from_be(sin.sin_port),
    ))
}

/// The `IP_PKTINFO` control message of a received header, if the kernel wrote one.
#[allow(unsafe_code)]
#[allow(clippy::unnecessary_cast)] // msg_controllen and cmsg_len are u32 on musl
fn pktinfo(h: &libc::msghdr) -> Option<PktInfo> {
    if h.msg_control.is_null() || (h.msg_controllen as usize) < size_of::<libc::cmsghdr>() {
        return None;
    }
    let want = size_of::<libc::in_pktinfo>() as libc::c_uint;
    // SAFETY: `h` is a header the kernel filled: `msg_control` points at a buffer of
    // `msg_controllen` bytes (as the kernel set it, at most what was given) holding
    // complete control messages; CMSG_FIRSTHDR/CMSG_NXTHDR stay within it and return
    // null at its end.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(h) };
    while !c.is_null() {
        // SAFETY: non-null `c` from CMSG_FIRSTHDR/CMSG_NXTHDR points at a whole cmsghdr
        // inside the buffer.
        let hdr = unsafe { &*c };
        // SAFETY: CMSG_LEN is arithmetic.
        let full = unsafe { libc::CMSG_LEN(want) } as usize;
        if hdr.cmsg_level == libc::IPPROTO_IP
            && hdr.cmsg_type == libc::IP_PKTINFO
            && hdr.cmsg_len as usize >= full
        {
            // SAFETY: the message is long enough for an in_pktinfo after its header;
            // read unaligned, as the data of a control message need not be.
            let pi: libc::in_pktinfo =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
            return Some(PktInfo {
                dst: Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr)),
                spec_dst: Ipv4Addr::from(u32::from_be(pi.ipi_spec_dst.s_addr)),
                ifindex: u32::try_from(pi.ipi_ifindex).unwrap_or(0),
            });
        }
        // SAFETY: `h` and `c` as above.
        c = unsafe { libc::CMSG_NXTHDR(h, c) };
    }
    None
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    fn pair() -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        (rx, tx)
    }

    /// Receive until `want` datagrams came (loopback delivers synchronously, but stay
    /// bounded anyway).
    fn recv_some(b: &mut RecvBatch, rx: &UdpSocket) -> io::Result<usize> {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            match b.recv(rx.as_fd()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                r => return r,
            }
        }
    }

    #[test]
    fn several_datagrams_in_one_batch_with_their_sources() {
        let (rx, tx) = pair();
        let to = rx.local_addr().unwrap();
        for i in 0..5u8 {
            tx.send_to(&vec![i; 10 + i as usize], to).unwrap();
        }
        let mut b = RecvBatch::new(8, 2048);
        assert_eq!(recv_some(&mut b, &rx).unwrap(), 5);
        let std::net::SocketAddr::V4(from) = tx.local_addr().unwrap() else {
            panic!("v4")
        };
        for i in 0..5u8 {
            let (e, bytes) = b.get(i as usize).unwrap();
            assert_eq!(e.from, Some(from));
            assert!(!e.truncated);
            assert_eq!(bytes, &vec![i; 10 + i as usize][..]);
        }
        assert!(b.get(5).is_none());
        // Nothing more queued: WouldBlock, and the old batch is gone.
        let e = b.recv(rx.as_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(b.is_empty() && b.get(0).is_none());
    }

    #[test]
    fn a_batch_stops_at_its_capacity_and_the_rest_waits() {
        let (rx, tx) = pair();
        let to = rx.local_addr().unwrap();
        for i in 0..5u8 {
            tx.send_to(&[i], to).unwrap();
        }
        let mut b = RecvBatch::new(3, 64);
        assert_eq!(recv_some(&mut b, &rx).unwrap(), 3);
        assert_eq!(b.get(2).unwrap().1, &[2]);
        assert_eq!(recv_some(&mut b, &rx).unwrap(), 2);
        assert_eq!(b.get(0).unwrap().1, &[3]);
        assert_eq!(b.get(1).unwrap().1, &[4]);
    }

    #[test]
    fn an_oversized_datagram_is_flagged_truncated_and_its_neighbours_are_intact() {
        let (rx, tx) = pair();
        let to = rx.local_addr().unwrap();
        tx.send_to(&[1; 16], to).unwrap();
        tx.send_to(&[2; 100], to).unwrap();
        tx.send_to(&[3; 32], to).unwrap();
        let mut b = RecvBatch::new(4, 32);
        assert_eq!(recv_some(&mut b, &rx).unwrap(), 3);
        let (e0, d0) = b.get(0).unwrap();
        let (e1, d1) = b.get(1).unwrap();
        let (e2, d2) = b.get(2).unwrap();
        assert_eq!((e0.truncated, d0), (false, &[1u8; 16][..]));
        assert_eq!((e1.truncated, e1.len, d1), (true, 32, &[2u8; 32][..]));
        assert_eq!((e2.truncated, d2), (false, &[3u8; 32][..]));
    }

    #[test]
    fn a_pending_socket_error_comes_first_then_the_datagrams() {
        // A connected socket learns from the ICMP port unreachable of a closed port.
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap();
        drop(closed);
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(port).unwrap();
        s.send(b"x").unwrap();
        let mut b = RecvBatch::new(4, 64);
        let err = recv_some(&mut b, &s).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(b.is_empty());
        // The port opens again and sends: the next batch has the datagram.
        let peer = UdpSocket::bind(port).unwrap();
        peer.send_to(b"after", s.local_addr().unwrap()).unwrap();
        assert_eq!(recv_some(&mut b, &s).unwrap(), 1);
        assert_eq!(b.get(0).unwrap().1, b"after");
    }

    #[test]
    fn only_ipv4_sources_are_returned() {
        /// `ipv4` of a header whose address buffer holds `family` (port 0, address 0)
        /// and says the kernel wrote `len` bytes of it.
        fn source(family: libc::c_int, len: usize) -> Option<SocketAddrV4> {
            // SAFETY: all-zero is a valid sockaddr_storage and msghdr.
            let mut s: libc::sockaddr_storage = unsafe { zeroed() };
            s.ss_family = family as libc::sa_family_t;
            let mut h: libc::msghdr = unsafe { zeroed() };
            h.msg_name = (&mut s as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = len as libc::socklen_t;
            ipv4(&h)
        }
        let full = size_of::<libc::sockaddr_storage>();
        // SAFETY: all-zero is a valid msghdr.
        let mut h: libc::msghdr = unsafe { zeroed() };
        h.msg_namelen = full as libc::socklen_t;
        assert_eq!(ipv4(&h), None, "no address buffer");
        assert_eq!(source(libc::AF_INET6, full), None, "IPv6");
        assert_eq!(
            source(libc::AF_INET, 4),
            None,
            "too short for a sockaddr_in"
        );
        assert_eq!(
            source(libc::AF_INET, full),
            Some(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        );
    }

    #[test]
    fn pktinfo_gives_the_destination_and_interface_only_when_asked_for() {
        let (rx, tx) = pair();
        let to = rx.local_addr().unwrap();
        tx.send_to(b"a", to).unwrap();
        let mut b = RecvBatch::new(4, 64);
        assert_eq!(recv_some(&mut b, &rx).unwrap(), 1);
        assert_eq!(b.get(0).unwrap().0.pktinfo, None, "not enabled");
        crate::sockets::enable_pktinfo(&rx).unwrap();
        tx.send_to(b"b", to).unwrap();
        tx.send_to(b"c", to).unwrap();
        assert_eq!(recv_some(&mut b, &rx).unwrap(), 2);
        let lo = nix::net::if_::if_nametoindex("lo").unwrap();
        for i in 0..2 {
            let pi = b.get(i).unwrap().0.pktinfo.expect("pktinfo");
            assert_eq!(pi.dst, Ipv4Addr::LOCALHOST);
            assert_eq!(pi.spec_dst, Ipv4Addr::LOCALHOST);
            assert_eq!(pi.ifindex, lo);
        }
    }

    #[test]
    fn a_wildcard_socket_sees_a_loopback_broadcast_by_its_destination() {
        let rx = UdpSocket::bind("0.0.0.0:0").unwrap();
        crate::sockets::enable_pktinfo(&rx).unwrap();
        let port = rx.local_addr().unwrap().port();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.set_broadcast(true).unwrap();
        let bcast = Ipv4Addr::new(127, 255, 255, 255);
        tx.send_to(b"all", (bcast, port)).unwrap();
        tx.send_to(b"one", (Ipv4Addr::LOCALHOST, port)).unwrap();
        let mut b = RecvBatch::new(4, 64);
        let mut got = Vec::new();
        while got.len() < 2 {
            let n = recv_some(&mut b, &rx).unwrap();
            got.extend((0..n).map(|i| {
                let (e, bytes) = b.get(i).unwrap();
                (bytes.to_vec(), e.pktinfo.expect("pktinfo"))
            }));
        }
        let lo = nix::net::if_::if_nametoindex("lo").unwrap();
        let mut arrivals = crate::sockets::Arrivals::default();
        assert_eq!(got[0].0, b"all");
        assert_eq!(got[0].1.dst, bcast);
        assert_eq!(got[0].1.ifindex, lo);
        assert!(arrivals.is_broadcast(got[0].1.dst, got[0].1.spec_dst, lo));
        assert_eq!(got[1].0, b"one");
        assert_eq!(got[1].1.dst, Ipv4Addr::LOCALHOST);
        assert!(!arrivals.is_broadcast(got[1].1.dst, got[1].1.spec_dst, lo));
    }

    #[test]
    fn a_control_buffer_without_pktinfo_gives_none() {
        // SAFETY: all-zero is a valid msghdr (no control buffer).
        let h: libc::msghdr = unsafe { zeroed() };
        assert_eq!(pktinfo(&h), None);
        // A control message of another kind is skipped.
        let mut buf = [0u64; CONTROL_WORDS];
        let mut h: libc::msghdr = unsafe { zeroed() };
        h.msg_control = buf.as_mut_ptr().cast();
        h.msg_controllen = size_of::<[u64; CONTROL_WORDS]>() as _;
        // SAFETY: the buffer is large enough for one header and 4 bytes of data.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&h);
            (*c).cmsg_level = libc::IPPROTO_IP;
            (*c).cmsg_type = libc::IP_TTL;
            (*c).cmsg_len = libc::CMSG_LEN(4) as _;
            h.msg_controllen = libc::CMSG_SPACE(4) as _;
        }
        assert_eq!(pktinfo(&h), None);
    }

    #[test]
    fn capacity_is_bounded() {
        assert_eq!(RecvBatch::new(1000, 8).capacity(), MAX_SLOTS);
        assert_eq!(RecvBatch::new(0, 0).capacity(), 1);
    }
}
