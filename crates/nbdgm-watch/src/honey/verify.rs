//! Optional verification of a honey responder: is SMB (TCP 445) open, and does it
//! serve a WPAD file (HTTP GET /wpad.dat on TCP 80)? Responder and Inveigh open both.
//! Plain std::net, every step bounded by the timeout; at most 4 KiB read.

use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Bytes of the HTTP answer read at most.
pub const MAX_HTTP_READ: usize = 4096;

/// A TCP port's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortState {
    /// Connected.
    Open,
    /// Refused.
    Closed,
    /// No answer within the timeout.
    Timeout,
    /// Any other error (escaped text).
    Error(String),
}

impl PortState {
    /// `open`, `closed`, `timeout` or `error: ...`.
    pub fn as_string(&self) -> String {
        match self {
            PortState::Open => "open".into(),
            PortState::Closed => "closed".into(),
            PortState::Timeout => "timeout".into(),
            PortState::Error(e) => format!("error: {e}"),
        }
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// TCP 445.
    pub smb445: PortState,
    /// HTTP on 80: `Ok(status line, escaped)` or `Err(reason)`.
    pub wpad_http: Result<String, String>,
    /// The answer (within the first 4 KiB) mentions `FindProxyForURL`.
    pub wpad_script: bool,
}

impl Verification {
    /// As alert evidence.
    pub fn to_json(&self) -> Value {
        json!({
            "smb445": self.smb445.as_string(),
            "wpad_http": match &self.wpad_http { Ok(s) => json!({"status": s}), Err(e) => json!({"error": e}) },
            "wpad_script": self.wpad_script,
        })
    }
}

fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, PortState> {
    TcpStream::connect_timeout(&addr, timeout.max(Duration::from_millis(1))).map_err(|e| {
        match e.kind() {
            ErrorKind::ConnectionRefused => PortState::Closed,
            ErrorKind::TimedOut | ErrorKind::WouldBlock => PortState::Timeout,
            _ => PortState::Error(nbdgm_wire::text::escape(&e.to_string()).into_owned()),
        }
    })
}

/// Probes `responder` on TCP 445 and 80 (see [`verify_ports`]).
pub fn verify(responder: IpAddr, timeout: Duration) -> Verification {
    verify_ports(responder, 445, 80, timeout)
}

/// Probes `responder`: a TCP connect to `smb_port`, then `GET /wpad.dat` on `http_port`
/// reading at most [`MAX_HTTP_READ`] bytes. Each of the two steps takes at most about
/// `timeout`.
pub fn verify_ports(
    responder: IpAddr,
    smb_port: u16,
    http_port: u16,
    timeout: Duration,
) -> Verification {
    let smb445 = match connect(SocketAddr::new(responder, smb_port), timeout) {
        Ok(_) => PortState::Open,
        Err(s) => s,
    };
    let (wpad_http, wpad_script) = match wpad(SocketAddr::new(responder, http_port), timeout) {
        Ok(body) => {
            let line = body.split(|&b| b == b'\n').next().unwrap_or(&[]);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let script = body.windows(15).any(|w| w == b"FindProxyForURL");
            if line.is_empty() {
                (Err("empty answer".to_string()), script)
            } else {
                (Ok(nbdgm_wire::text::escape_bytes(line)), script)
            }
        }
        Err(e) => (Err(e), false),
    };
    Verification {
        smb445,
        wpad_http,
        wpad_script,
    }
}

fn wpad(addr: SocketAddr, timeout: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    let mut s = connect(addr, timeout).map_err(|s| s.as_string())?;
    let t = Some(timeout.max(Duration::from_millis(1)));
    s.set_read_timeout(t).map_err(|e| e.to_string())?;
    s.set_write_timeout(t).map_err(|e| e.to_string())?;
    let req = format!(
        "GET /wpad.dat HTTP/1.1\r\nHost: {}\r\nUser-Agent: WinHttp-Autoproxy-Service/5.1\r\nConnection: close\r\n\r\n",
        match addr.ip() {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        }
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; MAX_HTTP_READ];
    let mut n = 0;
    while n < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match s.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                if n == 0 {
                    return Err(e.to_string());
                }
                break;
            }
        }
    }
    if n == 0 {
        return Err("no answer".into());
    }
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};
    use std::thread;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn closed_port() -> u16 {
        // Bind, note the port, close: nothing listens there now.
        TcpListener::bind((LO, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn open_smb_and_wpad_server() {
        let smb = TcpListener::bind((LO, 0)).unwrap();
        let http = TcpListener::bind((LO, 0)).unwrap();
        let (sp, hp) = (
            smb.local_addr().unwrap().port(),
            http.local_addr().unwrap().port(),
        );
        let h = thread::spawn(move || {
            let (mut c, _) = http.accept().unwrap();
            let mut req = [0u8; 512];
            let n = c.read(&mut req).unwrap();
            c.write_all(b"HTTP/1.1 200 OK\x1b[31m\r\nContent-Type: application/x-ns-proxy-autoconfig\r\n\r\nfunction FindProxyForURL(url, host){return \"PROXY 198.51.100.9:3141\";}").unwrap();
            String::from_utf8_lossy(&req[..n]).into_owned()
        });
        let v = verify_ports(LO, sp, hp, Duration::from_secs(2));
        let req = h.join().unwrap();
        assert!(req.starts_with("GET /wpad.dat HTTP/1.1\r\n"), "{req}");
        assert_eq!(v.smb445, PortState::Open);
        let status = v.wpad_http.clone().unwrap();
        assert!(status.starts_with("HTTP/1.1 200 OK"), "{status}");
        assert!(!status.contains('\x1b'), "escaped: {status}");
        assert!(v.wpad_script);
        assert_eq!(v.to_json()["smb445"], "open");
        drop(smb);
    }

    #[test]
    fn closed_ports() {
        let v = verify_ports(LO, closed_port(), closed_port(), Duration::from_secs(1));
        assert_eq!(v.smb445, PortState::Closed);
        assert_eq!(v.wpad_http, Err("closed".into()));
        assert!(!v.wpad_script);
    }

    #[test]
    fn silent_http_server_times_out_and_big_answer_is_bounded() {
        let http = TcpListener::bind((LO, 0)).unwrap();
        let hp = http.local_addr().unwrap().port();
        let h = thread::spawn(move || {
            let (c, _) = http.accept().unwrap();
            thread::sleep(Duration::from_millis(700));
            drop(c);
            let (mut c, _) = http.accept().unwrap();
            let _ = c.write_all(&vec![b'A'; 100_000]);
        });
        let t0 = Instant::now();
        let v = verify_ports(LO, closed_port(), hp, Duration::from_millis(300));
        assert!(
            t0.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(v.wpad_http, Err("no answer".into()));
        let v = verify_ports(LO, closed_port(), hp, Duration::from_secs(2));
        assert_eq!(v.wpad_http.unwrap().len(), MAX_HTTP_READ);
        h.join().unwrap();
    }
}
