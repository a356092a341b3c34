//! WinPopup messages received on `\MAILSLOT\MESSNGR` (`nbdgm_wire::messenger`): logged, and
//! handed to an optional exec hook that gets arguments only, never a shell. (API
//! subscribers get the datagrams through the hub like any other mailslot.)
//!
//! Addressing. No Microsoft specification describes the MESSNGR mailslot (see
//! `nbdgm_wire::messenger`). What the spec material does say: the messenger service name
//! is `<computer><03>`, unique (DIGEST §1.1 name table; the MS-NBTE §6 Appendix A name
//! table lists `<computername>[03]` and `<username>[03]` as "Messenger Service"); a
//! mailslot write to a unique name travels as DIRECT_UNIQUE and to a group name as
//! DIRECT_GROUP (DIGEST §5, MS-MAIL <13>); and every workstation registers `<domain>[00]` as a group "to receive
//! NetBIOS datagrams directed to all computers in the domain" (MS-MAIL §3.2.3). So
//! `nbdgm message send NAME` writes to `NAME<03>` DIRECT_UNIQUE, and `--to-group` writes
//! to `NAME<00>` DIRECT_GROUP (the workgroup). A node with `node.messenger = true` holds
//! `NAME<03>` and `WORKGROUP<00>`, so both arrive here with `for_us` set. The
//! Win95-WinPopup-to-`<WORKGROUP><03>` variant is not confirmed by any source we hold and is
//! not sent; such datagrams are only handled when a node holds that name.
//!
//! The hook contract (docs/message.md): `exec = [PROGRAM, FIXED_ARGS...]` is started
//! directly (`execve`, no shell), with
//! `--from SENDER --to RECIPIENT --address IP --source NAME<xx> --destination NAME<xx>
//! --interface IP --text TEXT` appended as separate arguments, byte for byte (Latin-1
//! decoded, passed as UTF-8), an empty environment except `PATH` and `LANG`, stdin/stdout/
//! stderr on /dev/null, and no capability: the ambient, inheritable and bounding sets are
//! cleared and no_new_privs set before exec (`privilege::confine_hook`),
//! so the hook never holds the unit's CAP_NET_BIND_SERVICE nor root's capabilities. It is
//! killed after `exec_timeout_s`.

use crate::ratelimit::LogLimiter;
use nbdgm_node::Delivery;
use nbdgm_wire::messenger::Message;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// `[messenger]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessengerConfig {
    /// Log each received message at info (sender, recipient, address, escaped text).
    pub log: bool,
    /// Program and fixed arguments of the hook; the message is appended as arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<String>>,
    /// The hook is killed after this many seconds.
    pub exec_timeout_s: u64,
    /// Hooks running at once at most (per interface); more are dropped and counted.
    pub max_concurrent_exec: usize,
    /// Hooks started per minute at most (per interface); more are dropped and counted.
    pub exec_per_minute: u32,
    /// Longer texts are cut to this many bytes (at a character boundary) and counted.
    pub max_text_bytes: usize,
}

impl Default for MessengerConfig {
    fn default() -> Self {
        MessengerConfig {
            log: true,
            exec: None,
            exec_timeout_s: 10,
            max_concurrent_exec: 4,
            exec_per_minute: 60,
            max_text_bytes: 1024,
        }
    }
}

/// Why `[messenger]` settings are refused ([`MessengerConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessengerConfigError {
    #[error("messenger.exec: give the program, then its fixed arguments")]
    NoProgram,
    #[error("messenger.exec: {0:?} must be an absolute path (no shell, no $PATH lookup)")]
    RelativeProgram(String),
    #[error("messenger.exec: an argument contains NUL")]
    Nul,
    #[error("messenger.exec_timeout_s: 1 to 3600")]
    ExecTimeout,
    #[error("messenger.max_concurrent_exec: 1 to 256")]
    MaxConcurrentExec,
    #[error("messenger.max_text_bytes: 1 to 65535")]
    MaxTextBytes,
}

impl MessengerConfig {
    /// Check the values (for the configuration loader).
    pub fn validate(&self) -> Result<(), MessengerConfigError> {
        if let Some(exec) = &self.exec {
            match exec.first() {
                None => return Err(MessengerConfigError::NoProgram),
                Some(p) if !p.starts_with('/') => {
                    return Err(MessengerConfigError::RelativeProgram(p.clone()))
                }
                _ => {}
            }
            if exec.iter().any(|a| a.contains('\0')) {
                return Err(MessengerConfigError::Nul);
            }
        }
        if self.exec_timeout_s == 0 || self.exec_timeout_s > 3600 {
            return Err(MessengerConfigError::ExecTimeout);
        }
        if self.max_concurrent_exec == 0 || self.max_concurrent_exec > 256 {
            return Err(MessengerConfigError::MaxConcurrentExec);
        }
        if self.max_text_bytes == 0 || self.max_text_bytes > 65_535 {
            return Err(MessengerConfigError::MaxTextBytes);
        }
        Ok(())
    }
}

