//! Batched send for the name-service and datagram sockets (RFC 1002 §5.1, §5.3 on UDP
//! 137/138): one `sendmmsg(2)` hands up to [`MAX_SLOTS`] queued datagrams to the kernel,
//! instead of one `sendto(2)` per datagram.
//!
//! A small safe wrapper over `libc::sendmmsg`, like [`crate::recv_batch`]: the payloads
//! are copied into one buffer kept between batches (no allocation per datagram once it
//! has grown), the message headers live on the stack for the duration of one call.
//!
//! Every queued datagram gets exactly one result ([`SendBatch::drain`]): the bytes the
//! kernel took, or its error. `sendmmsg` stops at the first datagram it cannot send and
//! reports only how many went out; [`SendBatch::send`] then sends the rest again from
//! that datagram, so a datagram the kernel refuses (say `EMSGSIZE`) gets its own error
//! and the ones behind it still go out, in order. A full kernel queue (`EAGAIN`) stops
//! the batch: the unsent rest stays queued for the caller to wait for writability and
//! call again, or to give up on.
//!
//! With [`SendBatch::with_gso`], a run of queued datagrams of one size (at most
//! [`GSO_MAX_SEGMENT`] octets) to one destination goes as one message that the kernel
//! cuts into those datagrams (UDP GSO, `UDP_SEGMENT`, Linux ≥ 4.18): the same datagrams
//! on the wire, one trip through the stack for the run. Answers to one requester are
//! such runs. If the kernel refuses a GSO message, the batch stops using GSO and sends
//! each datagram by itself, so every datagram still gets its own result.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddrV4;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Most datagrams one batch holds (the headers of one call live on the stack).
pub const MAX_SLOTS: usize = 32;
/// Payload bytes the buffer keeps between batches; beyond this it is shrunk back when
/// drained (a burst of large datagrams does not pin its memory).
const KEEP_BYTES: usize = 256 * 1024;
/// Largest datagram sent in a GSO run (well below any Ethernet MTU, which the kernel
/// requires of a segment).
pub const GSO_MAX_SEGMENT: usize = 1024;
/// Most datagrams in one GSO run (the kernel's `UDP_MAX_SEGMENTS` is 64 or more).
const GSO_MAX_SEGMENTS: usize = 64;
/// Most payload octets in one GSO run (one IP packet before it is cut).
const GSO_MAX_BYTES: usize = 60_000;
/// `SOL_UDP` / `UDP_SEGMENT` (linux/udp.h; not in libc for every target).
const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;
/// Control words per message: one `cmsghdr` with a `u16` (CMSG_SPACE(2) is 24).
const CONTROL_WORDS: usize = 4;

/// One queued datagram.
#[derive(Debug)]
struct Slot {
    to: SocketAddrV4,
    bytes: Range<usize>,
    /// `None` until sent or refused.
    result: Option<io::Result<usize>>,
}

/// Datagrams waiting for one `sendmmsg`, in the order they were queued.
pub struct SendBatch {
    data: Vec<u8>,
    slots: Vec<Slot>,
    cap: usize,
    /// Slots before this one have their result.
    done: usize,
    /// Send runs to one destination as one GSO message ([`SendBatch::with_gso`]).
    gso: bool,
}

impl SendBatch {
    /// `slots` is capped at [`MAX_SLOTS`] (and at least 1).
    pub fn new(slots: usize) -> SendBatch {
        let cap = slots.clamp(1, MAX_SLOTS);
        SendBatch {
            data: Vec::new(),
            slots: Vec::with_capacity(cap),
            cap,
            done: 0,
            gso: false,
        }
    }

    /// Send runs of same-size datagrams to one destination as one UDP GSO message
    /// each (until the kernel refuses one).
    pub fn with_gso(mut self, on: bool) -> SendBatch {
        self.gso = on;
        self
    }

    /// Whether runs still go as GSO messages.
    pub fn gso(&self) -> bool {
        self.gso
    }

