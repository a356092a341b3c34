//! Alert events and their sinks: webhooks (generic JSON, Slack, Discord, ntfy), email
//! (SMTP through lettre) and exec hooks (a program run directly, never through a shell,
//! with the event in its arguments and environment, killed after a timeout). Delivery is
//! retried a bounded number of times with exponential backoff; every outcome is returned
//! so the caller can store it.

use super::config::{Sink, SinkKind, WebhookFormat};
use super::engine::AlertKind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub kind: AlertKind,
    pub check: String,
    pub target: String,
    pub hostname: Option<String>,
    /// `137/udp`, or `host` / `service`.
    pub port: String,
    pub old: Option<String>,
    pub new: String,
    /// `open` / `closed` for ports.
    pub expected: Option<String>,
    /// The change's sequence number for this key.
    pub seq: i64,
    /// 0 for the change itself, n for the n-th reminder.
    pub reminder: i64,
    /// When the state was confirmed.
    pub since: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub instance: String,
}

impl AlertEvent {
    /// One line for humans.
    pub fn summary(&self) -> String {
        let who = match &self.hostname {
            Some(h) => format!("{} ({h})", self.target),
            None => self.target.clone(),
        };
        let mut s = format!(
            "{} {} {} {}: {} -> {}",
            self.kind.as_str(),
            self.check,
            who,
            self.port,
            self.old.as_deref().unwrap_or("(none)"),
            self.new
        );
        if let Some(e) = &self.expected {
            s.push_str(&format!(" (expected {e})"));
        }
        if self.reminder > 0 {
            s.push_str(&format!(" [reminder {}]", self.reminder));
        }
        s
    }

    /// A short title (ntfy, email subject).
    pub fn title(&self) -> String {
        format!(
            "nbdgm: {} {} {}",
            self.kind.as_str(),
            self.target,
            self.port
        )
    }

    /// ntfy priority: 4 (high) for bad states, 3 otherwise.
    fn bad(&self) -> bool {
        match self.kind {
            AlertKind::PortNowClosed => self.expected.as_deref() == Some("open"),
            AlertKind::PortNewOpen => self.expected.as_deref() == Some("closed"),
            _ => true,
        }
    }

    /// `NBDGM_*` environment of exec hooks.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("NBDGM_ALERT_KIND", self.kind.as_str().to_owned()),
            ("NBDGM_CHECK", self.check.clone()),
            ("NBDGM_TARGET", self.target.clone()),
            ("NBDGM_HOSTNAME", self.hostname.clone().unwrap_or_default()),
            ("NBDGM_PORT", self.port.clone()),
            ("NBDGM_OLD", self.old.clone().unwrap_or_default()),
            ("NBDGM_NEW", self.new.clone()),
            ("NBDGM_EXPECTED", self.expected.clone().unwrap_or_default()),
            ("NBDGM_SEQ", self.seq.to_string()),
            ("NBDGM_REMINDER", self.reminder.to_string()),
            ("NBDGM_AT", self.at.to_rfc3339()),
            ("NBDGM_SUMMARY", self.summary()),
            (
                "NBDGM_EVENT_JSON",
                serde_json::to_string(self).unwrap_or_default(),
            ),
        ];
        v.iter_mut()
            .map(|(k, v)| (k.to_string(), std::mem::take(v)))
            .collect()
    }

    /// Replace `{kind}`, `{check}`, `{target}`, `{hostname}`, `{port}`, `{old}`, `{new}`,
    /// `{expected}`, `{seq}`, `{reminder}`, `{at}`, `{summary}`, `{json}` in an argument.
    pub fn expand(&self, arg: &str) -> String {
        let mut s = arg.to_owned();
        for (k, v) in self.env() {
            let name = match k.as_str() {
                "NBDGM_ALERT_KIND" => "kind",
                "NBDGM_EVENT_JSON" => "json",
                other => other.trim_start_matches("NBDGM_"),
            }
            .to_ascii_lowercase();
            s = s.replace(&format!("{{{name}}}"), &v);
        }
        s
    }
}

/// A sink's request: body, content type, extra headers.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookBody {
    pub content_type: &'static str,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// The body a webhook sink posts.
pub fn webhook_body(format: WebhookFormat, e: &AlertEvent) -> WebhookBody {
    match format {
        WebhookFormat::Json => WebhookBody {
            content_type: "application/json",
            body: serde_json::to_string(e).unwrap_or_default(),
            headers: Vec::new(),
        },
        WebhookFormat::Slack => WebhookBody {
            content_type: "application/json",
            body: serde_json::json!({ "text": e.summary() }).to_string(),
            headers: Vec::new(),
        },
        WebhookFormat::Discord => WebhookBody {
            content_type: "application/json",
            body: serde_json::json!({ "content": e.summary() }).to_string(),
            headers: Vec::new(),
        },
        WebhookFormat::Ntfy => WebhookBody {
            content_type: "text/plain; charset=utf-8",
            body: e.summary(),
            headers: vec![
                ("Title".into(), e.title()),
                (
                    "Priority".into(),
                    if e.bad() { "4" } else { "3" }.to_owned(),
                ),
                (
                    "Tags".into(),
                    format!(
                        "{},{}",
                        if e.bad() {
                            "warning"
                        } else {
                            "white_check_mark"
                        },
                        e.kind.as_str().to_ascii_lowercase()
                    ),
                ),
            ],
        },
    }
}