/// Counters of one worker's messenger (`stats` → `messenger`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MessengerStats {
    /// Well-formed messages for our names.
    pub received: u64,
    /// MESSNGR datagrams for us that did not decode.
    pub malformed: u64,
    /// MESSNGR datagrams not addressed to our names (ignored).
    pub not_for_us: u64,
    /// Texts cut to `max_text_bytes`.
    pub text_truncated: u64,
    pub hook_started: u64,
    /// Spawn failures and hooks that exited non-zero or by a signal (timeouts excluded).
    pub hook_failed: u64,
    pub hook_dropped_busy: u64,
    pub hook_dropped_rate: u64,
    /// Hooks killed after `exec_timeout_s`.
    pub hook_timeout: u64,
    /// Hooks running now.
    pub hooks_running: u64,
    /// Log lines about malformed messages suppressed by the rate limit.
    pub log_suppressed: u64,
}

#[derive(Debug, Default)]
struct Shared {
    running: AtomicUsize,
    failed: AtomicU64,
    timeout: AtomicU64,
}

/// A decoded message as the log and the hook see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub sender: String,
    pub recipient: String,
    pub text: String,
    pub truncated: bool,
    pub from: Ipv4Addr,
    pub source: String,
    pub destination: String,
    pub interface: Ipv4Addr,
}

/// Handles received WinPopup messages for one worker.
pub struct Messenger {
    config: MessengerConfig,
    stats: MessengerStats,
    shared: Arc<Shared>,
    starts: VecDeque<Instant>,
    log_limiter: LogLimiter,
}

impl Messenger {
    pub fn new(config: &MessengerConfig) -> Self {
        let mut m = Messenger {
            config: MessengerConfig::default(),
            stats: MessengerStats::default(),
            shared: Arc::new(Shared::default()),
            starts: VecDeque::new(),
            log_limiter: LogLimiter::new(5),
        };
        m.set_config(config);
        m
    }

    /// Replace the settings (SIGHUP). Running hooks are left to finish.
    pub fn set_config(&mut self, config: &MessengerConfig) {
        if let Err(e) = config.validate() {
            warn!(error = %e, "messenger: invalid settings, exec hook disabled");
            self.config = MessengerConfig {
                exec: None,
                ..config.clone()
            };
            self.config.exec_timeout_s = self.config.exec_timeout_s.clamp(1, 3600);
            self.config.max_concurrent_exec = self.config.max_concurrent_exec.clamp(1, 256);
            self.config.max_text_bytes = self.config.max_text_bytes.clamp(1, 65_535);
        } else {
            self.config = config.clone();
        }
    }

    /// The counters.
    pub fn stats(&self) -> MessengerStats {
        let mut s = self.stats.clone();
        s.hook_failed += self.shared.failed.load(Ordering::Relaxed);
        s.hook_timeout = self.shared.timeout.load(Ordering::Relaxed);
        s.hooks_running = self.shared.running.load(Ordering::Relaxed) as u64;
        s.log_suppressed = self.log_limiter.suppressed();
        s
    }

    /// A delivered datagram whose mailslot is `\MAILSLOT\MESSNGR` (any destination;
    /// only those for our names are handled: `d.for_us`).
    pub fn on_delivery(&mut self, interface: Ipv4Addr, d: &Delivery) {
        self.handle(interface, d, Instant::now());
    }

