//! Alerts as syslog messages: RFC 5424 format (§6), sent over UDP (RFC 5426, one message
//! per datagram), TCP (RFC 6587 §3.4.1 octet counting) or a local datagram socket
//! (`/dev/log`).
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [nbdgm@32473 ...] BOM MSG`:
//! - PRI: facility (default 4, `auth`, "security/authorization messages", as Snort's
//!   syslog output) × 8 + severity: High → 2 (crit), Medium → 4 (warning), Low → 5
//!   (notice).
//! - TIMESTAMP: the alert's capture time (UTC, microseconds); MSGID: the signature slug.
//! - SD-ID `nbdgm@32473`: 32473 is the example enterprise number of RFC 5612 (no number
//!   is registered for nbdgm). Parameters: `sid rev gid severity category src dst frame`,
//!   then the evidence (at most [`MAX_EVIDENCE_PARAMS`], values cut to
//!   [`MAX_VALUE_CHARS`] characters). PARAM-VALUEs are escaped by
//!   `nbdgm_wire::text::escape` (controls, bidi) and then by §6.3.3 (`"`, `\`, `]`).
//! - MSG: BOM and UTF-8 text, network strings escaped.
//!
//! Header fields hold only PRINTUSASCII (others become `_`) and are cut to their §6
//! lengths. A message longer than the transport's limit loses its evidence parameters,
//! then its MSG tail (at a character boundary). Sending never blocks longer than
//! [`SyslogOptions::timeout`]; failures are counted ([`SyslogStats`]), never fatal.

use crate::alert::{Alert, Severity};
use nbdgm_wire::text::escape;
use serde_json::Value;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The SD-ID of the alert's structured data.
pub const SD_ID: &str = "nbdgm@32473";
/// Evidence parameters at most in the structured data.
pub const MAX_EVIDENCE_PARAMS: usize = 16;
/// Characters at most of one parameter value (before escaping).
pub const MAX_VALUE_CHARS: usize = 200;
/// Largest message over UDP (RFC 5426 §3.2: receivers SHOULD take 2048 octets).
pub const UDP_MAX: usize = 2048;
/// Largest message over TCP and local sockets.
pub const STREAM_MAX: usize = 8192;
/// How long a lost TCP connection is left alone before the next try.
pub const RECONNECT_AFTER: Duration = Duration::from_secs(2);
/// The default target of `--syslog` without a value.
pub const DEFAULT_TARGET: &str = "unix:///dev/log";

/// Syslog severity (RFC 5424 §6.2.1, table 2) of an alert severity.
pub fn severity_code(s: Severity) -> u8 {
    match s {
        Severity::High => 2,
        Severity::Medium => 4,
        Severity::Low => 5,
    }
}

/// A facility number (0-23) from its name (`auth`, `authpriv`, `daemon`, `user`,
/// `security`, `local0`-`local7`) or number.
pub fn parse_facility(s: &str) -> Result<u8, String> {
    let n = match s {
        "user" => 1,
        "daemon" => 3,
        "auth" | "security" => 4,
        "authpriv" => 10,
        "log-audit" => 13,
        "log-alert" => 14,
        _ => match s.strip_prefix("local").and_then(|d| d.parse::<u8>().ok()) {
            Some(d) if d <= 7 => 16 + d,
            _ => match s.parse::<u8>() {
                Ok(n) if n <= 23 => n,
                _ => {
                    return Err(format!(
                        "unknown syslog facility {:?} (auth, authpriv, daemon, user, local0-local7 or 0-23)",
                        escape(s)
                    ))
                }
            },
        },
    };
    Ok(n)
}

/// Fixed header fields and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogOptions {
    /// 0-23; default 4 (auth).
    pub facility: u8,
    /// HOSTNAME; default this host's name.
    pub hostname: String,
    /// APP-NAME; default `nbdgm-watch`.
    pub app_name: String,
    /// PROCID; default this process id.
    pub procid: String,
    /// Longest a send may block (connect, write).
    pub timeout: Duration,
}

