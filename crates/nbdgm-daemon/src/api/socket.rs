//! A client's stream socket (Unix or TCP) as the connection's two halves, each
//! registered with the runtime only for what it waits on: the read half for
//! readability, the write half for writability only while a write waits for room.
//! A socket registered for both (as tokio's streams are) wakes a runtime thread each
//! time the client reads what a write-through (queue.rs) sent; these halves do not.

use nix::sys::socket::{send, shutdown, MsgFlags, Shutdown};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// A stream socket the API serves: handed over as its descriptor (non-blocking).
pub(super) trait Socket {
    fn into_fd(self) -> io::Result<OwnedFd>;
}

impl Socket for tokio::net::UnixStream {
    fn into_fd(self) -> io::Result<OwnedFd> {
        Ok(self.into_std()?.into())
    }
}

impl Socket for tokio::net::TcpStream {
    fn into_fd(self) -> io::Result<OwnedFd> {
        Ok(self.into_std()?.into())
    }
}

/// The two halves of `fd` (which must be non-blocking) and a third duplicate for
/// write-through.
pub(super) fn halves(fd: OwnedFd) -> io::Result<(ReadHalf, WriteHalf, OwnedFd)> {
    let write = fd.try_clone()?;
    let through = fd.try_clone()?;
    let read = register(fd, Interest::READABLE).map_err(|(_, e)| e)?;
    Ok((ReadHalf(read), WriteHalf::Idle(write), through))
}

/// Register `fd` with the runtime for `interest` only; on failure, `fd` back.
#[allow(unsafe_code)]
fn register(fd: OwnedFd, interest: Interest) -> Result<AsyncFd<OwnedFd>, (OwnedFd, io::Error)> {
    // SAFETY: an `OwnedFd` stays open until it is dropped, which `AsyncFd` does only
    // after deregistering it, and its `as_raw_fd` always returns the same descriptor.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into_parts())
}

/// The read half: registered for readability only.
pub(super) struct ReadHalf(AsyncFd<OwnedFd>);

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard
                .try_io(|fd| nix::unistd::read(fd.as_raw_fd(), unfilled).map_err(io::Error::from))
            {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
            }
        }
    }
}

/// The write half: writes with non-blocking `send`; only when the socket is full is its
/// descriptor registered for writability, until the write it held up has gone out.
pub(super) enum WriteHalf {
    Idle(OwnedFd),
    Waiting(AsyncFd<OwnedFd>),
    /// Registration failed and took the descriptor with it.
    Gone,
}

fn send_now(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    send(fd.as_raw_fd(), buf, flags).map_err(io::Error::from)
}

fn interrupted(r: &io::Result<usize>) -> bool {
    matches!(r, Err(e) if e.kind() == io::ErrorKind::Interrupted)
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            match std::mem::replace(this, WriteHalf::Gone) {
                WriteHalf::Idle(fd) => {
                    let r = send_now(&fd, buf);
                    match r {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            match register(fd, Interest::WRITABLE) {
                                Ok(reg) => *this = WriteHalf::Waiting(reg),
                                Err((fd, e)) => {
                                    *this = WriteHalf::Idle(fd);
                                    return Poll::Ready(Err(e));
                                }
                            }
                        }
                        r => {
                            *this = WriteHalf::Idle(fd);
                            if !interrupted(&r) {
                                return Poll::Ready(r);
                            }
                        }
                    }
                }
                WriteHalf::Waiting(reg) => {
                    let sent = match reg.poll_write_ready(cx) {
                        Poll::Ready(Ok(mut guard)) => {
                            match guard.try_io(|fd| send_now(fd.get_ref(), buf)) {
                                Ok(r) if !interrupted(&r) => Some(r),
                                _ => None, // full again, or interrupted: poll once more
                            }
                        }
                        Poll::Ready(Err(e)) => Some(Err(e)),
                        Poll::Pending => {
                            *this = WriteHalf::Waiting(reg);
                            return Poll::Pending;
                        }
                    };
                    match sent {
                        // Room again: no more wake-ups for room until the next wait.
                        Some(r) => {
                            *this = WriteHalf::Idle(reg.into_inner());
                            return Poll::Ready(r);
                        }
                        None => *this = WriteHalf::Waiting(reg),
                    }
                }
                WriteHalf::Gone => return Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let fd = match &*self {
            WriteHalf::Idle(fd) => fd.as_raw_fd(),
            WriteHalf::Waiting(reg) => reg.get_ref().as_raw_fd(),
            WriteHalf::Gone => return Poll::Ready(Ok(())),
        };
        Poll::Ready(match shutdown(fd, Shutdown::Write) {
            Ok(()) | Err(nix::errno::Errno::ENOTCONN) => Ok(()),
            Err(e) => Err(e.into()),
        })
    }
}