    fn handle(&mut self, interface: Ipv4Addr, d: &Delivery, now: Instant) {
        if !d.for_us {
            self.stats.not_for_us += 1;
            return;
        }
        // The node parsed the SMB header once: take the mailslot data it cut out.
        let msg = match d
            .mailslot_data()
            .ok_or_else(|| "not an SMB mailslot write".to_owned())
            .and_then(|data| Message::parse(data).map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                if let Some(suppressed) = self.log_limiter.allow(now) {
                    warn!(
                        interface = %interface,
                        from = %d.from,
                        source = %escape(&d.source.to_string()),
                        error = %escape(&e),
                        suppressed,
                        "malformed WinPopup message"
                    );
                }
                return;
            }
        };
        self.stats.received += 1;
        let (text, truncated) = truncate(&msg.text, self.config.max_text_bytes);
        if truncated {
            self.stats.text_truncated += 1;
        }
        let r = Received {
            sender: msg.sender,
            recipient: msg.recipient,
            text: text.to_owned(),
            truncated,
            from: *d.from.ip(),
            source: d.source.to_string(),
            destination: d.destination.to_string(),
            interface,
        };
        if self.config.log {
            info!(
                interface = %interface,
                from = %d.from,
                sender = %escape(&r.sender),
                recipient = %escape(&r.recipient),
                destination = %escape(&r.destination),
                text_len = msg.text.len(),
                truncated,
                text = %escape(&r.text),
                "WinPopup message"
            );
        }
        if let Some(exec) = self.config.exec.clone() {
            self.run_hook(&exec, &r, now);
        }
    }

    fn run_hook(&mut self, exec: &[String], r: &Received, now: Instant) {
        if self.shared.running.load(Ordering::Relaxed) >= self.config.max_concurrent_exec {
            self.stats.hook_dropped_busy += 1;
            return;
        }
        let window = Duration::from_secs(60);
        while self
            .starts
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.starts.pop_front();
        }
        if self.starts.len() >= self.config.exec_per_minute as usize {
            self.stats.hook_dropped_rate += 1;
            return;
        }
        let argv = hook_argv(exec, r);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        crate::privilege::confine_hook(&mut cmd);
        match cmd.spawn() {
            Ok(child) => {
                self.starts.push_back(now);
                self.stats.hook_started += 1;
                self.shared.running.fetch_add(1, Ordering::Relaxed);
                let shared = self.shared.clone();
                let timeout = Duration::from_secs(self.config.exec_timeout_s);
                let program = argv[0].clone();
                let spawned = std::thread::Builder::new()
                    .name("nbdgm-msg-hook".into())
                    .spawn(move || reap(child, timeout, &shared, &program));
                if let Err(e) = spawned {
                    // The child runs on unreaped; count it as failed (rare: no threads).
                    self.shared.running.fetch_sub(1, Ordering::Relaxed);
                    self.shared.failed.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "messenger: cannot start the hook reaper");
                }
            }
            Err(e) => {
                self.stats.hook_failed += 1;
                if self.log_limiter.allow(now).is_some() {
                    warn!(program = %escape(&argv[0]), error = %e, "messenger: cannot start the exec hook");
                }
            }
        }
    }
}

/// Wait for the hook (bounded by `timeout`), kill it after that; runs on its own thread so
/// the worker never blocks.
fn reap(mut child: Child, timeout: Duration, shared: &Shared, program: &str) {
    let until = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                    warn!(program = %escape(program), %status, "messenger: exec hook failed");
                }
                break;
            }
            Ok(None) if Instant::now() >= until => {
                let _ = child.kill();
                let _ = child.wait();
                shared.timeout.fetch_add(1, Ordering::Relaxed);
                warn!(program = %escape(program), timeout_s = timeout.as_secs(), "messenger: exec hook killed after its timeout");
                break;
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                shared.failed.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    shared.running.fetch_sub(1, Ordering::Relaxed);
}

/// The argument vector of the hook: `exec` as configured, then the message, every value
/// one argument, verbatim.
pub fn hook_argv(exec: &[String], r: &Received) -> Vec<String> {
    let mut v: Vec<String> = exec.to_vec();
    for (k, val) in [
        ("--from", r.sender.clone()),
        ("--to", r.recipient.clone()),
        ("--address", r.from.to_string()),
        ("--source", r.source.clone()),
        ("--destination", r.destination.clone()),
        ("--interface", r.interface.to_string()),
    ] {
        v.push(k.into());
        v.push(val);
    }
    if r.truncated {
        v.push("--truncated".into());
    }
    v.push("--text".into());
    v.push(r.text.clone());
    v
}

