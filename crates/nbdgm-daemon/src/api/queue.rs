//! One client's outgoing queue (`docs/api.md` "Events") and who writes it. Lines queue
//! in order; the client's writer task drains them into the socket. **Write-through**:
//! at the end of a receive batch the publishing thread writes the batch itself when the
//! writer is idle ([`Flusher::flush_batch`]: one non-blocking `sendmsg`, no wake-up and
//! no context switch). What the socket does not take goes back to the writer, first in
//! line, and the writer waits for room as before (stall timeout). Whoever writes holds
//! the queue's `busy` flag, so lines reach the socket in the order they were queued.

use super::Budget;
use nix::sys::socket::{sendmsg, MsgFlags};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, Notify};

/// One line to send, serialized once and shared by every client it goes to (a
/// `Vec` becomes one without a copy).
pub(super) type Line = bytes::Bytes;

/// A queued line and the queue room it holds (one line, `taken` bytes of its client's
/// [`Budget`] and, for an event, of the total) until it is written or dropped.
pub(super) struct Queued {
    pub(super) line: Line,
    pub(super) taken: usize,
    pub(super) event: bool,
    pub(super) budget: Arc<Budget>,
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.budget.give(self.taken, self.event);
    }
}

/// Lines one write-through `sendmsg` takes at most.
const IOV: usize = 64;
/// Bytes one write-through `sendmsg` gathers before it stops taking lines.
const IOV_BYTES: usize = 64 * 1024;
/// `sendmsg` calls of one write-through at most; what is left goes to the writer.
const ROUNDS: usize = 4;

/// What [`Flusher::flush_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flushed {
    /// Woke the writer (not a socket, the writer busy, an overflow to report).
    Woke,
    /// Wrote every line it took (`lines`, 0 when the queue was empty).
    Written { lines: usize },
    /// The socket took part; the rest went back to the writer, which was woken.
    Partial { lines: usize },
}

/// What the writer and the publishing threads share.
struct Outbox {
    /// Wakes the writer (at most one wake-up is stored).
    kick: Notify,
    /// The client's socket, duplicated, for write-through; `None` when the connection
    /// is not a socket.
    sock: Option<OwnedFd>,
    state: Mutex<State>,
}

struct State {
    /// The writer or a publishing thread has lines taken from the queue in hand.
    busy: bool,
    /// The writer found `busy` set and waits to be woken when it clears.
    writer_waiting: bool,
    /// `None` once the writer has ended: senders then find the channel closed.
    rx: Option<mpsc::UnboundedReceiver<Queued>>,
    /// Lines taken from the queue that the socket did not take (all of them, or the
    /// first from `carry_at`): written before anything still queued.
    carry: VecDeque<Queued>,
    carry_at: usize,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending side of one client's queue. The channel is unbounded (the [`Budget`]
/// bounds it); its writer waits on a kick, not on the channel, so the datagram path
/// can queue a whole receive batch and then write it through or wake the writer once
/// ([`QueueTx::send_quiet`], then [`Flusher::flush_batch`]). Every other send kicks at
/// once. A dropped sender kicks too, so the writer sees the channel close.
pub(super) struct QueueTx {
    /// `None` only while being dropped.
    tx: Option<mpsc::UnboundedSender<Queued>>,
    outbox: Arc<Outbox>,
}

impl QueueTx {
    /// A new queue without write-through: its sender and its writer's receiver.
    #[cfg(test)]
    pub(super) fn channel() -> (QueueTx, QueueRx) {
        Self::channel_to(None)
    }

    /// A new queue whose batches may be written through to `sock` (a duplicate of the
    /// client's stream socket).
    pub(super) fn channel_to(sock: Option<OwnedFd>) -> (QueueTx, QueueRx) {
        let (tx, rx) = mpsc::unbounded_channel();
        let outbox = Arc::new(Outbox {
            kick: Notify::new(),
            sock,
            state: Mutex::new(State {
                busy: false,
                writer_waiting: false,
                rx: Some(rx),
                carry: VecDeque::new(),
                carry_at: 0,
            }),
        });
        let rx = QueueRx {
            outbox: outbox.clone(),
        };
        (
            Self {
                tx: Some(tx),
                outbox,
            },
            rx,
        )
    }