/// The email a sink sends: subject and plain-text body.
pub fn email_text(e: &AlertEvent) -> (String, String) {
    let body = format!(
        "{}\n\ncheck:    {}\ntarget:   {}{}\nport:     {}\nold:      {}\nnew:      {}\nexpected: {}\nsince:    {}\ninstance: {}\n",
        e.summary(),
        e.check,
        e.target,
        e.hostname
            .as_ref()
            .map(|h| format!(" ({h})"))
            .unwrap_or_default(),
        e.port,
        e.old.as_deref().unwrap_or("-"),
        e.new,
        e.expected.as_deref().unwrap_or("-"),
        e.since.to_rfc3339(),
        e.instance
    );
    (e.title(), body)
}

/// Does a sink take this alert?
pub fn wants(sink: &Sink, e: &AlertEvent) -> bool {
    sink.kinds.is_empty() || sink.kinds.iter().any(|k| k == e.kind.as_str())
}

/// Deliver once (blocking).
pub fn deliver_once(sink: &Sink, e: &AlertEvent) -> Result<(), String> {
    match &sink.kind {
        SinkKind::Webhook {
            url,
            format,
            timeout,
            headers,
        } => post_webhook(url, *format, *timeout, headers, e),
        SinkKind::Email {
            server,
            port,
            starttls,
            from,
            to,
            username,
            password_env,
            timeout,
        } => send_email(
            server,
            *port,
            *starttls,
            from,
            to,
            username.as_deref(),
            password_env.as_deref(),
            *timeout,
            e,
        ),
        SinkKind::Exec {
            program,
            args,
            timeout,
        } => run_exec(program, args, *timeout, e),
    }
}

fn post_webhook(
    url: &str,
    format: WebhookFormat,
    timeout: Duration,
    headers: &BTreeMap<String, String>,
    e: &AlertEvent,
) -> Result<(), String> {
    let b = webhook_body(format, e);
    let agent = ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(0)
        .build();
    let mut req = agent
        .post(url)
        .set("Content-Type", b.content_type)
        .set("User-Agent", "nbdgm-monitor");
    for (k, v) in b.headers.iter().map(|(k, v)| (k, v)).chain(headers.iter()) {
        req = req.set(k, v);
    }
    match req.send_string(&b.body) {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, r)) => {
            let mut text = String::new();
            let _ = r.into_reader().take(300).read_to_string(&mut text);
            Err(format!("HTTP {code}: {}", text.trim()))
        }
        Err(err) => Err(err.to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
fn send_email(
    server: &str,
    port: u16,
    starttls: bool,
    from: &str,
    to: &[String],
    username: Option<&str>,
    password_env: Option<&str>,
    timeout: Duration,
    e: &AlertEvent,
) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::{Message, SmtpTransport, Transport};
    let (subject, body) = email_text(e);
    let mut m = Message::builder()
        .from(
            from.parse()
                .map_err(|err| format!("from {from:?}: {err}"))?,
        )
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for r in to {
        m = m.to(r.parse().map_err(|err| format!("to {r:?}: {err}"))?);
    }
    let msg = m.body(body).map_err(|err| err.to_string())?;
    let mut b = if starttls {
        // STARTTLS required (rustls, system-independent web PKI roots).
        SmtpTransport::starttls_relay(server).map_err(|err| format!("smtp {server}: {err}"))?
    } else {
        SmtpTransport::builder_dangerous(server)
    }
    .port(port)
    .timeout(Some(timeout));
    if let Some(user) = username {
        let pass = password_env
            .and_then(|v| std::env::var(v).ok())
            .unwrap_or_default();
        b = b.credentials(lettre::transport::smtp::authentication::Credentials::new(
            user.to_owned(),
            pass,
        ));
    }
    b.build()
        .send(&msg)
        .map(|_| ())
        .map_err(|err| format!("smtp {server}:{port}: {err}"))
}

fn run_exec(
    program: &std::path::Path,
    args: &[String],
    timeout: Duration,
    e: &AlertEvent,
) -> Result<(), String> {
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(program);
    cmd.args(args.iter().map(|a| e.expand(a)))
        .envs(e.env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|err| format!("{}: {err}", program.display()))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if status.success() {
                    return Ok(());
                }
                let mut text = String::new();
                if let Some(err) = child.stderr.take() {
                    let _ = err.take(300).read_to_string(&mut text);
                }
                return Err(format!(
                    "{} exited with {status}: {}",
                    program.display(),
                    text.trim()
                ));
            }
            Ok(None) if Instant::now() >= deadline => {
                // Kill by the child's own PID (Child::kill), then reap it.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} timed out after {timeout:?} and was killed",
                    program.display()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => return Err(err.to_string()),
        }
    }
}