    /// Datagrams one batch holds.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Datagrams queued (sent or not) since the last [`SendBatch::drain`].
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.slots.len() >= self.cap
    }

    /// Queued datagrams without a result yet.
    pub fn unsent(&self) -> usize {
        self.slots.len() - self.done
    }

    /// Queue a copy of `bytes` for `to`; `false` (and nothing queued) when the batch is
    /// full.
    pub fn push(&mut self, to: SocketAddrV4, bytes: &[u8]) -> bool {
        if self.is_full() {
            return false;
        }
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.slots.push(Slot {
            to,
            bytes: start..self.data.len(),
            result: None,
        });
        true
    }

    /// Send the unsent datagrams on `fd` without waiting, in order. `Ok(())`: every
    /// datagram has its result (sent, or the error the kernel gave for it).
    /// `Err(WouldBlock)`: the kernel queue is full; the rest is still queued (so it is
    /// after `Err(Interrupted)`, only if every try was interrupted). Any other error is a
    /// datagram's own and is recorded as its result.
    pub fn send(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.send_with(|hdrs| sendmmsg(fd, hdrs))
    }

    /// [`SendBatch::send`] with the system call given (tests put a fake kernel here).
    fn send_with(
        &mut self,
        mut call: impl FnMut(&mut [libc::mmsghdr]) -> io::Result<usize>,
    ) -> io::Result<()> {
        // Each round either gives at least one datagram its result or returns (or turns
        // GSO off, once).
        for _ in 0..=self.cap + 1 {
            if self.done >= self.slots.len() {
                return Ok(());
            }
            match self.call_once(&mut call) {
                Ok(n) => self.done += n,
                Err((e, _)) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                // EINTR: nothing was sent, try again.
                Err((e, _)) if e.kind() == io::ErrorKind::Interrupted => {}
                // The kernel refused a GSO run: from now on, one message per datagram.
                Err((_, true)) => self.gso = false,
                Err((e, false)) => {
                    // The first unsent datagram's own error (sendmmsg sent none).
                    self.slots[self.done].result = Some(Err(e));
                    self.done += 1;
                }
            }
        }
        // Only a run of EINTRs gets here: the rest stays queued.
        if self.done < self.slots.len() {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        Ok(())
    }

    /// One call for the unsent slots: how many datagrams the kernel took (their results
    /// set). The error says whether the message it is for (the first) was a GSO run.
    #[allow(unsafe_code)]
    fn call_once(
        &mut self,
        call: &mut impl FnMut(&mut [libc::mmsghdr]) -> io::Result<usize>,
    ) -> Result<usize, (io::Error, bool)> {
        let pending = &mut self.slots[self.done..];
        // SAFETY (zeroed): plain C structs, all-zero is a valid value (null pointers,
        // zero lengths).
        let mut names: [libc::sockaddr_in; MAX_SLOTS] = unsafe { zeroed() };
        let mut iovs: [libc::iovec; MAX_SLOTS] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; MAX_SLOTS] = unsafe { zeroed() };
        let mut controls = [[0u64; CONTROL_WORDS]; MAX_SLOTS];
        // Datagrams per message.
        let mut runs = [0usize; MAX_SLOTS];
        let (mut h, mut i) = (0, 0);
        while i < pending.len() && h < MAX_SLOTS {
            let first = &pending[i];
            let len = first.bytes.len();
            let mut k = 1;
            if self.gso && (1..=GSO_MAX_SEGMENT).contains(&len) {
                while let Some(next) = pending.get(i + k) {
                    if k >= GSO_MAX_SEGMENTS
                        || (k + 1) * len > GSO_MAX_BYTES
                        || next.to != first.to
                        || next.bytes.len() != len
                        || next.bytes.start != pending[i + k - 1].bytes.end
                    {
                        break;
                    }
                    k += 1;
                }
            }
            names[h] = sockaddr(first.to);
            // A run's payloads are adjacent in the buffer (queued in order).
            let bytes = &self.data[first.bytes.start..pending[i + k - 1].bytes.end];
            iovs[h] = libc::iovec {
                // The kernel only reads through it (sendmmsg).
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            };
            let m = &mut hdrs[h].msg_hdr;
            m.msg_name = (&mut names[h] as *mut libc::sockaddr_in).cast();
            m.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            m.msg_iov = &mut iovs[h];
            m.msg_iovlen = 1;
            if k > 1 {
                set_segment(m, &mut controls[h], len as u16);
            }
            runs[h] = k;
            h += 1;
            i += k;
        }
        let sent = match call(&mut hdrs[..h]) {
            Ok(n) => n.min(h),
            Err(e) => return Err((e, runs[0] > 1)),
        };
        let took: usize = runs[..sent].iter().sum();
        for s in &mut pending[..took] {
            s.result = Some(Ok(s.bytes.len()));
        }
        Ok(took)
    }

    /// Give every unsent datagram `kind` as its result (the caller gave up on them).
    pub fn fail_unsent(&mut self, kind: io::ErrorKind) {
        for s in &mut self.slots[self.done..] {
            s.result = Some(Err(io::Error::from(kind)));
        }
        self.done = self.slots.len();
    }

    /// Each queued datagram's destination and result, in order, then an empty batch. A
    /// datagram still unsent is reported as `WouldBlock`.
    pub fn drain(&mut self, mut f: impl FnMut(SocketAddrV4, io::Result<usize>)) {
        for s in self.slots.drain(..) {
            let r = s
                .result
                .unwrap_or_else(|| Err(io::Error::from(io::ErrorKind::WouldBlock)));
            f(s.to, r);
        }
        self.done = 0;
        self.data.clear();
        self.data.shrink_to(KEEP_BYTES);
    }
}