/// `s` cut to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// Text safe for one log line (the project's one escaping function,
/// [`nbdgm_wire::text::escape`]).
pub fn escape(s: &str) -> String {
    nbdgm_wire::text::escape(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_node::Name;
    use nbdgm_wire::datagram::MsgType;
    use nbdgm_wire::mailslot::MailslotWrite;
    use std::net::SocketAddrV4;

    fn delivery(data: Vec<u8>, for_us: bool) -> Delivery {
        let from = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 20), 138);
        Delivery {
            from,
            header_source: from,
            msg_type: MsgType::DirectUnique,
            source: Name::new("FRED", 0).unwrap(),
            destination: Name::new("BARNEY", 3).unwrap(),
            broadcast: false,
            for_us,
            fragments: 1,
            fragment_layout: nbdgm_node::FragmentLayout::Unfragmented,
            mailslot: Some(nbdgm_wire::mailslot::MESSNGR.into()),
            mailslot_data: Delivery::parse_mailslot(&data).1,
            data: data.into(),
            local_copy: None,
        }
    }

    fn smb(sender: &str, recipient: &str, text: &str) -> Vec<u8> {
        let m = Message::new(sender, recipient, text).to_bytes().unwrap();
        MailslotWrite::new(nbdgm_wire::mailslot::MESSNGR, m)
            .to_bytes()
            .unwrap()
    }

    const HOSTILE: &str = "a;b $(touch /tmp/pwned) `id` 'q' \"dq\" \\ |& >x\r\nline2\n-rf *";

    #[test]
    fn config_defaults_and_parsing() {
        let c: MessengerConfig = toml::from_str("").unwrap();
        assert_eq!(c, MessengerConfig::default());
        assert!(c.log && c.exec.is_none());
        let c: MessengerConfig = toml::from_str(
            "log = false\nexec = [\"/usr/local/bin/popup\", \"--fixed\"]\nexec_timeout_s = 3\n\
             max_concurrent_exec = 2\nexec_per_minute = 7\nmax_text_bytes = 100\n",
        )
        .unwrap();
        assert!(!c.log);
        assert_eq!(
            c.exec.as_deref().unwrap(),
            ["/usr/local/bin/popup", "--fixed"]
        );
        assert_eq!(
            (
                c.exec_timeout_s,
                c.max_concurrent_exec,
                c.exec_per_minute,
                c.max_text_bytes
            ),
            (3, 2, 7, 100)
        );
        c.validate().unwrap();
        assert!(toml::from_str::<MessengerConfig>("shell = true").is_err());
        let bad = |s: &str| toml::from_str::<MessengerConfig>(s).unwrap().validate();
        assert!(bad("exec = []").is_err());
        assert_eq!(
            bad("exec = [\"popup\"]").map_err(|e| e.to_string()),
            Err(
                r#"messenger.exec: "popup" must be an absolute path (no shell, no $PATH lookup)"#
                    .into()
            ),
            "relative program"
        );
        assert!(bad("exec_timeout_s = 0").is_err());
        assert!(bad("max_concurrent_exec = 0").is_err());
        assert!(bad("max_text_bytes = 0").is_err());
        // The serialized form parses back.
        let back: MessengerConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn invalid_config_disables_the_hook() {
        let m = Messenger::new(&MessengerConfig {
            exec: Some(vec!["sh".into(), "-c".into(), "x".into()]),
            ..MessengerConfig::default()
        });
        assert!(m.config.exec.is_none());
    }

    #[test]
    fn argv_is_verbatim_without_a_shell() {
        let r = Received {
            sender: "EVIL;rm -rf /".into(),
            recipient: "$(reboot)".into(),
            text: HOSTILE.into(),
            truncated: false,
            from: Ipv4Addr::new(198, 51, 100, 20),
            source: "FRED<00>".into(),
            destination: "BARNEY<03>".into(),
            interface: Ipv4Addr::new(198, 51, 100, 30),
        };
        let argv = hook_argv(&["/opt/hook".into(), "--fixed".into()], &r);
        assert_eq!(
            argv,
            [
                "/opt/hook",
                "--fixed",
                "--from",
                "EVIL;rm -rf /",
                "--to",
                "$(reboot)",
                "--address",
                "198.51.100.20",
                "--source",
                "FRED<00>",
                "--destination",
                "BARNEY<03>",
                "--interface",
                "198.51.100.30",
                "--text",
                HOSTILE,
            ]
        );
    }

    #[test]
    fn hook_runs_with_verbatim_arguments() {
        let dir = std::env::temp_dir().join(format!("nbdgm-msgr-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("args");
        // /bin/sh is the hook here, started by execve with our arguments; `$@` is
        // expanded by the hook, never re-parsed.
        let mut m = Messenger::new(&MessengerConfig {
            exec: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                "for a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$0\"".into(),
                out.display().to_string(),
            ]),
            ..MessengerConfig::default()
        });
        m.on_delivery(
            Ipv4Addr::new(198, 51, 100, 30),
            &delivery(smb("EVIL;$(id)", "BARNEY", HOSTILE), true),
        );
        let until = Instant::now() + Duration::from_secs(10);
        while m.stats().hooks_running > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let got = std::fs::read(&out).unwrap();
        let args: Vec<&[u8]> = got.split(|b| *b == 0).filter(|a| !a.is_empty()).collect();
        assert_eq!(args[0], b"--from");
        assert_eq!(args[1], b"EVIL;$(id)");
        assert_eq!(args.last().unwrap(), &HOSTILE.as_bytes());
        let s = m.stats();
        assert_eq!((s.received, s.hook_started, s.hook_failed), (1, 1, 0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn caps_and_counters() {
        let sleeper = MessengerConfig {
            exec: Some(vec!["/bin/sh".into(), "-c".into(), "exec sleep 30".into()]),
            exec_timeout_s: 1,
            max_concurrent_exec: 2,
            exec_per_minute: 3,
            max_text_bytes: 5,
            log: false,
        };
        let mut m = Messenger::new(&sleeper);
        let iface = Ipv4Addr::new(198, 51, 100, 30);
        let t0 = Instant::now();
        let d = delivery(smb("A", "B", "0123456789"), true);
        for _ in 0..3 {
            m.handle(iface, &d, t0);
        }
        let s = m.stats();
        assert_eq!(s.received, 3);
        assert_eq!(s.text_truncated, 3);
        assert_eq!(s.hook_started, 2, "{s:?}");
        assert_eq!(s.hook_dropped_busy, 1);
        // Both killed after 1 s.
        let until = Instant::now() + Duration::from_secs(10);
        while m.stats().hooks_running > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(m.stats().hook_timeout, 2, "{:?}", m.stats());
        // Rate: 3 per minute; 2 used in this window, so one more, then dropped.
        m.handle(iface, &d, t0 + Duration::from_secs(1));
        m.handle(iface, &d, t0 + Duration::from_secs(2));
        let s = m.stats();
        assert_eq!((s.hook_started, s.hook_dropped_rate), (3, 1), "{s:?}");
        // A minute later the window is free again.
        m.set_config(&MessengerConfig {
            exec: Some(vec!["/bin/true".into()]),
            ..sleeper.clone()
        });
        m.handle(iface, &d, t0 + Duration::from_secs(61));
        assert_eq!(m.stats().hook_started, 4);
        // Not for us: ignored.
        m.handle(iface, &delivery(smb("A", "B", "x"), false), t0);
        assert_eq!(m.stats().not_for_us, 1);
        assert_eq!(m.stats().received, 6);
        assert_eq!(m.stats().hook_dropped_busy, 1);
    }

    #[test]
    fn missing_program_counts_as_failed() {
        let mut m = Messenger::new(&MessengerConfig {
            exec: Some(vec!["/nonexistent/nbdgm-hook".into()]),
            ..MessengerConfig::default()
        });
        m.on_delivery(Ipv4Addr::LOCALHOST, &delivery(smb("A", "B", "x"), true));
        let s = m.stats();
        assert_eq!((s.received, s.hook_started, s.hook_failed), (1, 0, 1));
    }

    #[test]
    fn malformed_payloads_are_counted() {
        let mut m = Messenger::new(&MessengerConfig::default());
        let iface = Ipv4Addr::LOCALHOST;
        // Not an SMB at all.
        m.on_delivery(iface, &delivery(b"garbage".to_vec(), true));
        // A mailslot write whose data has no NUL after the sender.
        let w = MailslotWrite::new(nbdgm_wire::mailslot::MESSNGR, b"SENDER ONLY".to_vec());
        m.on_delivery(iface, &delivery(w.to_bytes().unwrap(), true));
        // Empty data.
        let w = MailslotWrite::new(nbdgm_wire::mailslot::MESSNGR, Vec::new());
        m.on_delivery(iface, &delivery(w.to_bytes().unwrap(), true));
        // Truncated SMB.
        let mut cut = smb("A", "B", "text");
        cut.truncate(40);
        m.on_delivery(iface, &delivery(cut, true));
        // Arbitrary bytes never panic.
        for n in 0..300u32 {
            let bytes: Vec<u8> = (0..(n % 97)).map(|i| (i * 37 + n) as u8).collect();
            m.on_delivery(iface, &delivery(bytes, true));
        }
        let s = m.stats();
        assert_eq!(s.received, 0);
        assert_eq!(s.malformed, 304);
        assert!(s.log_suppressed > 0, "{s:?}");
    }

    #[test]
    fn escaping_and_truncation() {
        assert_eq!(
            escape("a\r\nINFO forged\u{1b}[31m\"\\"),
            "a\\r\\nINFO forged\\x1b[31m\"\\\\"
        );
        assert_eq!(escape("Grüße; $(x)"), "Grüße; $(x)");
        assert_eq!(truncate("abc", 3), ("abc", false));
        assert_eq!(truncate("aéb", 2), ("a", true));
    }
}