impl Default for SyslogOptions {
    fn default() -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        SyslogOptions {
            facility: 4,
            hostname,
            app_name: "nbdgm-watch".to_owned(),
            procid: std::process::id().to_string(),
            timeout: Duration::from_millis(500),
        }
    }
}

/// A header field (§6): PRINTUSASCII only, at most `max` octets, `-` when empty.
fn header_field(s: &str, max: usize) -> String {
    let f: String = s
        .chars()
        .take(max)
        .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
        .collect();
    if f.is_empty() {
        "-".to_owned()
    } else {
        f
    }
}

/// An SD-NAME (§6.3.3): PRINTUSASCII except `=`, SP, `]`, `"`; 1-32 octets.
fn sd_name(s: &str) -> String {
    let n: String = s
        .chars()
        .filter(|c| ('!'..='~').contains(c) && !matches!(c, '=' | ']' | '"'))
        .take(32)
        .collect();
    if n.is_empty() {
        "_".to_owned()
    } else {
        n
    }
}

/// A PARAM-VALUE: cut, escaped for logs, then §6.3.3 (`"`, `\`, `]` get a backslash).
fn param_value(s: &str) -> String {
    let cut: String = s.chars().take(MAX_VALUE_CHARS).collect();
    let mut out = String::with_capacity(cut.len() + 8);
    for c in escape(&cut).chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An evidence value as text: strings as they are, the rest as compact JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (§6.2.3, RFC 3339 in UTC), or `-` outside years 0-9999.
pub fn timestamp(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    if !(0..=9999).contains(&y) {
        return "-".to_owned();
    }
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        nanos.min(999_999_999) / 1000
    )
}

/// The structured data element; `evidence` adds the evidence parameters.
fn structured_data(a: &Alert, evidence: bool) -> String {
    let sig = a.signature;
    let mut sd = format!(
        "[{SD_ID} sid=\"{}\" rev=\"{}\" gid=\"{}\" severity=\"{}\" category=\"{}\" src=\"{}\" dst=\"{}\" frame=\"{}\"",
        sig.id,
        sig.rev,
        crate::signature::GID,
        a.severity.as_str(),
        param_value(sig.category),
        a.src,
        a.dst,
        a.frame
    );
    if evidence {
        for (k, v) in a.evidence.iter().take(MAX_EVIDENCE_PARAMS) {
            sd.push_str(&format!(
                " {}=\"{}\"",
                sd_name(k),
                param_value(&value_text(v))
            ));
        }
    }
    sd.push(']');
    sd
}

/// The MSG text (without BOM): signature text, addresses, evidence; escaped.
pub fn message_text(a: &Alert) -> String {
    let mut m = format!("{}: {} -> {}", a.signature.msg, a.src, a.dst);
    for (k, v) in &a.evidence {
        m.push_str(&format!(" {}={}", escape(k), escape(&value_text(v))));
    }
    m
}

/// The whole RFC 5424 message, at most `max` octets (at least the header and the core
/// structured data are kept).
pub fn format(a: &Alert, o: &SyslogOptions, max: usize) -> Vec<u8> {
    format_counted(a, o, max).0
}

/// [`format`], and whether anything was left out.
fn format_counted(a: &Alert, o: &SyslogOptions, max: usize) -> (Vec<u8>, bool) {
    let pri = u16::from(o.facility.min(23)) * 8 + u16::from(severity_code(a.severity));
    let head = format!(
        "<{pri}>1 {} {} {} {} {} ",
        timestamp(a.time.secs, a.time.nanos),
        header_field(&o.hostname, 255),
        header_field(&o.app_name, 48),
        header_field(&o.procid, 128),
        header_field(a.signature.slug, 32),
    );
    let msg = message_text(a);
    let mut sd = structured_data(a, true);
    let mut shortened = false;
    if head.len() + sd.len() + 4 > max {
        sd = structured_data(a, false);
        shortened = true;
    }
    let mut s = format!("{head}{sd} \u{feff}{msg}");
    if s.len() > max {
        let mut cut = max;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        shortened = true;
    }
    (s.into_bytes(), shortened)
}

