//! One API connection: reads request lines (64 KiB cap), answers
//! `subscribe`/`unsubscribe` through the hub, forwards the rest to the runtime, and
//! drains the client's queue into the socket (writer task: bounded batches, stall
//! timeout). `hello` may choose the client's event encoding (`docs/api.md` "Event
//! encoding"), recorded in the hub before the request goes on to the runtime.

use super::hub::{inc, Hub};
use super::listener::{peer_key, reject, wait_shutdown, ActiveGuard, Shared};
use super::socket::{self, Socket};
use super::*;
use futures_util::StreamExt;
use nbdgm_api::{
    self as proto, ErrorCode, EventEncoding, Op, Request, Response, SubscribeResult, MAX_LINE,
};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead};

pub(super) trait Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Conn for T {}

pub(super) fn start_client<S: Conn + Socket>(
    shared: &Arc<Shared>,
    stream: S,
    info: ClientInfo,
    first: Option<Hello>,
    shutdown: watch::Receiver<bool>,
) {
    let max = shared.config.max_clients;
    if shared.active.fetch_add(1, Ordering::Relaxed) >= max {
        shared.active.fetch_sub(1, Ordering::Relaxed);
        inc(&shared.hub.counters.clients_rejected);
        tracing::warn!(
            client = info.id,
            max,
            "API client rejected: too many clients"
        );
        reject(shared, stream, ErrorCode::Busy, "too many clients");
        return;
    }
    let key = peer_key(&info);
    {
        let mut p = shared.per_peer.lock().unwrap_or_else(|e| e.into_inner());
        let n = p.entry(key.clone()).or_insert(0);
        if *n >= shared.config.max_clients_per_peer {
            drop(p);
            shared.active.fetch_sub(1, Ordering::Relaxed);
            inc(&shared.hub.counters.clients_rejected_per_peer);
            tracing::warn!(
                client = info.id,
                peer = %key,
                max = shared.config.max_clients_per_peer,
                "API client rejected: too many clients of this peer"
            );
            reject(
                shared,
                stream,
                ErrorCode::Busy,
                "too many clients of this peer",
            );
            return;
        }
        *n += 1;
    }
    inc(&shared.hub.counters.clients_total);
    let guard = ActiveGuard(shared.clone(), key);
    let sides = stream.into_fd().and_then(socket::halves);
    let (rd, wr, through) = match sides {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(client = info.id, error = %e, "API client dropped: cannot set up its socket");
            return; // the guard gives its slot back
        }
    };
    let info = Arc::new(info);
    tokio::spawn(connection(guard, rd, wr, through, info, first, shutdown));
}

/// A TCP client's authenticated `hello`, and the bytes it sent after it.
pub(super) struct Hello {
    pub(super) request: Parsed,
    pub(super) rest: Vec<u8>,
}

/// A parsed request line and, for `hello`, the event encoding it asks for.
pub(super) struct Parsed {
    pub(super) request: Request,
    pub(super) encoding: Option<EventEncoding>,
}

/// Bytes the writer gathers from the queue before one write to the socket (a line
/// longer than this is written alone).
pub(super) const WRITE_BATCH: usize = 64 * 1024;

/// Request lines: each ends with `\n` and holds at most `max` bytes before it (a
/// `\r` before the newline counts, and is dropped). Lines are bytes, not text:
/// bad UTF-8 is the JSON parser's to report, and the connection stays.
pub(super) type Lines<R> = FramedRead<R, AnyDelimiterCodec>;

/// Request lines of `r`, at most `max` bytes each.
pub(super) fn request_lines<R: AsyncRead>(r: R, max: usize) -> Lines<R> {
    let codec = AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), Vec::new(), max);
    FramedRead::with_capacity(r, codec, 16 * 1024)
}

/// Outcome of reading one line.
pub(super) enum ReadLine {
    /// A line, without its newline and `\r`; the last one may lack the newline.
    Line(Vec<u8>),
    Eof,
    TooLong,
}

/// The next request line (cancel-safe: nothing is lost if the future is dropped).
pub(super) async fn next_line<R: AsyncRead + Unpin>(lines: &mut Lines<R>) -> io::Result<ReadLine> {
    Ok(match lines.next().await {
        None => ReadLine::Eof,
        Some(Ok(line)) => {
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            ReadLine::Line(line.to_vec())
        }
        Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded)) => ReadLine::TooLong,
        Some(Err(AnyDelimiterCodecError::Io(e))) => return Err(e),
    })
}

/// A client's queue for responses: they wait for queue bytes, never dropped.
#[derive(Clone)]
pub(super) struct Responder {
    pub(super) tx: QueueTx,
    pub(super) budget: Arc<Budget>,
}

impl Responder {
    /// Wait for room (one line, the line's bytes) in the client's queue, then queue
    /// `line`; an error when the writer is gone.
    pub(super) async fn send(&self, line: Line) -> Result<(), ()> {
        let n = self.budget.taken(line.len());
        if !self.budget.take_waiting(n, self.tx.closed()).await {
            return Err(());
        }
        let q = Queued {
            line,
            taken: n,
            event: false,
            budget: self.budget.clone(),
        };
        self.tx.send(q)
    }