/// Give `m` a `UDP_SEGMENT` control message of `seg` (in `control`, which must outlive
/// the call that sends `m`).
#[allow(unsafe_code)]
fn set_segment(m: &mut libc::msghdr, control: &mut [u64; CONTROL_WORDS], seg: u16) {
    m.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is arithmetic.
    m.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<u16>() as libc::c_uint) } as _;
    // SAFETY: `m` has a control buffer of `msg_controllen` bytes (at most the 32 of
    // `control`), room for one cmsghdr and its u16, so CMSG_FIRSTHDR is non-null and
    // CMSG_DATA points inside it; the data is written unaligned.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(m);
        (*c).cmsg_level = SOL_UDP;
        (*c).cmsg_type = UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as libc::c_uint) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg);
    }
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// `sendmmsg(2)` without waiting: how many of `hdrs` went out (their `msg_len` set).
#[allow(unsafe_code)]
fn sendmmsg(fd: BorrowedFd<'_>, hdrs: &mut [libc::mmsghdr]) -> io::Result<usize> {
    // SAFETY: every header points at a sockaddr_in, an iovec and payload bytes that
    // outlive this call (the caller's stack and the batch's buffer); the kernel reads
    // them and writes only each header's msg_len. `len()` headers are valid.
    let r = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            hdrs.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(r).unwrap_or(0))
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
    use std::os::fd::AsFd;
    use std::time::Duration;

    fn v4(s: &UdpSocket) -> SocketAddrV4 {
        match s.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        }
    }

    fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = vec![0; 70_000];
        let (n, from) = s.recv_from(&mut buf).unwrap();
        buf.truncate(n);
        (buf, from)
    }

    fn results(b: &mut SendBatch) -> Vec<(SocketAddrV4, Result<usize, io::ErrorKind>)> {
        let mut v = Vec::new();
        b.drain(|to, r| v.push((to, r.map_err(|e| e.kind()))));
        v
    }

    #[test]
    fn several_datagrams_in_one_call_reach_their_destinations() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::new(8);
        for i in 0..6u8 {
            let to = if i % 2 == 0 { v4(&a) } else { v4(&b) };
            assert!(batch.push(to, &vec![i; 20 + i as usize]));
        }
        let mut calls = 0;
        batch
            .send_with(|h| {
                calls += 1;
                sendmmsg(tx.as_fd(), h)
            })
            .unwrap();
        assert_eq!(calls, 1, "one sendmmsg for the whole batch");
        assert_eq!(batch.unsent(), 0);
        let r = results(&mut batch);
        for (i, (to, res)) in r.iter().enumerate() {
            assert_eq!(*to, if i % 2 == 0 { v4(&a) } else { v4(&b) });
            assert_eq!(*res, Ok(20 + i));
        }
        for i in 0..6u8 {
            let rx = if i % 2 == 0 { &a } else { &b };
            let (bytes, from) = recv(rx);
            assert_eq!(bytes, vec![i; 20 + i as usize], "in order, intact");
            assert_eq!(from, tx.local_addr().unwrap());
        }
        assert!(batch.is_empty());
    }

    #[test]
    fn runs_to_one_destination_go_as_one_gso_message_each() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::new(32).with_gso(true);
        let mut want: Vec<(SocketAddrV4, Vec<u8>)> = Vec::new();
        let mut queue = |to: SocketAddrV4, bytes: Vec<u8>| {
            assert!(batch.push(to, &bytes));
            want.push((to, bytes));
        };
        for i in 0..5u8 {
            queue(v4(&a), vec![i; 40]);
        }
        queue(v4(&b), vec![9; 40]);
        for i in 5..10u8 {
            queue(v4(&a), vec![i; 40]);
        }
        queue(v4(&a), vec![10; 41]); // another size
        queue(v4(&a), vec![11; 2000]); // too large for a run
        queue(v4(&a), vec![12; 2000]);
        let mut messages = Vec::new();
        batch
            .send_with(|h| {
                messages.push(h.len());
                sendmmsg(tx.as_fd(), h)
            })
            .unwrap();
        assert!(batch.gso(), "loopback takes UDP GSO (Linux >= 4.18)");
        assert_eq!(
            messages,
            vec![6],
            "one call: a x5, b, a x5, the 41, two of 2000"
        );
        let r = results(&mut batch);
        assert_eq!(r.len(), want.len());
        for ((to, res), (wto, wbytes)) in r.iter().zip(&want) {
            assert_eq!((to, *res), (wto, Ok(wbytes.len())));
        }
        // Each receiver gets its datagrams one by one, intact and in order.
        for rx in [&a, &b] {
            for (_, bytes) in want.iter().filter(|(to, _)| *to == v4(rx)) {
                let (got, from) = recv(rx);
                assert_eq!(&got, bytes);
                assert_eq!(from, tx.local_addr().unwrap());
            }
        }
    }

    #[test]
    fn a_refused_gso_message_turns_gso_off_and_every_datagram_still_goes() {
        let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9);
        let mut batch = SendBatch::new(8).with_gso(true);
        for _ in 0..4 {
            batch.push(to, b"same");
        }
        let mut calls = Vec::new();
        let mut inner = fake(&[]);
        batch
            .send_with(|h| {
                let gso = h.iter().any(|x| x.msg_hdr.msg_controllen > 0);
                calls.push((h.len(), gso));
                if gso {
                    return Err(io::Error::from_raw_os_error(libc::EIO));
                }
                inner(h)
            })
            .unwrap();
        assert_eq!(calls, vec![(1, true), (4, false)]);
        assert!(!batch.gso());
        let r = results(&mut batch);
        assert!(r.iter().all(|x| x.1 == Ok(4)), "{r:?}");
    }

    #[test]
    fn a_refused_datagram_gets_its_error_and_the_rest_still_go_out() {
        refused_datagrams(false);
        refused_datagrams(true);
    }

    fn refused_datagrams(gso: bool) {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = v4(&rx);
        let mut batch = SendBatch::new(8).with_gso(gso);
        batch.push(to, b"one");
        batch.push(to, b"two");
        // Port 0 is refused by UDP (EINVAL); so is a datagram longer than UDP allows.
        batch.push(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), b"bad");
        batch.push(to, &vec![7; 65_600]);
        batch.push(to, b"five");
        let mut calls = 0;
        batch
            .send_with(|h| {
                calls += 1;
                sendmmsg(tx.as_fd(), h)
            })
            .unwrap();
        // Two sent; the refusal of the third; the fourth's; the fifth.
        assert_eq!(calls, 4);
        let r = results(&mut batch);
        assert_eq!(r[0].1, Ok(3));
        assert_eq!(r[1].1, Ok(3));
        assert_eq!(r[2].1, Err(io::ErrorKind::InvalidInput));
        assert!(r[3].1.is_err());
        assert_eq!(r[4].1, Ok(4));
        assert_eq!(recv(&rx).0, b"one");
        assert_eq!(recv(&rx).0, b"two");
        assert_eq!(recv(&rx).0, b"five");
        assert_eq!(batch.gso(), gso, "a datagram's own error leaves GSO on");
    }

    /// A fake kernel that takes `take[k]` datagrams on call `k`, then reports a full
    /// queue (EAGAIN) when `take[k]` is 0.
    fn fake(take: &'static [usize]) -> impl FnMut(&mut [libc::mmsghdr]) -> io::Result<usize> {
        let mut k = 0;
        move |h: &mut [libc::mmsghdr]| {
            let t = take.get(k).copied().unwrap_or(usize::MAX).min(h.len());
            k += 1;
            if t == 0 {
                return Err(io::Error::from(io::ErrorKind::WouldBlock));
            }
            for x in &mut h[..t] {
                // SAFETY: the iovec the batch set up for this header.
                let len = unsafe { (*x.msg_hdr.msg_iov).iov_len };
                x.msg_len = len as libc::c_uint;
            }
            Ok(t)
        }
    }

    #[test]
    fn a_partial_send_then_a_full_queue_keeps_the_rest_for_later() {
        let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9);
        let mut batch = SendBatch::new(8);
        for i in 0..5u8 {
            batch.push(to, &vec![i; 1 + i as usize]);
        }
        // The kernel takes 2, then its queue is full.
        let e = batch.send_with(fake(&[2, 0])).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(batch.unsent(), 3);
        // Writable again: the rest goes, from where it stopped (sizes 3, 4, 5).
        let mut seen = Vec::new();
        let mut inner = fake(&[1, 2]);
        batch
            .send_with(|h| {
                for x in h.iter() {
                    // SAFETY: as in `fake`.
                    seen.push(unsafe { (*x.msg_hdr.msg_iov).iov_len });
                }
                inner(h)
            })
            .unwrap();
        assert_eq!(seen, vec![3, 4, 5, 4, 5], "resent from the first unsent");
        let r = results(&mut batch);
        let lens: Vec<_> = r.iter().map(|x| x.1).collect();
        assert_eq!(lens, vec![Ok(1), Ok(2), Ok(3), Ok(4), Ok(5)]);
    }

    #[test]
    fn given_up_datagrams_are_reported_failed_and_the_batch_is_reused() {
        let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9);
        let mut batch = SendBatch::new(4);
        for _ in 0..3 {
            batch.push(to, b"x");
        }
        assert!(batch.send_with(fake(&[1, 0])).is_err());
        batch.fail_unsent(io::ErrorKind::TimedOut);
        let r = results(&mut batch);
        assert_eq!(r[0].1, Ok(1));
        assert_eq!(r[1].1, Err(io::ErrorKind::TimedOut));
        assert_eq!(r[2].1, Err(io::ErrorKind::TimedOut));
        // Left unsent without giving up: reported as WouldBlock.
        batch.push(to, b"y");
        assert!(batch.send_with(fake(&[0])).is_err());
        assert_eq!(results(&mut batch)[0].1, Err(io::ErrorKind::WouldBlock));
        assert!(batch.is_empty() && batch.unsent() == 0);
    }

    #[test]
    fn capacity_is_bounded() {
        assert_eq!(SendBatch::new(1000).capacity(), MAX_SLOTS);
        assert_eq!(SendBatch::new(0).capacity(), 1);
        let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9);
        let mut b = SendBatch::new(3);
        assert!(b.push(to, b"a") && b.push(to, b"b") && b.push(to, b"c"));
        assert!(b.is_full());
        assert!(!b.push(to, b"d"), "a full batch takes nothing more");
        assert_eq!(b.len(), 3);
    }
}