/// Where messages go: `udp://host:port`, `tcp://host:port`, `unix:///path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Udp(String),
    Tcp(String),
    Unix(PathBuf),
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        let bad = || {
            format!(
                "{:?} is not a syslog target (udp://HOST:PORT, tcp://HOST:PORT, unix:///PATH)",
                escape(s)
            )
        };
        if let Some(r) = s.strip_prefix("udp://") {
            Ok(Target::Udp(host_port(r, 514).ok_or_else(bad)?))
        } else if let Some(r) = s.strip_prefix("tcp://") {
            Ok(Target::Tcp(host_port(r, 601).ok_or_else(bad)?))
        } else if let Some(r) = s.strip_prefix("unix://") {
            if r.starts_with('/') {
                Ok(Target::Unix(PathBuf::from(r)))
            } else {
                Err(bad())
            }
        } else {
            Err(bad())
        }
    }
}

/// `HOST[:PORT]` (IPv6 in brackets) with a default port.
fn host_port(s: &str, default: u16) -> Option<String> {
    let bare_v6 = !s.starts_with('[') && s.matches(':').count() > 1;
    if s.is_empty() || bare_v6 || s.contains(['/', '@', ' ']) {
        return None;
    }
    let has_port = match s.rfind(':') {
        Some(i) => s.starts_with('[') && s[..i].ends_with(']') || !s[..i].contains(':'),
        None => false,
    };
    Some(if has_port {
        s.to_owned()
    } else {
        format!("{s}:{default}")
    })
}

/// Counters of a [`Syslog`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyslogStats {
    /// Messages sent.
    pub sent: u64,
    /// Messages lost (send error, timeout, no connection).
    pub failed: u64,
    /// Messages shortened to the transport's limit.
    pub truncated: u64,
}

enum Transport {
    Udp(UdpSocket),
    Tcp {
        addr: SocketAddr,
        stream: Option<TcpStream>,
        retry_at: Instant,
    },
    Unix(UnixDatagram, PathBuf),
}

/// A syslog sender.
pub struct Syslog {
    opts: SyslogOptions,
    transport: Transport,
    stats: SyslogStats,
    /// The last error, escaped (for a summary at exit).
    pub last_error: Option<String>,
}

fn resolve(hp: &str) -> std::io::Result<SocketAddr> {
    hp.to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address for the host"))
}

