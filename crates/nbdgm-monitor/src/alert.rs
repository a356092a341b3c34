//! Alert events and their sinks: webhooks (generic JSON, Slack, Discord, ntfy), email
//! (SMTP through lettre) and exec hooks (a program run directly, never through a shell,
//! with the event in its arguments and environment, killed after a timeout). Delivery is
//! retried a bounded number of times with exponential backoff; every outcome is returned
//! so the caller can store it.
//!
//! Hostile text (names from the network, answers of peer servers) is escaped in every
//! human-readable form ([`AlertEvent::summary`], errors) and chat mentions in it are
//! defanged ([`defang`]); webhook URLs appear only redacted ([`redact_url`]); credentials
//! never cross a plaintext SMTP connection; exec hooks get a cleared environment.

use crate::config::{EmailTls, Sink, SinkKind, WebhookFormat};
use crate::engine::AlertKind;
use chrono::{DateTime, Utc};
use nbdgm_wire::text::{escape, Escaped};
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
    /// Set for [`AlertKind::Detection`] (alerts of other tools, [`crate::external`]);
    /// absent from the JSON of the monitor's own alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<Detection>,
}

/// What a detection adds to an [`AlertEvent`]. Strings are exact (they may come from
/// the network); every human-readable form escapes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// The tool that raised it (`watch`).
    pub source: String,
    /// De-duplication key (signature, suspect, evidence key).
    pub key: String,
    /// `high`, `medium` or `low`.
    pub severity: String,
    /// One line: what was detected.
    pub title: String,
    /// One line: who and the evidence.
    pub summary: String,
    /// The tool's own record of it (EVE-like JSON).
    pub details: serde_json::Value,
}

impl AlertEvent {
    /// One line for humans, every field escaped ([`escape`]): names from the network
    /// cannot break the line or reach a terminal raw.
    pub fn summary(&self) -> String {
        if let Some(d) = &self.detection {
            return format!(
                "{} {} {}: {}",
                self.kind.as_str(),
                Escaped(&d.severity),
                Escaped(&d.title),
                Escaped(&d.summary)
            );
        }
        let who = match &self.hostname {
            Some(h) => format!("{} ({})", Escaped(&self.target), Escaped(h)),
            None => escape(&self.target).into_owned(),
        };
        let mut s = format!(
            "{} {} {} {}: {} -> {}",
            self.kind.as_str(),
            Escaped(&self.check),
            who,
            Escaped(&self.port),
            Escaped(self.old.as_deref().unwrap_or("(none)")),
            Escaped(&self.new)
        );
        if let Some(e) = &self.expected {
            s.push_str(&format!(" (expected {})", Escaped(e)));
        }
        if self.reminder > 0 {
            s.push_str(&format!(" [reminder {}]", self.reminder));
        }
        s
    }

