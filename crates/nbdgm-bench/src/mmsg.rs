//! Batched UDP system calls for the load generators (Linux `sendmmsg(2)` and
//! `recvmmsg(2)` through nix): one system call per burst of datagrams instead of one per
//! datagram, so that a generator sharing the machine with the daemon under test takes
//! less of its CPU. Bounded: every call moves at most the capacity given at construction.
//! [`GsoSender`] goes one step further for equal-sized datagrams to one peer: one
//! `send(2)` of a buffer the kernel cuts into datagrams (`UDP_SEGMENT`, Linux ≥ 4.18).

use nix::sys::socket::{
    recvmmsg, sendmmsg, setsockopt, sockopt::UdpGsoSegment, MsgFlags, MultiHeaders, SockaddrIn,
};
use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

/// Most datagrams one [`BurstSender`] or [`BatchReceiver`] call moves (the iovec arrays
/// live on the stack: no allocation per call).
pub const MAX_BATCH: usize = 128;

/// Sends bursts of up to `cap` datagrams to one destination with one `sendmmsg` each.
pub struct BurstSender {
    headers: MultiHeaders<SockaddrIn>,
    addrs: Vec<Option<SockaddrIn>>,
}

impl BurstSender {
    /// A sender of bursts of at most `cap` datagrams (1 ..= [`MAX_BATCH`]) to `to`.
    pub fn new(cap: usize, to: SocketAddrV4) -> Self {
        Self::with_addr(cap, Some(SockaddrIn::from(to)))
    }

    /// A sender of bursts of at most `cap` datagrams (1 ..= [`MAX_BATCH`]) on a socket
    /// connected to its peer (no address per datagram: the kernel uses the route the
    /// connected socket keeps).
    pub fn connected(cap: usize) -> Self {
        Self::with_addr(cap, None)
    }

    fn with_addr(cap: usize, addr: Option<SockaddrIn>) -> Self {
        let cap = cap.clamp(1, MAX_BATCH);
        BurstSender {
            headers: MultiHeaders::preallocate(cap, None),
            addrs: vec![addr; cap],
        }
    }

    /// The largest burst one call sends.
    pub fn capacity(&self) -> usize {
        self.addrs.len()
    }

    /// Send the first `capacity()` of `pkts` in one `sendmmsg`; returns how many the
    /// kernel took (the rest were not sent).
    pub fn send<B: AsRef<[u8]>>(&mut self, sock: &UdpSocket, pkts: &[B]) -> nix::Result<usize> {
        let n = pkts.len().min(self.addrs.len());
        if n == 0 {
            return Ok(0);
        }
        let mut slices = [[IoSlice::new(&[])]; MAX_BATCH];
        for (s, b) in slices.iter_mut().zip(&pkts[..n]) {
            s[0] = IoSlice::new(b.as_ref());
        }
        let r = sendmmsg(
            sock.as_raw_fd(),
            &mut self.headers,
            &slices[..n],
            &self.addrs[..n],
            [],
            MsgFlags::empty(),
        )?;
        Ok(r.count())
    }
}

/// Receives up to `cap` datagrams with one `recvmmsg`, into buffers it owns.
pub struct BatchReceiver {
    headers: MultiHeaders<SockaddrIn>,
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
    count: usize,
}

impl BatchReceiver {
    /// A receiver of up to `cap` datagrams (1 ..= [`MAX_BATCH`]) of up to `buf_len` bytes
    /// per call.
    pub fn new(cap: usize, buf_len: usize) -> Self {
        let cap = cap.clamp(1, MAX_BATCH);
        BatchReceiver {
            headers: MultiHeaders::preallocate(cap, None),
            bufs: vec![vec![0u8; buf_len]; cap],
            lens: vec![0; cap],
            count: 0,
        }
    }

    /// One `recvmmsg` with `MSG_WAITFORONE`: waits for the first datagram (at most the
    /// socket's read timeout; then an error such as `EAGAIN`), then takes what is already
    /// queued, up to the capacity. Returns the number of datagrams now in [`Self::get`].
    pub fn recv(&mut self, sock: &UdpSocket) -> nix::Result<usize> {
        self.count = 0;
        let received = {
            let mut iovs: [[IoSliceMut<'_>; 1]; MAX_BATCH] =
                std::array::from_fn(|_| [IoSliceMut::new(&mut [])]);
            let cap = self.bufs.len();
            for (iov, b) in iovs.iter_mut().zip(self.bufs.iter_mut()) {
                iov[0] = IoSliceMut::new(&mut b[..]);
            }
            let res = recvmmsg(
                sock.as_raw_fd(),
                &mut self.headers,
                iovs[..cap].iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            )?;
            let mut k = 0;
            for (len, m) in self.lens.iter_mut().zip(res) {
                *len = m.bytes;
                k += 1;
            }
            k
        };
        self.count = received;
        Ok(received)
    }

    /// The `i`-th datagram of the last [`Self::recv`] (empty past its count).
    pub fn get(&self, i: usize) -> &[u8] {
        if i >= self.count {
            return &[];
        }
        let len = self.lens[i].min(self.bufs[i].len());
        &self.bufs[i][..len]
    }
}

/// Most datagrams one [`GsoSender`] send carries (the kernel's `UDP_MAX_SEGMENTS` is 64
/// on older kernels).
pub const MAX_GSO_SEGMENTS: usize = 64;

/// Sends bursts of equal-sized datagrams on a connected socket with one `send(2)` each:
/// the socket's `UDP_SEGMENT` option makes the kernel cut the buffer into datagrams of
/// `seg_len` bytes (each its own UDP datagram on the wire and at the receiver).
pub struct GsoSender {
    seg_len: usize,
}

impl GsoSender {
    /// Set `UDP_SEGMENT` = `seg_len` on `sock` (connected to its peer). Datagrams of at
    /// most `seg_len` bytes sent otherwise on this socket are not cut.
    pub fn new(sock: &UdpSocket, seg_len: usize) -> nix::Result<Self> {
        let len = i32::try_from(seg_len).map_err(|_| nix::Error::EINVAL)?;
        setsockopt(sock, UdpGsoSegment, &len)?;
        Ok(GsoSender { seg_len })
    }

    /// Send `buf` (a whole number of datagrams, at most [`MAX_GSO_SEGMENTS`]) with one
    /// `send`; returns how many datagrams the kernel took (all or none).
    pub fn send(&self, sock: &UdpSocket, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len() / self.seg_len.max(1);
        if n == 0 || n > MAX_GSO_SEGMENTS || !buf.len().is_multiple_of(self.seg_len) {
            return Err(std::io::ErrorKind::InvalidInput.into());
        }
        sock.send(buf)?;
        Ok(n)
    }
}