impl Syslog {
    /// Resolves the target and opens the socket (TCP: connects, local: checks that the
    /// socket answers). Errors here are configuration errors; later ones are counted.
    pub fn open(target: &Target, opts: SyslogOptions) -> std::io::Result<Syslog> {
        let t = opts.timeout.max(Duration::from_millis(1));
        let transport = match target {
            Target::Udp(hp) => {
                let addr = resolve(hp)?;
                let any: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let s = UdpSocket::bind(any)?;
                s.connect(addr)?;
                s.set_write_timeout(Some(t))?;
                Transport::Udp(s)
            }
            Target::Tcp(hp) => {
                let addr = resolve(hp)?;
                let stream = connect_tcp(addr, t)?;
                Transport::Tcp {
                    addr,
                    stream: Some(stream),
                    retry_at: Instant::now(),
                }
            }
            Target::Unix(path) => {
                UnixDatagram::unbound()?.connect(path)?;
                let s = UnixDatagram::unbound()?;
                s.set_write_timeout(Some(t))?;
                Transport::Unix(s, path.clone())
            }
        };
        Ok(Syslog {
            opts,
            transport,
            stats: SyslogStats::default(),
            last_error: None,
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> SyslogStats {
        self.stats
    }

    /// Sends one alert; a failure is counted and remembered, never returned.
    pub fn send(&mut self, a: &Alert) {
        let max = match self.transport {
            Transport::Udp(_) => UDP_MAX,
            _ => STREAM_MAX,
        };
        let (msg, shortened) = format_counted(a, &self.opts, max);
        if shortened {
            self.stats.truncated += 1;
        }
        let r = match &mut self.transport {
            Transport::Udp(s) => s.send(&msg).map(|_| ()),
            Transport::Unix(s, p) => s.send_to(&msg, p.as_path()).map(|_| ()),
            Transport::Tcp {
                addr,
                stream,
                retry_at,
            } => send_tcp(*addr, stream, retry_at, self.opts.timeout, &msg),
        };
        match r {
            Ok(()) => self.stats.sent += 1,
            Err(e) => {
                self.stats.failed += 1;
                self.last_error = Some(escape(&e.to_string()).into_owned());
            }
        }
    }
}

fn connect_tcp(addr: SocketAddr, t: Duration) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, t)?;
    s.set_write_timeout(Some(t))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// RFC 6587 §3.4.1: `MSG-LEN SP SYSLOG-MSG`. A lost connection is dropped and tried
/// again after [`RECONNECT_AFTER`]; meanwhile messages fail at once.
fn send_tcp(
    addr: SocketAddr,
    stream: &mut Option<TcpStream>,
    retry_at: &mut Instant,
    t: Duration,
    msg: &[u8],
) -> std::io::Result<()> {
    if stream.is_none() {
        if Instant::now() < *retry_at {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "not connected (waiting to reconnect)",
            ));
        }
        match connect_tcp(addr, t.max(Duration::from_millis(1))) {
            Ok(s) => *stream = Some(s),
            Err(e) => {
                *retry_at = Instant::now() + RECONNECT_AFTER;
                return Err(e);
            }
        }
    }
    let mut frame = format!("{} ", msg.len()).into_bytes();
    frame.extend_from_slice(msg);
    let r = match stream.as_mut() {
        Some(s) => s.write_all(&frame),
        None => Ok(()),
    };
    if r.is_err() {
        // A half-written frame would break the framing: start over on a new connection.
        *stream = None;
        *retry_at = Instant::now() + RECONNECT_AFTER;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            timestamp(1_700_000_000, 123_456_789),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(timestamp(951_782_400, 0), "2000-02-29T00:00:00.000000Z");
        assert_eq!(timestamp(-1, 0), "1969-12-31T23:59:59.000000Z");
        assert_eq!(timestamp(253_402_300_799, 0), "9999-12-31T23:59:59.000000Z");
        assert_eq!(timestamp(253_402_300_800, 0), "-");
        assert_eq!(timestamp(-62_167_219_201, 0), "-");
        assert_eq!(timestamp(i64::MAX, 999_999_999), "-");
        assert_eq!(timestamp(i64::MIN, 0), "-");
    }

    #[test]
    fn fields_and_targets() {
        assert_eq!(header_field("a b\u{e9}", 255), "a_b_");
        assert_eq!(header_field("", 48), "-");
        assert_eq!(header_field(&"x".repeat(40), 32).len(), 32);
        assert_eq!(sd_name("a=b]c\"d e"), "abcde");
        assert_eq!(param_value("a\"b\\c]d\n"), "a\\\"b\\\\\\\\c\\]d\\\\n");
        assert_eq!(parse_facility("local4"), Ok(20));
        assert_eq!(parse_facility("auth"), Ok(4));
        assert!(parse_facility("local8").is_err() && parse_facility("24").is_err());
        assert_eq!(
            "udp://127.0.0.1".parse(),
            Ok(Target::Udp("127.0.0.1:514".into()))
        );
        assert_eq!(
            "tcp://[::1]:6514".parse(),
            Ok(Target::Tcp("[::1]:6514".into()))
        );
        assert_eq!("tcp://::1".parse::<Target>().ok(), None);
        assert_eq!(DEFAULT_TARGET.parse(), Ok(Target::Unix("/dev/log".into())));
        assert!("unix://dev/log".parse::<Target>().is_err());
        assert!("http://x".parse::<Target>().is_err());
    }
}