    /// Queue `q` and wake the writer; an error when the writer is gone.
    pub(super) fn send(&self, q: Queued) -> Result<(), ()> {
        self.send_quiet(q)?;
        self.kick();
        Ok(())
    }

    /// Queue `q` without waking the writer: the caller must [`QueueTx::kick`] or
    /// [`Flusher::flush_batch`] later.
    pub(super) fn send_quiet(&self, q: Queued) -> Result<(), ()> {
        match &self.tx {
            Some(tx) => tx.send(q).map_err(drop),
            None => Err(()),
        }
    }

    /// Wake the writer (at most one wake-up is stored).
    pub(super) fn kick(&self) {
        self.outbox.kick.notify_one();
    }

    /// What writes this queue's batches through (held by a publishing thread between
    /// its batch and [`Flusher::flush_batch`]; it keeps no sender alive).
    pub(super) fn flusher(&self) -> Flusher {
        Flusher {
            outbox: self.outbox.clone(),
        }
    }

    /// True while neither the writer nor a publishing thread holds lines of this queue.
    #[cfg(test)]
    pub(super) fn idle(&self) -> bool {
        !self.outbox.lock().busy
    }

    /// Resolves when the writer is gone.
    pub(super) async fn closed(&self) {
        if let Some(tx) = &self.tx {
            tx.closed().await
        }
    }
}

/// Ends a batch of [`QueueTx::send_quiet`] ([`QueueTx::flusher`]).
pub(super) struct Flusher {
    outbox: Arc<Outbox>,
}

impl Flusher {
    /// The end of a batch of [`QueueTx::send_quiet`]: write the queued lines from this
    /// thread when the writer is idle and the socket takes them (non-blocking, at
    /// most [`ROUNDS`] `sendmsg` calls); otherwise, or for what is left, wake the
    /// writer. `dropped`: the client's count of events not yet reported; while it is
    /// not zero the writer writes, so that its `overflow` notice stays in order.
    pub(super) fn flush_batch(&self, dropped: &AtomicU64) -> Flushed {
        let ob = &*self.outbox;
        let Some(sock) = &ob.sock else {
            ob.kick.notify_one();
            return Flushed::Woke;
        };
        let mut st = ob.lock();
        if st.busy || !st.carry.is_empty() || dropped.load(Ordering::Relaxed) > 0 {
            drop(st);
            ob.kick.notify_one();
            return Flushed::Woke;
        }
        st.busy = true;
        let mut taken = TAKEN.with(RefCell::take);
        let (mut written, mut partial) = (0, false);
        for _ in 0..ROUNDS {
            let mut bytes = 0;
            while let Some(rx) = st.rx.as_mut() {
                if taken.len() == IOV || bytes >= IOV_BYTES {
                    break;
                }
                let Ok(q) = rx.try_recv() else { break };
                bytes += q.line.len();
                taken.push(q);
            }
            if taken.is_empty() {
                break;
            }
            drop(st);
            let n = send_lines(sock, &taken);
            st = ob.lock();
            // Written lines give their room back; the rest is carried, in order.
            let mut left = n;
            for q in taken.drain(..) {
                if !partial && left >= q.line.len() {
                    left -= q.line.len();
                    written += 1;
                } else {
                    if !partial {
                        partial = true;
                        st.carry_at = left;
                    }
                    st.carry.push_back(q);
                }
            }
            if partial {
                break;
            }
        }
        TAKEN.with(|cell| cell.replace(taken));
        st.busy = false;
        let more = st.rx.as_ref().is_some_and(|rx| !rx.is_empty());
        let wake = st.writer_waiting || !st.carry.is_empty() || more;
        st.writer_waiting = false;
        drop(st);
        if wake {
            ob.kick.notify_one();
        }
        if partial {
            Flushed::Partial { lines: written }
        } else {
            Flushed::Written { lines: written }
        }
    }
}

thread_local! {
    /// Lines a write-through has taken from a queue (empty between calls).
    static TAKEN: RefCell<Vec<Queued>> = RefCell::new(Vec::with_capacity(IOV));
}

/// Send `lines` in order with non-blocking `sendmsg` calls until all are sent or the
/// socket takes no more; returns the bytes sent. An error other than a full socket is
/// left for the writer, which meets it on its next write.
fn send_lines(sock: &OwnedFd, lines: &[Queued]) -> usize {
    let total: usize = lines.iter().map(|q| q.line.len()).sum();
    let mut sent = 0;
    let mut iov = [IoSlice::new(&[]); IOV];
    while sent < total {
        let (mut k, mut skip) = (0, sent);
        for q in lines {
            if skip >= q.line.len() {
                skip -= q.line.len();
                continue;
            }
            iov[k] = IoSlice::new(&q.line[skip..]);
            skip = 0;
            k += 1;
        }
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        match sendmsg::<()>(sock.as_raw_fd(), &iov[..k], &[], flags, None) {
            Ok(0) => break,
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    sent
}

impl Clone for QueueTx {
    fn clone(&self) -> Self {
        QueueTx {
            tx: self.tx.clone(),
            outbox: self.outbox.clone(),
        }
    }
}

impl Drop for QueueTx {
    fn drop(&mut self) {
        // The sender first: a writer woken by the kick must find it gone if it was the last.
        drop(self.tx.take());
        self.kick();
    }
}

/// The writer's side of a client's queue. Dropping it closes the queue for senders
/// and gives back the room of every line still held.
pub(super) struct QueueRx {
    outbox: Arc<Outbox>,
}

impl QueueRx {
    /// Wait until this writer may write and has lines to write, then append them to
    /// `buf`: what a write-through left first, then queued lines, each followed by
    /// `after(buf)`, until `buf` holds `limit` bytes (or one longer line). The writer
    /// holds the queue until [`QueueRx::release`]. False when every sender is gone and
    /// nothing is left.
    pub(super) async fn gather(
        &mut self,
        buf: &mut Vec<u8>,
        limit: usize,
        mut after: impl FnMut(&mut Vec<u8>),
    ) -> bool {
        loop {
            {
                let mut st = self.outbox.lock();
                if st.busy {
                    st.writer_waiting = true;
                } else {
                    let at = std::mem::take(&mut st.carry_at);
                    for (i, q) in std::mem::take(&mut st.carry).into_iter().enumerate() {
                        buf.extend_from_slice(&q.line[if i == 0 { at } else { 0 }..]);
                        drop(q); // its queue room is free again
                        after(buf);
                    }
                    let mut closed = false;
                    while buf.len() < limit {
                        match st.rx.as_mut().map(|rx| rx.try_recv()) {
                            Some(Ok(q)) => {
                                buf.extend_from_slice(&q.line);
                                drop(q);
                                after(buf);
                            }
                            Some(Err(mpsc::error::TryRecvError::Empty)) => break,
                            _ => {
                                closed = true;
                                break;
                            }
                        }
                    }
                    if !buf.is_empty() {
                        st.busy = true;
                        return true;
                    }
                    if closed {
                        return false;
                    }
                }
            }
            self.outbox.kick.notified().await;
        }
    }

    /// The writer has written what [`QueueRx::gather`] gave it.
    pub(super) fn release(&mut self) {
        self.outbox.lock().busy = false;
    }

    /// The next queued line, waiting for a kick when there is none; `None` when every
    /// sender is gone.
    #[cfg(test)]
    pub(super) async fn recv(&mut self) -> Option<Queued> {
        loop {
            match self.outbox.lock().rx.as_mut().map(|rx| rx.try_recv()) {
                Some(Ok(q)) => return Some(q),
                Some(Err(mpsc::error::TryRecvError::Empty)) => {}
                _ => return None,
            }
            self.outbox.kick.notified().await;
        }
    }

    /// The next queued line if one is there now.
    #[cfg(test)]
    pub(super) fn try_recv(&mut self) -> Option<Queued> {
        self.outbox.lock().rx.as_mut()?.try_recv().ok()
    }
}

impl Drop for QueueRx {
    fn drop(&mut self) {
        let mut st = self.outbox.lock();
        st.rx = None;
        st.carry.clear();
        st.busy = false;
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
