//! Blocking client for the local API of `nbdgm serve`: JSON lines over a Unix socket
//! (or the optional TCP listener). The wire types are in [`proto`] (the crate `nbdgm-api`); the protocol is
//! described in `docs/api.md`.
//!
//! ```no_run
//! use nbdgm_client::{Client, proto::{Event, SendArgs, SendMode, Subscription}};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), nbdgm_client::Error> {
//! let mut client = Client::connect(nbdgm_client::default_socket_path())?;
//! client.hello()?;
//! client.register("MYAPP<03>", false)?;
//! client.subscribe(Subscription {
//!     mailslot: Some("\\MAILSLOT\\BROWSE".into()),
//!     ..Subscription::default()
//! })?;
//! if let Some(Event::Datagram(d)) = client.next_event(Some(Duration::from_secs(5)))? {
//!     println!("{} -> {}: {}", d.source, d.destination, d.data_hex);
//! }
//! let mut send = SendArgs::new("TESTGROUP<1d>", SendMode::Group, b"hello");
//! send.mailslot = Some("\\MAILSLOT\\BROWSE".into());
//! let sent = client.send(send)?;
//! println!("sent {} bytes to {}", sent.bytes, sent.to);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

/// The wire types of the API (the crate `nbdgm-api`), under their historical path.
pub use nbdgm_api as proto;

use proto::{
    BrowseResult, CacheResult, ErrorCode, Event, EventEncoding, HelloResult, LookupResult,
    NamesResult, Op, RegisterArgs, RegisterResult, Request, Response, SendArgs, SendResult,
    ServerMsg, StatusResult, SubscribeResult, Subscription, MAX_SERVER_LINE,
};
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Environment variable that overrides [`DEFAULT_SOCKET`].
pub const SOCKET_ENV: &str = "NBDGM_API_SOCKET";
/// Where the daemon listens by default.
pub const DEFAULT_SOCKET: &str = "/run/nbdgm/api.sock";
/// Default time to wait for a response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of events buffered while waiting for a response.
pub const DEFAULT_EVENT_BUFFER: usize = 4096;
/// Bytes of events buffered by default while a request waits (about, by their JSON).
pub const DEFAULT_EVENT_BUFFER_BYTES: usize = 16 << 20;

/// `$NBDGM_API_SOCKET`, or `/run/nbdgm/api.sock`.
pub fn default_socket_path() -> PathBuf {
    match std::env::var_os(SOCKET_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_SOCKET),
    }
}

/// Errors of [`Client`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The daemon sent something that is not a valid protocol line.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The daemon answered with an error.
    #[error("server error {code}: {message}")]
    Server { code: ErrorCode, message: String },
    /// No response (or event) in time.
    #[error("timed out waiting for the daemon")]
    Timeout,
    /// The daemon closed the connection.
    #[error("connection closed by the daemon")]
    Closed,
}

