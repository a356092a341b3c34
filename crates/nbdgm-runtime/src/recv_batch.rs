//! Batched receive for the datagram and name-service sockets (RFC 1002 §5.1, §5.3 on
//! UDP 137/138): one `recvmmsg(2)` reads up to [`MAX_SLOTS`] queued datagrams into
//! buffers allocated once, instead of one `recvfrom(2)` per datagram.
//!
//! A small safe wrapper over `libc::recvmmsg` rather than `nix::sys::socket::recvmmsg`:
//! nix keeps its message headers in a `MultiHeaders` that holds raw pointers between
//! calls (not `Send`) and ties the buffers' borrow to the results. Here the headers live
//! on the stack for the duration of one call and point only into `self`, so the batch is
//! an ordinary `Send` value and nothing is allocated per call.

use std::io;
use std::mem::{size_of, zeroed};
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
}

const EMPTY: Entry = Entry {
    from: None,
    len: 0,
    truncated: false,
};

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
        // SAFETY (zeroed): plain C structs, all-zero is a valid value (null pointers,
        // zero lengths).
        let mut names: [libc::sockaddr_storage; MAX_SLOTS] = unsafe { zeroed() };
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
            h.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
        }
        // SAFETY: the first `n` headers point at `names[i]`, `iovs[i]` and slot `i` of
        // `self.bufs`, all alive and exclusively borrowed for this call; the kernel
        // writes at most the lengths given. No timeout pointer.
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
        for i in 0..got {
            let h = &hdrs[i];
            self.entries[i] = Entry {
                from: ipv4(&names[i], h.msg_hdr.msg_namelen),
                len: (h.msg_len as usize).min(self.slot_len),
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
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

/// The IPv4 address the kernel wrote, if it is one.
#[allow(unsafe_code)]
fn ipv4(s: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddrV4> {
    if s.ss_family != libc::AF_INET as libc::sa_family_t
        || (len as usize) < size_of::<libc::sockaddr_in>()
    {
        return None;
    }
    // SAFETY: the family says the storage holds a sockaddr_in, which it is large and
    // aligned enough for.
    let sin = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
    Some(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
        u16::from_be(sin.sin_port),
    ))
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
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut s: libc::sockaddr_storage = unsafe { zeroed() };
        s.ss_family = libc::AF_INET6 as libc::sa_family_t;
        let full = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        assert_eq!(ipv4(&s, full), None);
        s.ss_family = libc::AF_INET as libc::sa_family_t;
        assert_eq!(ipv4(&s, 4), None, "too short for a sockaddr_in");
        assert_eq!(
            ipv4(&s, full),
            Some(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        );
    }

    #[test]
    fn capacity_is_bounded() {
        assert_eq!(RecvBatch::new(1000, 8).capacity(), MAX_SLOTS);
        assert_eq!(RecvBatch::new(0, 0).capacity(), 1);
    }
}
