//! Batched UDP system calls for the load generators (Linux `sendmmsg(2)` and
//! `recvmmsg(2)` through nix): one system call per burst of datagrams instead of one per
//! datagram, so that a generator sharing the machine with the daemon under test takes
//! less of its CPU. Bounded: every call moves at most the capacity given at construction.

use nix::sys::socket::{recvmmsg, sendmmsg, MsgFlags, MultiHeaders, SockaddrIn};
use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

/// Sends bursts of up to `cap` datagrams to one destination with one `sendmmsg` each.
pub struct BurstSender {
    headers: MultiHeaders<SockaddrIn>,
    addrs: Vec<Option<SockaddrIn>>,
}

impl BurstSender {
    /// A sender of bursts of at most `cap` datagrams (at least 1) to `to`.
    pub fn new(cap: usize, to: SocketAddrV4) -> Self {
        let cap = cap.max(1);
        BurstSender {
            headers: MultiHeaders::preallocate(cap, None),
            addrs: vec![Some(SockaddrIn::from(to)); cap],
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
        let slices: Vec<[IoSlice<'_>; 1]> = pkts[..n]
            .iter()
            .map(|b| [IoSlice::new(b.as_ref())])
            .collect();
        let r = sendmmsg(
            sock.as_raw_fd(),
            &mut self.headers,
            &slices,
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
    /// A receiver of up to `cap` datagrams (at least 1) of up to `buf_len` bytes per call.
    pub fn new(cap: usize, buf_len: usize) -> Self {
        let cap = cap.max(1);
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
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = self
                .bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            let res = recvmmsg(
                sock.as_raw_fd(),
                &mut self.headers,
                iovs.iter_mut(),
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