/// Result of client calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug)]
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
        }
    }
    fn shutdown(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// About the memory an event takes (its hex data dominates).
fn event_size(ev: &Event) -> usize {
    match ev {
        Event::Datagram(d) => {
            let b64 = d.data_b64.as_ref().map_or(0, String::len);
            256 + d.data_hex.len() + b64 + d.source.len() + d.destination.len()
        }
        _ => 256,
    }
}

/// A blocking connection to the daemon. Not thread-safe by itself (`&mut self`);
/// events that arrive while a request waits for its response are buffered (up to
/// [`Client::set_event_buffer`]; beyond that they are dropped and counted).
#[derive(Debug)]
pub struct Client {
    reader: BufReader<Stream>,
    writer: Stream,
    /// Bytes of a line not yet complete (kept across read timeouts).
    partial: Vec<u8>,
    next_id: u64,
    timeout: Duration,
    events: VecDeque<(Event, usize)>,
    event_cap: usize,
    event_bytes: usize,
    event_bytes_cap: usize,
    events_dropped: u64,
    closed: bool,
}

impl Client {
    /// Connect to the daemon's Unix socket.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client> {
        Client::from_unix(UnixStream::connect(path)?)
    }

    /// Connect to the daemon's optional TCP listener.
    pub fn connect_tcp(addr: impl ToSocketAddrs) -> Result<Client> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Client::from_stream(Stream::Tcp(s))
    }

    /// Use an already connected Unix stream (e.g. one end of a socket pair).
    pub fn from_unix(stream: UnixStream) -> Result<Client> {
        Client::from_stream(Stream::Unix(stream))
    }

    fn from_stream(stream: Stream) -> Result<Client> {
        let writer = stream.try_clone()?;
        writer.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
        Ok(Client {
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer,
            partial: Vec::new(),
            next_id: 1,
            timeout: DEFAULT_TIMEOUT,
            events: VecDeque::new(),
            event_cap: DEFAULT_EVENT_BUFFER,
            event_bytes: 0,
            event_bytes_cap: DEFAULT_EVENT_BUFFER_BYTES,
            events_dropped: 0,
            closed: false,
        })
    }

    /// Time to wait for each response (and for each write). Zero is taken as 1 ms.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.timeout = timeout.max(Duration::from_millis(1));
        self.writer.set_write_timeout(Some(self.timeout))?;
        Ok(())
    }

    /// How many events to buffer while waiting for responses (at least 1).
    pub fn set_event_buffer(&mut self, cap: usize) {
        self.event_cap = cap.max(1);
    }

    /// How many bytes of events to buffer while waiting for responses (counted by
    /// their size on the wire, about).
    pub fn set_event_buffer_bytes(&mut self, cap: usize) {
        self.event_bytes_cap = cap.max(1);
    }

    /// Events dropped because the local buffer was full (events the daemon dropped
    /// arrive as [`Event::Overflow`]).
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    /// `hello`: server name, version, protocol and interfaces.
    pub fn hello(&mut self) -> Result<HelloResult> {
        self.call(Op::Hello {
            client: Some(format!("nbdgm-client/{}", env!("CARGO_PKG_VERSION"))),
        })
    }

    /// `hello` with the TCP API's token (the first request on a TCP connection must be
    /// this one; the daemon closes the connection on a wrong token).
    pub fn hello_with_token(&mut self, token: &str) -> Result<HelloResult> {
        self.hello_with(Some(token), None)
    }

    /// `hello` asking for `encoding` of this connection's `datagram` events from now on
    /// (before subscribing; [`proto::DatagramEvent::data`] decodes either encoding).
    /// Fails with [`Error::Server`] `unsupported` when the daemon does not know the
    /// encoding, and with [`Error::Protocol`] when it ignored the request (a daemon
    /// older than event encodings).
    pub fn hello_encoding(&mut self, encoding: EventEncoding) -> Result<HelloResult> {
        self.hello_with(None, Some(encoding))
    }

    /// `hello` with the token (TCP) and the event encoding, each if given.
    pub fn hello_with(
        &mut self,
        token: Option<&str>,
        encoding: Option<EventEncoding>,
    ) -> Result<HelloResult> {
        let id = self.next_id;
        self.next_id += 1;
        let mut v = serde_json::to_value(Request {
            id,
            op: Op::Hello {
                client: Some(format!("nbdgm-client/{}", env!("CARGO_PKG_VERSION"))),
            },
        })
        .map_err(|e| Error::Protocol(format!("cannot encode request: {e}")))?;
        if let Some(t) = token {
            v["token"] = serde_json::Value::String(t.to_owned());
        }
        if let Some(e) = encoding {
            v["encoding"] = e.as_str().into();
        }
        let mut line = serde_json::to_vec(&v)
            .map_err(|e| Error::Protocol(format!("cannot encode request: {e}")))?;
        line.push(b'\n');
        let v = self.exchange(id, &line)?;
        if let Some(e) = encoding {
            if v.get("encoding").and_then(|x| x.as_str()) != Some(e.as_str()) {
                return Err(Error::Protocol(format!(
                    "the daemon did not take encoding {:?}",
                    e.as_str()
                )));
            }
        }
        serde_json::from_value(v).map_err(|e| Error::Protocol(format!("unexpected result: {e}")))
    }

    /// Connect to the daemon's TCP listener and authenticate with `token`.
    pub fn connect_tcp_with_token(addr: impl ToSocketAddrs, token: &str) -> Result<Client> {
        let mut c = Client::connect_tcp(addr)?;
        c.hello_with_token(token)?;
        Ok(c)
    }

    /// Register a unique or group name; released when this connection closes.
    pub fn register(&mut self, name: &str, group: bool) -> Result<RegisterResult> {
        self.register_with(RegisterArgs {
            name: name.to_owned(),
            group,
            persistent: false,
        })
    }

    /// Register with all options (e.g. `persistent`).
    pub fn register_with(&mut self, args: RegisterArgs) -> Result<RegisterResult> {
        self.call(Op::Register(args))
    }

    /// Release a name.
    pub fn release(&mut self, name: &str) -> Result<()> {
        self.request(Op::Release {
            name: name.to_owned(),
        })
        .map(drop)
    }

    /// Subscribe to datagram events; returns the subscription id.
    pub fn subscribe(&mut self, sub: Subscription) -> Result<u64> {
        let r: SubscribeResult = self.call(Op::Subscribe(sub))?;
        Ok(r.subscription)
    }

    /// End a subscription.
    pub fn unsubscribe(&mut self, subscription: u64) -> Result<()> {
        self.request(Op::Unsubscribe { subscription }).map(drop)
    }

    /// Send a datagram.
    pub fn send(&mut self, args: SendArgs) -> Result<SendResult> {
        self.call(Op::Send(args))
    }

    /// Resolve a name (broadcast, or unicast to `server`).
    pub fn lookup(&mut self, name: &str, server: Option<IpAddr>) -> Result<LookupResult> {
        self.call(Op::Lookup {
            name: name.to_owned(),
            server,
        })
    }

    /// Node status of `address` (asking for `name`, default `*`).
    pub fn status(&mut self, address: IpAddr, name: Option<&str>) -> Result<StatusResult> {
        self.call(Op::Status {
            address,
            name: name.map(str::to_owned),
        })
    }

    /// The local name table.
    pub fn names(&mut self) -> Result<NamesResult> {
        self.call(Op::Names)
    }

    /// The name cache.
    pub fn cache(&mut self) -> Result<CacheResult> {
        self.call(Op::Cache)
    }

    /// The daemon's counters (free-form).
    /// The daemon's browse lists (`workgroup`: only that workgroup's servers), all
    /// pages of servers fetched and joined.
    pub fn browse(&mut self, workgroup: Option<&str>) -> Result<BrowseResult> {
        let mut all: Option<BrowseResult> = None;
        let mut offset = 0;
        // A page may end before its limit (the daemon caps it in bytes) and interfaces
        // may stop at different points: each page says where it starts (`offset`), the
        // servers already held are skipped, and the next page starts where the
        // interface furthest behind stands. Bounded: stop when a page brings nothing
        // new, and after 10,000 pages regardless.
        for _ in 0..10_000 {
            let page: BrowseResult = self.call(Op::Browse {
                workgroup: workgroup.map(str::to_owned),
                offset: Some(offset),
                limit: Some(proto::BROWSE_PAGE_MAX),
                local: false,
            })?;
            let mut grew = false;
            match &mut all {
                None => {
                    grew = page.interfaces.iter().any(|i| !i.servers.is_empty());
                    all = Some(page);
                }
                Some(acc) => {
                    for p in page.interfaces {
                        if let Some(a) = acc
                            .interfaces
                            .iter_mut()
                            .find(|a| a.interface == p.interface)
                        {
                            let have = a.servers.len();
                            if p.offset <= have {
                                let before = a.servers.len();
                                a.servers
                                    .extend(p.servers.into_iter().skip(have - p.offset));
                                grew |= a.servers.len() > before;
                            }
                        }
                    }
                }
            }
            let next = all.as_ref().and_then(|acc| {
                acc.interfaces
                    .iter()
                    .filter(|a| a.servers.len() < a.servers_total)
                    .map(|a| a.servers.len())
                    .min()
            });
            match next {
                Some(n) if grew => offset = n,
                _ => break,
            }
        }
        let mut r = all.unwrap_or(BrowseResult {
            interfaces: Vec::new(),
        });
        for i in &mut r.interfaces {
            i.offset = 0;
        }
        Ok(r)
    }

    pub fn stats(&mut self) -> Result<serde_json::Value> {
        self.request(Op::Stats)
    }

    /// Send `op` and decode the result as `T`.
    pub fn call<T: DeserializeOwned>(&mut self, op: Op) -> Result<T> {
        let v = self.request(op)?;
        serde_json::from_value(v).map_err(|e| Error::Protocol(format!("unexpected result: {e}")))
    }

    /// Send `op`, wait for its response and return its `result` (`null` when absent).
    pub fn request(&mut self, op: Op) -> Result<serde_json::Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_vec(&Request { id, op })
            .map_err(|e| Error::Protocol(format!("cannot encode request: {e}")))?;
        line.push(b'\n');
        self.exchange(id, &line)
    }

    /// Write a request line and wait for the response with `id`.
    fn exchange(&mut self, id: u64, line: &[u8]) -> Result<serde_json::Value> {
        self.write_line(line)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout);
            }
            match self.read_msg(Some(deadline - now))? {
                None => return Err(Error::Timeout),
                Some(ServerMsg::Event(ev)) => self.buffer_event(ev),
                Some(ServerMsg::Response(r)) => {
                    // A null id is an error about a line the daemon could not read:
                    // with one request in flight it can only be ours.
                    if r.id.is_some() && r.id != Some(id) {
                        continue; // a late answer to a request that timed out
                    }
                    return into_result(r);
                }
            }
        }
    }

    /// Send a raw line (a newline is added); for tests and tools.
    pub fn send_raw_line(&mut self, line: &[u8]) -> Result<()> {
        let mut v = line.to_vec();
        v.push(b'\n');
        self.write_line(&v)
    }

    /// Read the next line from the daemon, raw (for tests and tools).
    pub fn read_raw(&mut self, timeout: Option<Duration>) -> Result<Option<ServerMsg>> {
        self.read_msg(timeout)
    }

    /// The next event: a buffered one, else wait up to `timeout` (`None`: forever).
    /// `Ok(None)` when none came in time. Responses read here (late answers to
    /// requests that timed out) are discarded.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>> {
        if let Some((ev, size)) = self.events.pop_front() {
            self.event_bytes -= size;
            return Ok(Some(ev));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let Some(left) = time_left(deadline) else {
                return Ok(None);
            };
            match self.read_msg(left)? {
                None => return Ok(None),
                Some(ServerMsg::Event(ev)) => return Ok(Some(ev)),
                Some(ServerMsg::Response(_)) => continue,
            }
        }
    }

    /// Close the connection (the daemon then releases non-persistent names).
    pub fn close(self) -> Result<()> {
        self.writer.shutdown()?;
        Ok(())
    }

    fn buffer_event(&mut self, ev: Event) {
        let size = event_size(&ev);
        if self.events.len() >= self.event_cap || self.event_bytes + size > self.event_bytes_cap {
            self.events_dropped += 1;
        } else {
            self.event_bytes += size;
            self.events.push_back((ev, size));
        }
    }

    fn write_line(&mut self, line: &[u8]) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        match self.writer.write_all(line) {
            Ok(()) => Ok(()),
            Err(e) if is_timeout(&e) => Err(Error::Timeout),
            Err(e) if is_closed(&e) => {
                self.closed = true;
                Err(Error::Closed)
            }
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// One message, or `None` on timeout.
    fn read_msg(&mut self, timeout: Option<Duration>) -> Result<Option<ServerMsg>> {
        loop {
            let Some(line) = self.read_line(timeout)? else {
                return Ok(None);
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return proto::parse_server_line(&line)
                .map(Some)
                .map_err(|e| Error::Protocol(format!("bad line from daemon: {e}")));
        }
    }

    /// One complete line without its newline, or `None` on timeout.
    fn read_line(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        if self.closed {
            return Err(Error::Closed);
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let Some(left) = time_left(deadline) else {
                return Ok(None);
            };
            let left = left.map(|l| l.max(Duration::from_millis(1)));
            self.reader.get_ref().set_read_timeout(left)?;
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Ok(None),
                Err(e) if is_closed(&e) => {
                    self.closed = true;
                    return Err(Error::Closed);
                }
                Err(e) => return Err(Error::Io(e)),
            };
            if buf.is_empty() {
                self.closed = true;
                return Err(Error::Closed);
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(p) => (p + 1, true),
                None => (buf.len(), false),
            };
            self.partial.extend_from_slice(&buf[..take]);
            self.reader.consume(take);
            if done {
                let mut line = std::mem::take(&mut self.partial);
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.partial.len() > MAX_SERVER_LINE {
                self.partial.clear();
                self.closed = true;
                return Err(Error::Protocol(format!(
                    "line from daemon longer than {MAX_SERVER_LINE} bytes"
                )));
            }
        }
    }
}

fn into_result(r: Response) -> Result<serde_json::Value> {
    if r.ok {
        return Ok(r.result.unwrap_or(serde_json::Value::Null));
    }
    match r.error {
        Some(e) => Err(Error::Server {
            code: e.code,
            message: e.message,
        }),
        None => Err(Error::Protocol("error response without an error".into())),
    }
}

/// The wait left before `deadline` (`Some(None)`: no deadline, wait forever), or `None`
/// once it has passed.
fn time_left(deadline: Option<Instant>) -> Option<Option<Duration>> {
    match deadline {
        Some(d) => {
            let now = Instant::now();
            if now >= d {
                return None;
            }
            Some(Some(d - now))
        }
        None => Some(None),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{NameState, SendMode};
    use serde_json::json;
    use std::thread;

    /// A fake daemon on the other end of a socket pair: `script` gets each request
    /// and returns the lines to answer with.
    fn fake(
        script: impl Fn(&serde_json::Value) -> Vec<String> + Send + 'static,
    ) -> (Client, thread::JoinHandle<()>) {
        let (a, b) = UnixStream::pair().unwrap();
        let h = thread::spawn(move || {
            let mut w = b.try_clone().unwrap();
            for line in BufReader::new(b).lines() {
                let Ok(line) = line else { break };
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                for out in script(&v) {
                    if w.write_all(out.as_bytes()).is_err() || w.write_all(b"\n").is_err() {
                        return;
                    }
                }
            }
        });
        (Client::from_unix(a).unwrap(), h)
    }

    fn ok(v: &serde_json::Value, result: serde_json::Value) -> String {
        json!({"id": v["id"], "ok": true, "result": result}).to_string()
    }

    fn overflow(n: u64) -> String {
        json!({"event": "overflow", "dropped": n}).to_string()
    }

    #[test]
    fn hello_and_register() {
        let (mut c, _h) = fake(|v| match v["op"].as_str().unwrap() {
            "hello" => {
                assert!(v["client"].as_str().unwrap().starts_with("nbdgm-client/"));
                vec![ok(
                    v,
                    json!({"server":"nbdgm","version":"0.1.0","protocol":1,
                           "interfaces":[{"address":"198.51.100.10"}]}),
                )]
            }
            "register" => vec![ok(
                v,
                json!({"name": v["name"], "group": v["group"], "state": "registered"}),
            )],
            _ => vec![],
        });
        let h = c.hello().unwrap();
        assert_eq!(h.server, "nbdgm");
        assert_eq!(h.protocol, 1);
        assert_eq!(h.interfaces[0].address.to_string(), "198.51.100.10");
        let r = c.register("FOO<20>", false).unwrap();
        assert_eq!(r.state, NameState::Registered);
        assert_eq!(r.name, "FOO<20>");
    }

    #[test]
    fn hello_asks_for_an_encoding_and_checks_it_was_taken() {
        let hello = json!({"server":"nbdgm","version":"0.1.0","protocol":1});
        let echo = hello.clone();
        let (mut c, _h) = fake(move |v| {
            let mut r = echo.clone();
            if let Some(e) = v.get("encoding") {
                r["encoding"] = e.clone();
            }
            vec![ok(v, r)]
        });
        c.hello_encoding(EventEncoding::Base64).unwrap();
        assert_eq!(c.hello_with(None, None).unwrap().server, "nbdgm");
        // A daemon that ignores "encoding" (older than encodings) is an error.
        let (mut old, _h) = fake(move |v| vec![ok(v, hello.clone())]);
        match old.hello_encoding(EventEncoding::Base64) {
            Err(Error::Protocol(m)) => assert!(m.contains("base64"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_error_and_ids() {
        let (mut c, _h) = fake(|v| {
            vec![
                // A stale answer with another id is skipped.
                json!({"id": 999, "ok": true, "result": {}}).to_string(),
                json!({"id": v["id"], "ok": false,
                       "error": {"code": "not_found", "message": "no such name"}})
                .to_string(),
            ]
        });
        match c.release("FOO<00>") {
            Err(Error::Server { code, message }) => {
                assert_eq!(code, ErrorCode::NotFound);
                assert_eq!(message, "no such name");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn events_are_buffered_while_waiting() {
        let (mut c, _h) = fake(|v| match v["op"].as_str().unwrap() {
            "subscribe" => vec![
                overflow(1),
                overflow(2),
                overflow(3),
                ok(v, json!({"subscription": 5})),
            ],
            "send" => {
                assert_eq!(v["mode"], "group");
                assert_eq!(v["data_hex"], "6869");
                vec![ok(
                    v,
                    json!({"to": "198.51.100.255:138", "fragments": 1, "bytes": 2}),
                )]
            }
            _ => vec![],
        });
        c.set_event_buffer(2);
        assert_eq!(c.subscribe(Subscription::default()).unwrap(), 5);
        assert_eq!(c.events_dropped(), 1);
        let r = c
            .send(SendArgs::new("TESTGROUP<1d>", SendMode::Group, b"hi"))
            .unwrap();
        assert_eq!(r.fragments, 1);
        assert_eq!(
            c.next_event(Some(Duration::ZERO)).unwrap(),
            Some(Event::Overflow { dropped: 1 })
        );
        assert_eq!(
            c.next_event(None).unwrap(),
            Some(Event::Overflow { dropped: 2 })
        );
        assert_eq!(c.next_event(Some(Duration::from_millis(20))).unwrap(), None);
    }

    #[test]
    fn timeout_then_closed() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut c = Client::from_unix(a).unwrap();
        c.set_timeout(Duration::from_millis(50)).unwrap();
        assert!(matches!(c.names(), Err(Error::Timeout)));
        assert_eq!(c.next_event(Some(Duration::from_millis(10))).unwrap(), None);
        // Half a line, then a timeout, then the rest: the line survives.
        let mut w = b.try_clone().unwrap();
        w.write_all(br#"{"event":"overflow","#).unwrap();
        assert_eq!(c.next_event(Some(Duration::from_millis(10))).unwrap(), None);
        w.write_all(b"\"dropped\":4}\n").unwrap();
        assert_eq!(
            c.next_event(Some(Duration::from_secs(5))).unwrap(),
            Some(Event::Overflow { dropped: 4 })
        );
        drop(w);
        drop(b);
        assert!(matches!(c.next_event(None), Err(Error::Closed)));
        assert!(matches!(c.stats(), Err(Error::Closed)));
    }

    #[test]
    fn bad_line_is_protocol_error() {
        let (mut c, _h) = fake(|_| vec!["not json".into()]);
        assert!(matches!(c.cache(), Err(Error::Protocol(_))));
        let (mut c, _h) = fake(|v| vec![ok(v, json!({"unexpected": true}))]);
        assert!(matches!(c.names(), Err(Error::Protocol(_))));
    }

    #[test]
    fn oversize_line_is_protocol_error() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut c = Client::from_unix(a).unwrap();
        let h = thread::spawn(move || {
            let mut b = b;
            let _ = b.write_all(&vec![b'x'; MAX_SERVER_LINE + 10]);
            thread::sleep(Duration::from_millis(200));
        });
        assert!(matches!(
            c.next_event(Some(Duration::from_secs(5))),
            Err(Error::Protocol(_))
        ));
        h.join().unwrap();
    }

    #[test]
    fn default_socket() {
        // Only read here: other tests do not set the variable.
        let p = default_socket_path();
        if std::env::var_os(SOCKET_ENV).is_none() {
            assert_eq!(p, PathBuf::from(DEFAULT_SOCKET));
        }
    }

    #[test]
    fn tcp_connect() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            w.write_all(ok(&v, json!({"a": 1})).as_bytes()).unwrap();
            w.write_all(b"\n").unwrap();
        });
        let mut c = Client::connect_tcp(addr).unwrap();
        assert_eq!(c.stats().unwrap(), json!({"a": 1}));
        h.join().unwrap();
    }
}