    /// A short title (ntfy, email subject).
    pub fn title(&self) -> String {
        if let Some(d) = &self.detection {
            return format!("nbdgm {}: {}", Escaped(&d.source), Escaped(&d.title));
        }
        format!(
            "nbdgm: {} {} {}",
            self.kind.as_str(),
            Escaped(&self.target),
            Escaped(&self.port)
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
        if let Some(d) = &self.detection {
            v.extend([
                ("NBDGM_SOURCE", d.source.clone()),
                ("NBDGM_KEY", d.key.clone()),
                ("NBDGM_SEVERITY", d.severity.clone()),
                ("NBDGM_TITLE", d.title.clone()),
            ]);
        }
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

/// Chat text that mentions nobody: a zero-width space after every `@` and `<`, so
/// `@everyone`, `@here`, `<@U123>`, `<!channel>` and `<!here>` show as written but do not
/// notify (Slack, Discord, Mattermost, Teams, ntfy's Markdown).
pub fn defang(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        out.push(c);
        if c == '@' || c == '<' {
            out.push('\u{200b}');
        }
    }
    out
}

/// Slack's own escaping of `&`, `<` and `>` (its control sequences are `<...>`), then
/// [`defang`].
fn slack_text(s: &str) -> String {
    defang(
        &s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;"),
    )
}

/// A webhook URL as it may be shown, logged or stored: `scheme://host[:port]/…`. The
/// user info, path and query are dropped: for Slack, Discord, ntfy and most others the
/// path or the query is the secret.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
                "/…"
            } else {
                "/"
            };
            format!("{}://{}{port}{rest}", u.scheme(), escape(host))
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

/// `s` with every secret part of `url` (the whole URL, user info, path, query) replaced by
/// `…`, then escaped and cut to `max` characters.
fn scrub(s: &str, url: &str, max: usize) -> String {
    let mut s = s.replace(url, &redact_url(url));
    if let Ok(u) = url::Url::parse(url) {
        let mut secrets = vec![u.as_str().to_owned(), u.username().to_owned()];
        secrets.extend(u.password().map(str::to_owned));
        secrets.extend(u.query().map(str::to_owned));
        secrets.extend(u.fragment().map(str::to_owned));
        if u.path() != "/" {
            secrets.push(u.path().to_owned());
        }
        for sec in secrets.iter().filter(|x| x.len() >= 2) {
            s = s.replace(sec.as_str(), "…");
        }
    }
    cut(&escape(&s), max)
}

/// At most `max` characters.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Keep the HTTP, TLS and database libraries' own records (the `log` crate) at `warn` and
/// above: ureq logs each request's full URL, with its token, at `debug`. Call after the
/// tracing subscriber is installed; nbdgm's own `tracing` records are not affected.
pub fn quiet_library_logs() {
    log::set_max_level(log::LevelFilter::Warn);
}

/// Most bytes of a peer's answer (HTTP error body, hook stderr) kept for an error.
pub const MAX_PEER_TEXT: u64 = 300;

/// The body a webhook sink posts. Chat formats carry the defanged summary; Discord's
/// `allowed_mentions` also turns off every mention the text could still hold.
pub fn webhook_body(format: WebhookFormat, e: &AlertEvent) -> WebhookBody {
    match format {
        WebhookFormat::Json => WebhookBody {
            content_type: "application/json",
            body: serde_json::to_string(e).unwrap_or_default(),
            headers: Vec::new(),
        },
        WebhookFormat::Slack => WebhookBody {
            content_type: "application/json",
            body: serde_json::json!({ "text": slack_text(&e.summary()) }).to_string(),
            headers: Vec::new(),
        },
        WebhookFormat::Discord => WebhookBody {
            content_type: "application/json",
            body: serde_json::json!({
                "content": defang(&e.summary()),
                "allowed_mentions": { "parse": [] }
            })
            .to_string(),
            headers: Vec::new(),
        },
        WebhookFormat::Ntfy => WebhookBody {
            content_type: "text/plain; charset=utf-8",
            body: defang(&e.summary()),
            headers: vec![
                ("Title".into(), defang(&e.title())),
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

/// The email a sink sends: subject and plain-text body (every value escaped).
pub fn email_text(e: &AlertEvent) -> (String, String) {
    if let Some(d) = &e.detection {
        let details = serde_json::to_string_pretty(&d.details).unwrap_or_default();
        let mut body = format!(
            "{}\n\nsource:   {}\nseverity: {}\ntarget:   {}\nkey:      {}\nat:       {}\ninstance: {}\n\n",
            e.summary(),
            Escaped(&d.source),
            Escaped(&d.severity),
            Escaped(&e.target),
            Escaped(&d.key),
            e.at.to_rfc3339(),
            Escaped(&e.instance)
        );
        for line in details.lines() {
            body.push_str(&escape(line));
            body.push('\n');
        }
        return (e.title(), body);
    }
    let body = format!(
        "{}\n\ncheck:    {}\ntarget:   {}{}\nport:     {}\nold:      {}\nnew:      {}\nexpected: {}\nsince:    {}\ninstance: {}\n",
        e.summary(),
        Escaped(&e.check),
        Escaped(&e.target),
        e.hostname
            .as_ref()
            .map(|h| format!(" ({})", Escaped(h)))
            .unwrap_or_default(),
        Escaped(&e.port),
        Escaped(e.old.as_deref().unwrap_or("-")),
        Escaped(&e.new),
        Escaped(e.expected.as_deref().unwrap_or("-")),
        e.since.to_rfc3339(),
        Escaped(&e.instance)
    );
    (e.title(), body)
}

/// Does a sink take this alert?
pub fn wants(sink: &Sink, e: &AlertEvent) -> bool {
    sink.kinds.is_empty() || sink.kinds.iter().any(|k| k == e.kind.as_str())
}

/// Why an alert was not delivered. Texts from the peer are bounded and escaped, URLs
/// redacted (no credentials or tokens).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("HTTP {code} from {url}: {text}")]
    HttpStatus {
        code: u16,
        url: String,
        text: String,
    },
    #[error("POST {url}: {text}")]
    HttpTransport { url: String, text: String },
    /// A `from` or `to` address that does not parse.
    #[error("{field} {address:?}: {reason}")]
    Address {
        field: &'static str,
        address: String,
        reason: String,
    },
    #[error("{0}")]
    Message(String),
    #[error("smtp {server}:{port}: credentials need TLS (tls = \"starttls\" or \"implicit\")")]
    CredentialsNeedTls { server: String, port: u16 },
    #[error("smtp {server}: {reason}")]
    Relay { server: String, reason: String },
    #[error("smtp {server}:{port}: {reason}")]
    Smtp {
        server: String,
        port: u16,
        reason: String,
    },
    #[error("{program}: {reason}")]
    Spawn { program: String, reason: String },
    #[error("{program} exited with {status}: {stderr}")]
    Exited {
        program: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("{program} timed out after {timeout:?} and was killed")]
    TimedOut { program: String, timeout: Duration },
    #[error("{0}")]
    Wait(String),
}

/// Deliver once (blocking).
pub fn deliver_once(sink: &Sink, e: &AlertEvent) -> Result<(), DeliveryError> {
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
            tls,
            from,
            to,
            username,
            password_env,
            timeout,
        } => send_email(
            server,
            *port,
            *tls,
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
) -> Result<(), DeliveryError> {
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
    // ureq bounds the answer's head (100 fields of at most 100 KiB) and the whole exchange
    // (`timeout`); of the body at most MAX_PEER_TEXT bytes are read.
    match req.send_string(&b.body) {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, r)) => {
            let mut raw = Vec::new();
            let _ = r.into_reader().take(MAX_PEER_TEXT).read_to_end(&mut raw);
            let text = String::from_utf8_lossy(&raw);
            Err(DeliveryError::HttpStatus {
                code,
                url: redact_url(url),
                text: scrub(text.trim(), url, MAX_PEER_TEXT as usize),
            })
        }
        Err(ureq::Error::Transport(t)) => {
            let mut text = t.kind().to_string();
            if let Some(m) = t.message() {
                text.push_str(": ");
                text.push_str(m);
            }
            if let Some(src) = std::error::Error::source(&t) {
                text.push_str(": ");
                text.push_str(&src.to_string());
            }
            Err(DeliveryError::HttpTransport {
                url: redact_url(url),
                text: scrub(&text, url, 500),
            })
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn send_email(
    server: &str,
    port: u16,
    tls: EmailTls,
    from: &str,
    to: &[String],
    username: Option<&str>,
    password_env: Option<&str>,
    timeout: Duration,
    e: &AlertEvent,
) -> Result<(), DeliveryError> {
    use lettre::message::header::ContentType;
    use lettre::{Message, SmtpTransport, Transport};
    let (subject, body) = email_text(e);
    let mut m = Message::builder()
        .from(from.parse().map_err(|err| DeliveryError::Address {
            field: "from",
            address: from.to_owned(),
            reason: format!("{err}"),
        })?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for r in to {
        m = m.to(r.parse().map_err(|err| DeliveryError::Address {
            field: "to",
            address: r.clone(),
            reason: format!("{err}"),
        })?);
    }
    let msg = m
        .body(body)
        .map_err(|err| DeliveryError::Message(err.to_string()))?;
    if username.is_some() && tls == EmailTls::None {
        // The configuration refuses this too; never send credentials in the clear.
        return Err(DeliveryError::CredentialsNeedTls {
            server: server.to_owned(),
            port,
        });
    }
    // rustls with the web PKI roots built in. STARTTLS is required when asked for: a server
    // that does not offer it gets nothing (no AUTH, no message).
    let relay_error = |err: lettre::transport::smtp::Error| DeliveryError::Relay {
        server: server.to_owned(),
        reason: Escaped(&err.to_string()).to_string(),
    };
    let mut b = match tls {
        EmailTls::StartTls => SmtpTransport::starttls_relay(server).map_err(relay_error)?,
        EmailTls::Implicit => SmtpTransport::relay(server).map_err(relay_error)?,
        EmailTls::None => SmtpTransport::builder_dangerous(server),
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
    // lettre bounds each SMTP answer (line and total size) and each read (`timeout`).
    b.build()
        .send(&msg)
        .map(|_| ())
        .map_err(|err| DeliveryError::Smtp {
            server: server.to_owned(),
            port,
            reason: cut(&escape(&err.to_string()), MAX_PEER_TEXT as usize),
        })
}

/// `PATH` of exec hooks (the parent's is not passed on).
pub const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn run_exec(
    program: &std::path::Path,
    args: &[String],
    timeout: Duration,
    e: &AlertEvent,
) -> Result<(), DeliveryError> {
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(program);
    // Only PATH, LANG and the alert: no secret of the monitor's environment (SMTP
    // passwords, tokens) reaches the hook.
    cmd.args(args.iter().map(|a| e.expand(a)))
        .env_clear()
        .env("PATH", HOOK_PATH)
        .envs(std::env::var_os("LANG").map(|l| ("LANG", l)))
        .envs(e.env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // The hook is forked from this thread: with its ambient set cleared (capabilities are
    // per thread), no capability the monitor's unit grants passes to the hook.
    if let Err(err) = caps::clear(None, caps::CapSet::Ambient) {
        tracing::debug!(error = %err, "cannot clear the ambient capabilities");
    }
    let mut child = cmd.spawn().map_err(|err| DeliveryError::Spawn {
        program: program.display().to_string(),
        reason: err.to_string(),
    })?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if status.success() {
                    return Ok(());
                }
                let mut raw = Vec::new();
                if let Some(err) = child.stderr.take() {
                    let _ = err.take(MAX_PEER_TEXT).read_to_end(&mut raw);
                }
                return Err(DeliveryError::Exited {
                    program: program.display().to_string(),
                    status,
                    stderr: escape(String::from_utf8_lossy(&raw).trim()).into_owned(),
                });
            }
            Ok(None) if Instant::now() >= deadline => {
                // Kill by the child's own PID (Child::kill), then reap it.
                let _ = child.kill();
                let _ = child.wait();
                return Err(DeliveryError::TimedOut {
                    program: program.display().to_string(),
                    timeout,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => return Err(DeliveryError::Wait(err.to_string())),
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
                last = Some(err.to_string());
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
            detection: None,
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
            // Slack's escaping: it shows `&gt;` as `>`.
            "PORT_NEW_OPEN office 198.51.100.10 (fs) 138/udp: closed -&gt; open (expected closed)"
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
        // Hostile names: one escaped line, no live mention, URL secrets never shown.
        let mut bad = e.clone();
        bad.new = "@everyone <!channel> <@U1>\x1b[2J\n\u{202e}".into();
        let d = webhook_body(WebhookFormat::Discord, &bad);
        let v: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        let c = v["content"].as_str().unwrap();
        assert!(!c.contains("@everyone") && !c.contains("<!channel>") && !c.contains("<@U1>"));
        assert!(c.contains("\\x1b[2J\\n\\u{202e}"), "{c}");
        assert_eq!(v["allowed_mentions"]["parse"], serde_json::json!([]));
        let s = webhook_body(WebhookFormat::Slack, &bad);
        let v: serde_json::Value = serde_json::from_str(&s.body).unwrap();
        let t = v["text"].as_str().unwrap();
        assert!(!t.contains('<') && !t.contains("@everyone"), "{t}");
        assert_eq!(
            redact_url("https://u:p@hooks.slack.com/services/T/B/XYZ?x=1"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            scrub(
                "POST https://ntfy.sh/sekrit: x /sekrit",
                "https://ntfy.sh/sekrit",
                100
            ),
            "POST https://ntfy.sh/…: x …"
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
        assert!(r.unwrap_err().to_string().contains("timed out"));
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