/// The outcome of delivering one alert to one sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub sink: String,
    pub ok: bool,
    pub attempts: u32,
    pub error: Option<String>,
}

/// Deliver with up to `attempts` tries and exponential backoff from `backoff` (capped at
/// 60 s). `stop` ends the waits early (shutdown).
pub fn deliver(
    sink: &Sink,
    e: &AlertEvent,
    attempts: u32,
    backoff: Duration,
    stop: &dyn Fn() -> bool,
) -> Outcome {
    let mut delay = backoff;
    let mut last = None;
    let attempts = attempts.max(1);
    for n in 1..=attempts {
        match deliver_once(sink, e) {
            Ok(()) => {
                return Outcome {
                    sink: sink.name.clone(),
                    ok: true,
                    attempts: n,
                    error: None,
                }
            }
            Err(err) => {
                tracing::warn!(sink = %sink.name, attempt = n, error = %err, "alert delivery failed");
                last = Some(err);
                if n < attempts {
                    let until = Instant::now() + delay;
                    while Instant::now() < until && !stop() {
                        std::thread::sleep(Duration::from_millis(50).min(delay));
                    }
                    if stop() {
                        return Outcome {
                            sink: sink.name.clone(),
                            ok: false,
                            attempts: n,
                            error: last,
                        };
                    }
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
    Outcome {
        sink: sink.name.clone(),
        ok: false,
        attempts,
        error: last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> AlertEvent {
        AlertEvent {
            kind: AlertKind::PortNewOpen,
            check: "office".into(),
            target: "198.51.100.10".into(),
            hostname: Some("fs".into()),
            port: "138/udp".into(),
            old: Some("closed".into()),
            new: "open".into(),
            expected: Some("closed".into()),
            seq: 3,
            reminder: 0,
            since: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            instance: "a".into(),
        }
    }

    #[test]
    fn formats() {
        let e = ev();
        let j = webhook_body(WebhookFormat::Json, &e);
        let v: serde_json::Value = serde_json::from_str(&j.body).unwrap();
        assert_eq!(v["kind"], "PORT_NEW_OPEN");
        assert_eq!(v["port"], "138/udp");
        let s = webhook_body(WebhookFormat::Slack, &e);
        let v: serde_json::Value = serde_json::from_str(&s.body).unwrap();
        assert_eq!(
            v["text"],
            "PORT_NEW_OPEN office 198.51.100.10 (fs) 138/udp: closed -> open (expected closed)"
        );
        let d = webhook_body(WebhookFormat::Discord, &e);
        let v: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        assert!(v["content"].as_str().unwrap().starts_with("PORT_NEW_OPEN"));
        let n = webhook_body(WebhookFormat::Ntfy, &e);
        assert_eq!(n.content_type, "text/plain; charset=utf-8");
        assert!(n.body.starts_with("PORT_NEW_OPEN"));
        assert!(n.headers.contains(&("Priority".into(), "4".into())));
        assert!(n.headers.contains(&(
            "Title".into(),
            "nbdgm: PORT_NEW_OPEN 198.51.100.10 138/udp".into()
        )));
        let (subj, body) = email_text(&e);
        assert!(subj.contains("PORT_NEW_OPEN"));
        assert!(body.contains("expected: closed"));
        assert_eq!(
            e.expand("{kind}:{target}:{port}:{seq}"),
            "PORT_NEW_OPEN:198.51.100.10:138/udp:3"
        );
        // Expanded values are plain strings: no shell ever sees them.
        let mut bad = e.clone();
        bad.hostname = Some("$(reboot)".into());
        assert_eq!(bad.expand("{hostname}"), "$(reboot)");
    }

    #[test]
    fn exec_timeout_and_failure() {
        let sink = |program: &str, args: &[&str], ms| Sink {
            name: "x".into(),
            kind: SinkKind::Exec {
                program: program.into(),
                args: args.iter().map(|s| s.to_string()).collect(),
                timeout: Duration::from_millis(ms),
            },
            kinds: vec![],
        };
        let e = ev();
        assert!(deliver_once(&sink("/bin/true", &[], 5000), &e).is_ok());
        assert!(deliver_once(&sink("/bin/false", &[], 5000), &e).is_err());
        let t0 = Instant::now();
        let r = deliver_once(&sink("/bin/sleep", &["10"], 300), &e);
        assert!(r.unwrap_err().contains("timed out"));
        assert!(t0.elapsed() < Duration::from_secs(5));
        let o = deliver(
            &sink("/bin/false", &[], 5000),
            &e,
            3,
            Duration::from_millis(10),
            &|| false,
        );
        assert!(!o.ok);
        assert_eq!(o.attempts, 3);
    }
}