    pub(super) async fn closed(&self) {
        self.tx.closed().await
    }
}

pub(super) async fn connection<R, W>(
    guard: ActiveGuard,
    rd: R,
    wr: W,
    sock: OwnedFd,
    info: Arc<ClientInfo>,
    hello: Option<Hello>,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let shared = guard.0.clone();
    let hub = shared.hub.clone();
    // Unbounded channel, bounded by the budget in lines and bytes.
    let (tx, qrx) = QueueTx::channel_to(Some(sock));
    let budget = hub.budget(
        shared.config.queue_per_client,
        shared.config.queue_bytes_per_client,
    );
    let qtx = Responder {
        tx,
        budget: budget.clone(),
    };
    let dropped = Arc::new(AtomicU64::new(0));
    hub.attach(info.id, qtx.tx.clone(), budget, dropped.clone());
    let stall = shared.config.write_stall_timeout;
    let writer = tokio::spawn(writer_task(wr, qrx, dropped, hub.clone(), info.id, stall));

    let (mut first, rest) = match hello {
        Some(h) => (Some(h.request), h.rest),
        None => (None, Vec::new()),
    };
    let mut reader = request_lines(std::io::Cursor::new(rest).chain(rd), MAX_LINE);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        // The authenticated `hello` of a TCP client comes first.
        if let Some(request) = first.take() {
            if !handle_request(&shared, &info, &qtx, &in_flight, request, &mut shutdown).await {
                break;
            }
            continue;
        }
        let r = tokio::select! {
            _ = wait_shutdown(&mut shutdown) => break,
            _ = qtx.closed() => break, // the writer gave up on this client
            r = next_line(&mut reader) => r,
        };
        let line = match r {
            Ok(ReadLine::Line(line)) => line,
            Ok(ReadLine::Eof) => break,
            Ok(ReadLine::TooLong) => {
                inc(&hub.counters.requests);
                inc(&hub.counters.bad_requests);
                inc(&hub.counters.oversize_lines);
                tracing::warn!(
                    client = info.id,
                    "API request line over {MAX_LINE} bytes; closing"
                );
                let r = Response::err(
                    None,
                    ErrorCode::BadRequest,
                    format!("request line longer than {MAX_LINE} bytes; closing the connection"),
                );
                let _ = qtx.send(response_line(&r)).await;
                break;
            }
            Err(e) => {
                tracing::debug!(client = info.id, error = %e, "API read failed");
                break;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        inc(&hub.counters.requests);
        let request = match parse_request(&line) {
            Ok(r) => r,
            Err(resp) => {
                inc(&hub.counters.bad_requests);
                if qtx.send(response_line(&resp)).await.is_err() {
                    break;
                }
                continue;
            }
        };
        if !handle_request(&shared, &info, &qtx, &in_flight, request, &mut shutdown).await {
            break;
        }
    }

    let ended = hub.detach(info.id);
    drop(qtx);
    tracing::info!(
        client = info.id,
        subscriptions = ended,
        "API client disconnected"
    );
    let msg = ApiMsg::Disconnected {
        client: info.clone(),
    };
    if tokio::time::timeout(Duration::from_secs(5), shared.tx.send(msg))
        .await
        .is_err()
    {
        tracing::warn!(
            client = info.id,
            "runtime did not take the disconnect notice"
        );
    }
    if *shutdown.borrow() {
        writer.abort();
    }
    let _ = writer.await;
    drop(guard);
}

/// Answer `subscribe`/`unsubscribe` here, forward the rest to the runtime (at most
/// [`MAX_IN_FLIGHT`] at a time); false when the connection must end.
pub(super) async fn handle_request(
    shared: &Arc<Shared>,
    info: &Arc<ClientInfo>,
    qtx: &Responder,
    in_flight: &Arc<Semaphore>,
    parsed: Parsed,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let Parsed { request, encoding } = parsed;
    if let Some(e) = encoding {
        shared.hub.set_encoding(info.id, e);
    }
    let id = request.id;
    let local = match &request.op {
        Op::Subscribe(sub) => Some(match shared.hub.try_subscribe(info.id, sub.clone()) {
            Ok(s) => Response::ok(id, &SubscribeResult { subscription: s }),
            Err((code, msg)) => Response::err(Some(id), code, msg),
        }),
        Op::Unsubscribe { subscription } => {
            Some(if shared.hub.unsubscribe(info.id, *subscription) {
                Response::ok(id, &serde_json::json!({}))
            } else {
                Response::err(
                    Some(id),
                    ErrorCode::NotFound,
                    format!("no subscription {subscription}"),
                )
            })
        }
        _ => None,
    };
    if let Some(resp) = local {
        return qtx.send(response_line(&resp)).await.is_ok();
    }
    // Forward to the runtime, at most MAX_IN_FLIGHT at a time.
    let permit = tokio::select! {
        _ = wait_shutdown(shutdown) => return false,
        p = in_flight.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return false },
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    let msg = ApiMsg::Request {
        client: info.clone(),
        request,
        reply: reply_tx,
    };
    let forwarded = tokio::select! {
        _ = wait_shutdown(shutdown) => return false,
        r = shared.tx.send(msg) => r.is_ok(),
    };
    if !forwarded {
        let r = Response::err(Some(id), ErrorCode::Internal, "the daemon is shutting down");
        return qtx.send(response_line(&r)).await.is_ok();
    }
    let qtx = qtx.clone();
    tokio::spawn(async move {
        let resp = match tokio::time::timeout(REQUEST_TIMEOUT, reply_rx).await {
            Ok(Ok(mut r)) => {
                r.id = Some(id);
                // The hello result says which encoding is now in force.
                if let (Some(e), Some(serde_json::Value::Object(m))) = (encoding, &mut r.result) {
                    m.insert("encoding".into(), e.as_str().into());
                }
                r
            }
            Ok(Err(_)) => Response::err(Some(id), ErrorCode::Internal, "request was dropped"),
            Err(_) => Response::err(Some(id), ErrorCode::Timeout, "no answer in time"),
        };
        let _ = qtx.send(response_line(&resp)).await;
        drop(permit);
    });
    true
}

/// The encoding a `hello` request object asks for (`encoding`), if it names one;
/// the error is the response to send.
fn hello_encoding(
    id: u64,
    obj: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<EventEncoding>, Response> {
    let known = || {
        EventEncoding::ALL
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match obj.get("encoding") {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => match EventEncoding::from_name(s) {
            Some(e) => Ok(Some(e)),
            None => Err(Response::err(
                Some(id),
                ErrorCode::Unsupported,
                format!("unknown encoding {s:?} (known: {})", known()),
            )),
        },
        Some(_) => Err(Response::err(
            Some(id),
            ErrorCode::BadRequest,
            format!("\"encoding\" must be a string (one of: {})", known()),
        )),
    }
}

/// Parse a request line; the error is the response to send.
pub(super) fn parse_request(line: &[u8]) -> Result<Parsed, Response> {
    let v: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| Response::err(None, ErrorCode::BadRequest, format!("invalid JSON: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(Response::err(
            None,
            ErrorCode::BadRequest,
            "a request must be a JSON object",
        ));
    };
    let Some(id) = obj.get("id").and_then(|i| i.as_u64()) else {
        return Err(Response::err(
            None,
            ErrorCode::BadRequest,
            "missing or invalid \"id\" (an unsigned integer)",
        ));
    };
    match obj.get("op").and_then(|o| o.as_str()) {
        None => {
            return Err(Response::err(
                Some(id),
                ErrorCode::BadRequest,
                "missing \"op\"",
            ))
        }
        Some(op) if !proto::OPS.contains(&op) => {
            return Err(Response::err(
                Some(id),
                ErrorCode::Unsupported,
                format!("unknown op {op:?}"),
            ))
        }
        Some(_) => {}
    }
    let encoding = match obj.get("op").and_then(|o| o.as_str()) {
        Some("hello") => hello_encoding(id, obj)?,
        _ => None,
    };
    let request = serde_json::from_value(v)
        .map_err(|e| Response::err(Some(id), ErrorCode::BadRequest, e.to_string()))?;
    Ok(Parsed { request, encoding })
}

/// Drain the client's queue into the socket: lines are gathered into one reused
/// buffer (up to [`WRITE_BATCH`] bytes, or one longer line) and written with one
/// timed write; dropped events are reported with an `overflow` event. Between its
/// writes, a publishing thread may write a batch through (queue.rs).
pub(super) async fn writer_task<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: QueueRx,
    dropped: Arc<AtomicU64>,
    hub: Arc<Hub>,
    client: u64,
    stall: Duration,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
    let overflow = |buf: &mut Vec<u8>| {
        if dropped.load(Ordering::Relaxed) > 0 {
            let n = dropped.swap(0, Ordering::Relaxed);
            inc(&hub.counters.overflow_events);
            if let Some(l) = encode_line(&proto::Event::Overflow { dropped: n }) {
                buf.extend_from_slice(&l);
            }
        }
    };
    let result: io::Result<()> = async {
        while rx.gather(&mut buf, WRITE_BATCH, overflow).await {
            let written = timed(stall, wr.write_all(&buf)).await;
            buf.clear();
            if buf.capacity() > 4 * WRITE_BATCH {
                buf = Vec::with_capacity(WRITE_BATCH);
            }
            written?;
            timed(stall, wr.flush()).await?;
            rx.release();
        }
        let _ = timed(REJECT_WRITE_TIMEOUT, wr.shutdown()).await;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if e.kind() == io::ErrorKind::TimedOut {
            inc(&hub.counters.write_stalls);
            tracing::warn!(client, "API client stopped reading; disconnecting");
        } else {
            tracing::debug!(client, error = %e, "API write failed");
        }
    }
}

pub(super) async fn timed<T>(
    t: Duration,
    f: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(t, f).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write stalled")),
    }
}
