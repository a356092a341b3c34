//! `nbdgm dc-ping`: NETLOGON domain-controller ping (MS-ADTS §6.3.1, §6.3.5; DIGEST §7).
//!
//! Sends LOGON_PRIMARY_QUERY and/or LOGON_SAM_LOGON_REQUEST as mailslot writes to
//! `\MAILSLOT\NET\NETLOGON` at `<DOMAIN><1C>` (DIRECT_GROUP broadcast), `<DOMAIN><1B>`
//! (resolved, DIRECT_UNIQUE) or straight to `--server`. Every request names its own
//! temporary reply mailslot `\MAILSLOT\NET\GETDCxxxxxxxx`, so each response is matched
//! to exactly one request and timed from it. Through the daemon the reply arrives at the
//! daemon's node name (subscribed by mailslot); standalone it arrives at this command's
//! own ephemeral socket (DCs reply to the UDP source, DIGEST §8.5).

use super::{at_most, parse_seconds, print_json, NetArgs, OutFormat, ToolError, Via};
use crate::exit;
use clap::{Args, ValueEnum};
use nbdgm_client::proto::Subscription;
use nbdgm_client::proto::{Event as ApiEvent, SendArgs as ApiSend, SendMode as ApiMode};
use nbdgm_node::{DropReason, Event, RequestId, SendMode, SendRequest};
use nbdgm_wire::mailslot::{MailslotWrite, NETLOGON};
use nbdgm_wire::netlogon::ping::{self, Queries, Targets};
pub use nbdgm_wire::netlogon::ping::{
    build_request, plan, reply_mailslot, How, PlanSpec, Probe, QueryKind, DEFAULT_SAM_NT_VERSION,
};
use nbdgm_wire::netlogon::{ds_flag, NetlogonMessage};
use nbdgm_wire::text::{escape, Escaped};
use nbdgm_wire::Name;
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetArg {
    /// `<DOMAIN><1C>`: all DCs (DIRECT_GROUP broadcast).
    #[value(name = "1c")]
    Dc,
    /// `<DOMAIN><1B>`: the PDC (resolved, DIRECT_UNIQUE).
    #[value(name = "1b")]
    Pdc,
    /// Both.
    Both,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryArg {
    /// LOGON_PRIMARY_QUERY (answered by the PDC).
    Primary,
    /// LOGON_SAM_LOGON_REQUEST.
    Sam,
    /// Both.
    Both,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm dc-ping TESTGROUP                              # <1C> broadcast and <1B>, both queries\n  \
    nbdgm dc-ping TESTGROUP --server 198.51.100.10       # DIRECT_UNIQUE to that host, no lookup\n  \
    nbdgm dc-ping CORP --query sam --user alice --target 1c --timeout 2s --format json\n  \
    nbdgm dc-ping CORP --standalone --interface 198.51.100.20/24 --count 3\n\n\
Each request carries its own reply mailslot \\MAILSLOT\\NET\\GETDCxxxxxxxx; every response is\n\
printed decoded, with the DC's address and the time since its request in ms. Through a daemon\n\
the replies come to the daemon's name <00>; standalone, to this command's own ephemeral UDP\n\
port (no root needed; DCs such as Samba nmbd reply to the UDP source). --port is the DC's\n\
datagram port either way; with --daemon, --interface picks the daemon's interface.\n\
Exit codes: 0 at least one DC answered, 1 no answer (malformed replies are printed as\n\
errors and do not count), 2 usage or network error.")]
pub struct DcPingArgs {
    /// The domain (NetBIOS name).
    pub domain: String,
    /// Send straight to this DC (DIRECT_UNIQUE, no name lookup).
    #[arg(long, value_name = "IP")]
    pub server: Option<Ipv4Addr>,
    /// Destination name(s) [default: both; with --server: 1c].
    #[arg(long, value_enum)]
    pub target: Option<TargetArg>,
    /// Which request(s) to send.
    #[arg(long, value_enum, default_value_t = QueryArg::Both)]
    pub query: QueryArg,
    /// User name of the SAM logon request.
    #[arg(long, default_value = "")]
    pub user: String,
    /// NtVersion bits of both requests, e.g. 0xB [default: primary 0x1, SAM 0xF].
    #[arg(long, value_name = "BITS", value_parser = parse_u32)]
    pub nt_version: Option<u32>,
    #[command(flatten)]
    pub timeout: DcPingTimeout,
    /// Rounds of requests.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Source name [default: the daemon's name; standalone: the host name <00>].
    #[arg(long, value_name = "NAME<xx>")]
    pub from: Option<String>,
    #[command(flatten)]
    pub net: NetArgs,
}

super::timeout_args!(
    DcPingTimeout,
    wait,
    parse_seconds,
    "SECONDS",
    "Collect responses this long after each round of requests, e.g. 3s, 500ms [default: 3s].",
    default = Duration::from_secs(3)
);

/// An `--nt-version` that is not a number.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a 32-bit number (decimal or 0x hex)")]
pub struct NotU32(String);

fn parse_u32(s: &str) -> Result<u32, NotU32> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| NotU32(s.to_owned()))
}

impl From<TargetArg> for Targets {
    fn from(t: TargetArg) -> Targets {
        match t {
            TargetArg::Dc => Targets::Dc,
            TargetArg::Pdc => Targets::Pdc,
            TargetArg::Both => Targets::Both,
        }
    }
}

impl From<QueryArg> for Queries {
    fn from(q: QueryArg) -> Queries {
        match q {
            QueryArg::Primary => Queries::Primary,
            QueryArg::Sam => Queries::Sam,
            QueryArg::Both => Queries::Both,
        }
    }
}

/// A random 32-bit start for the mailslot tags.
pub fn random_tag() -> u32 {
    nbdgm_base::random::os_u32()
}

/// One received response (or a malformed one) as printed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Response {
    /// UDP source.
    pub from: String,
    /// NetBIOS source name of the datagram.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailslot: Option<String>,
    /// The request it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// Milliseconds since the request was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opcode: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dc_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nt_version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_host_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_guid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flag_names: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dc_site: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_site: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dc_address: Option<String>,
    /// The whole decoded message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<serde_json::Value>,
    /// Set when the datagram is not a well-formed answer to one of our requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The same host already answered this request (nmbd answers a broadcast once per
    /// socket it arrives on).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

impl Response {
    /// A well-formed answer to one of our requests.
    pub fn is_answer(&self) -> bool {
        self.error.is_none() && self.request.is_some()
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Fill the decoded fields of `r` from `msg`.
fn describe(r: &mut Response, msg: &NetlogonMessage) {
    r.opcode = Some(msg.opcode());
    r.command = Some(msg.command());
    r.message = serde_json::to_value(msg).ok();
    match msg {
        NetlogonMessage::PrimaryResponse(p) => {
            r.dc_name = p
                .unicode_primary_dc_name
                .clone()
                .filter(|s| !s.is_empty())
                .or_else(|| Some(p.primary_dc_name.clone()));
            r.domain = p.unicode_domain_name.clone();
            r.nt_version = p.nt_version;
        }
        NetlogonMessage::SamLogonResponse(s)
        | NetlogonMessage::SamPauseResponse(s)
        | NetlogonMessage::SamUserUnknown(s) => {
            r.dc_name = Some(s.unicode_logon_server.trim_start_matches('\\').to_owned());
            r.domain = non_empty(&s.unicode_domain_name);
            r.user = non_empty(&s.user_name);
            r.nt_version = s.nt_version;
            if let Some(v5) = &s.v5 {
                r.forest = non_empty(&v5.forest);
                r.dns_domain = non_empty(&v5.dns_domain);
                r.dns_host_name = non_empty(&v5.dns_host_name);
                r.domain_guid = (!v5.domain_guid.is_null()).then(|| v5.domain_guid.to_string());
                r.flags = Some(v5.flags);
                r.flag_names = ds_flag::names(v5.flags);
                r.dc_address = Some(v5.dc_ip_address.to_string());
            }
        }
        NetlogonMessage::SamLogonResponseEx(x)
        | NetlogonMessage::SamPauseResponseEx(x)
        | NetlogonMessage::SamUserUnknownEx(x) => {
            r.dc_name = non_empty(&x.netbios_computer_name);
            r.domain = non_empty(&x.netbios_domain);
            r.user = non_empty(&x.user_name);
            r.nt_version = Some(x.nt_version);
            r.forest = non_empty(&x.forest);
            r.dns_domain = non_empty(&x.dns_domain);
            r.dns_host_name = non_empty(&x.dns_host_name);
            r.domain_guid = (!x.domain_guid.is_null()).then(|| x.domain_guid.to_string());
            r.flags = Some(x.flags);
            r.flag_names = ds_flag::names(x.flags);
            r.dc_site = non_empty(&x.dc_site_name);
            r.client_site = non_empty(&x.client_site_name);
            r.dc_address = x.dc_sock_addr.as_ref().map(|a| a.address.to_string());
        }
        _ => {}
    }
}

/// Decode a datagram's user data (an SMB mailslot write) that arrived from `from` and
/// match it to one of `probes` by its mailslot ([`ping::match_reply`]). Never fails:
/// problems are in `error`.
pub fn match_response(
    probes: &[Probe],
    from: SocketAddr,
    source: Option<String>,
    user_data: &[u8],
    now: Instant,
) -> Response {
    let reply = ping::match_reply(probes, user_data, now);
    let mut r = Response {
        from: from.to_string(),
        source,
        mailslot: reply.mailslot.clone(),
        ..Response::default()
    };
    if let Some(m) = &reply.message {
        describe(&mut r, m);
    }
    if let Some(p) = reply.probe {
        r.target = Some(p.destination.to_string());
        r.round = Some(p.round);
        r.time_ms = reply.elapsed.map(|d| d.as_secs_f64() * 1000.0);
        if reply.problem.is_none() {
            r.request = Some(p.kind.command());
        }
    }
    r.error = reply.problem.map(|e| e.to_string());
    r
}

/// A note about a request (sent, or why not).
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    pub round: u32,
    pub request: &'static str,
    pub target: String,
    pub mailslot: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

struct Printer {
    format: OutFormat,
    responses: Vec<Response>,
    sent: Vec<Sent>,
}

fn fmt_ms(ms: Option<f64>) -> String {
    ms.map_or_else(|| "? ms".into(), |m| format!("{m:.2} ms"))
}

impl Printer {
    fn response(&mut self, mut r: Response) {
        r.duplicate = r.is_answer()
            && self
                .responses
                .iter()
                .any(|o| o.is_answer() && o.from == r.from && o.mailslot == r.mailslot);
        match self.format {
            OutFormat::Text => println!("{}", text_line(&r)),
            OutFormat::Ndjson => print_json(&serde_json::json!({"response": &r}), self.format),
            OutFormat::Json => {}
        }
        self.responses.push(r);
    }

    fn sent(&mut self, s: Sent) {
        match self.format {
            OutFormat::Text => {
                if let Some(e) = &s.error {
                    eprintln!(
                        "nbdgm dc-ping: {} to {}: {}",
                        Escaped(s.request),
                        Escaped(&s.target.to_string()),
                        Escaped(&e.to_string())
                    );
                }
            }
            OutFormat::Ndjson => print_json(&serde_json::json!({"request": &s}), self.format),
            OutFormat::Json => {}
        }
        self.sent.push(s);
    }

    fn finish(&self, domain: &str, via: &str) -> u8 {
        let answers: Vec<&Response> = self.responses.iter().filter(|r| r.is_answer()).collect();
        let errors = self.responses.len() - answers.len();
        let duplicates = answers.iter().filter(|r| r.duplicate).count();
        let mut dcs: Vec<String> = answers.iter().map(|r| r.from.clone()).collect();
        dcs.sort();
        dcs.dedup();
        let times: Vec<f64> = answers.iter().filter_map(|r| r.time_ms).collect();
        let min = times.iter().copied().reduce(f64::min);
        let max = times.iter().copied().reduce(f64::max);
        let summary = serde_json::json!({
            "domain": domain,
            "via": via,
            "requests": self.sent.len(),
            "answers": answers.len(),
            "errors": errors,
            "duplicates": duplicates,
            "dcs": dcs,
            "min_ms": min,
            "max_ms": max,
        });
        match self.format {
            OutFormat::Text => {
                if answers.is_empty() {
                    println!(
                        "no DC of {domain} answered {} request(s){}",
                        self.sent.len(),
                        if errors > 0 {
                            format!(" ({errors} malformed or unexpected repl(ies))")
                        } else {
                            String::new()
                        }
                    );
                } else {
                    println!(
                        "{} answer(s) from {} DC(s) to {} request(s), {errors} error(s); time min/max {} / {}",
                        answers.len(),
                        dcs.len(),
                        self.sent.len(),
                        fmt_ms(min),
                        fmt_ms(max)
                    );
                }
            }
            OutFormat::Ndjson => print_json(&serde_json::json!({"summary": summary}), self.format),
            OutFormat::Json => print_json(
                &serde_json::json!({
                    "summary": summary,
                    "requests": self.sent,
                    "responses": self.responses,
                }),
                self.format,
            ),
        }
        if answers.is_empty() {
            exit::FINDINGS
        } else {
            exit::OK
        }
    }
}

/// One text line for a response.
/// Every string of the answer is escaped (issue 12 item 4): a DC, or anything that
/// answers in its place, controls them.
pub fn text_line(r: &Response) -> String {
    let who = match &r.source {
        Some(s) => format!("{} ({})", Escaped(&r.from), Escaped(s)),
        None => escape(&r.from).into_owned(),
    };
    if let Some(e) = &r.error {
        let what = r
            .command
            .map(|c| format!(" {}", Escaped(c)))
            .unwrap_or_default();
        return format!("{who}: error:{what} {}", Escaped(e));
    }
    let mut line = format!(
        "{who}: {} in {}",
        Escaped(r.command.unwrap_or("?")),
        fmt_ms(r.time_ms)
    );
    if let Some(req) = r.request {
        line.push_str(&format!(
            " ({} to {}{})",
            Escaped(req),
            Escaped(r.target.as_deref().unwrap_or("?")),
            if r.duplicate { ", duplicate" } else { "" }
        ));
    }
    let mut add = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            line.push_str(&format!(" {k}={}", Escaped(v)));
        }
    };
    add("dc", &r.dc_name);
    add("domain", &r.domain);
    add("user", &r.user);
    add("nt_version", &r.nt_version.map(|v| format!("0x{v:08x}")));
    add("dns_domain", &r.dns_domain);
    add("dns_host", &r.dns_host_name);
    add("forest", &r.forest);
    add("site", &r.dc_site);
    add("client_site", &r.client_site);
    add("dc_address", &r.dc_address);
    add("guid", &r.domain_guid);
    add(
        "flags",
        &r.flags
            .map(|f| format!("0x{f:08x}[{}]", ds_flag::names(f).join(","))),
    );
    line
}

pub fn run(args: &DcPingArgs) -> u8 {
    super::exit_status("dc-ping", dc_ping(args))
}

/// The wait after each round: `--timeout` (or the old `--wait`), at most an hour.
fn check(args: &DcPingArgs) -> Result<Duration, ToolError> {
    Name::new(&args.domain, 0x1C).map_err(|e| ToolError::bad("domain", &args.domain, e))?;
    let wait = at_most("--timeout", args.timeout.get(), Duration::from_secs(3600))?;
    if args.count == 0 {
        return Err(ToolError::Usage("--count must be at least 1".into()));
    }
    if args.net.standalone.port == Some(0) {
        return Err(ToolError::Usage("--port must not be 0".into()));
    }
    Ok(wait)
}

fn dc_ping(args: &DcPingArgs) -> Result<u8, ToolError> {
    let wait = check(args)?;
    // --port is the DC's port through the daemon too: not a standalone option here.
    let mut given = args.net.standalone.given();
    given.retain(|f| *f != "--port");
    let via = args.net.daemon.choose(&given, &["--interface"])?;
    let mut printer = Printer {
        format: args.net.format,
        responses: Vec::new(),
        sent: Vec::new(),
    };
    let tag = random_tag();
    match via {
        Via::Daemon(client) => {
            daemon(args, *client, &mut printer, tag, wait)?;
            Ok(printer.finish(&args.domain, "daemon"))
        }
        Via::Standalone => {
            standalone(args, &mut printer, tag, wait)?;
            Ok(printer.finish(&args.domain, "standalone"))
        }
    }
}

fn spec<'a>(args: &'a DcPingArgs, computer: &'a str) -> PlanSpec<'a> {
    PlanSpec {
        domain: &args.domain,
        server: args.server,
        port: args.net.standalone.port,
        target: args.target.map(Targets::from),
        query: args.query.into(),
        computer,
        user: &args.user,
        nt_version: args.nt_version,
    }
}

fn sent_note(p: &Probe, to: Option<String>, error: Option<String>) -> Sent {
    Sent {
        round: p.round,
        request: p.kind.command(),
        target: p.destination.to_string(),
        mailslot: p.mailslot.clone(),
        to,
        error,
    }
}

fn daemon(
    args: &DcPingArgs,
    mut client: nbdgm_client::Client,
    printer: &mut Printer,
    tag: u32,
    wait: Duration,
) -> Result<(), ToolError> {
    client.set_timeout(Duration::from_secs(10))?;
    let interface = match &args.net.standalone.interface {
        Some(_) => Some(IpAddr::V4(args.net.standalone.interface()?.addr)),
        None => None,
    };
    let computer = match &args.from {
        Some(f) => f
            .parse::<Name>()
            .map_err(|e| ToolError::bad("--from", f, e))?
            .name(),
        None => super::daemon_node_name(&mut client).unwrap_or_else(super::host_netbios_name),
    };
    let spec = spec(args, &computer);
    let mut probes: Vec<Probe> = Vec::new();
    for round in 0..args.count {
        let start = probes.len();
        let round_tag = tag.wrapping_add(start as u32);
        probes.extend(plan(&spec, round, round_tag).map_err(|e| ToolError::Encode(e.to_string()))?);
        for p in &probes[start..] {
            client
                .subscribe(Subscription {
                    name: None,
                    mailslot: Some(p.mailslot.clone()),
                    all: args.from.is_some(),
                })
                .map_err(|e| ToolError::Failed(format!("subscribe: {e}")))?;
        }
        for p in probes.iter_mut().skip(start) {
            let (mode, address, port) = match p.how {
                How::Broadcast => (ApiMode::Group, None, None),
                How::Resolve => (ApiMode::Unique, None, None),
                How::At(ip, port) => (ApiMode::Unique, Some(IpAddr::V4(ip)), port),
            };
            let mut a = ApiSend::new(p.destination.to_string(), mode, &p.message);
            a.mailslot = Some(NETLOGON.to_owned());
            a.source = args.from.clone();
            a.address = address;
            a.port = port;
            a.interface = interface;
            let before = Instant::now();
            match client.send(a) {
                Ok(r) => {
                    // A resolved send returns after the lookup: time from the answer.
                    p.sent_at = Some(if p.how == How::Resolve {
                        Instant::now()
                    } else {
                        before
                    });
                    let note = sent_note(p, Some(r.to.to_string()), None);
                    printer.sent(note);
                }
                Err(nbdgm_client::Error::Server { code, message }) => {
                    let note = sent_note(p, None, Some(format!("{code:?}: {message}")));
                    printer.sent(note);
                }
                Err(e) => return Err(ToolError::Failed(format!("send: {e}"))),
            }
        }
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match client.next_event(Some(left))? {
                Some(ApiEvent::Datagram(ev)) => {
                    let now = Instant::now();
                    let r = match nbdgm_wire::hex::decode(&ev.data_hex) {
                        Some(data) => match_response(&probes, ev.from, Some(ev.source), &data, now),
                        None => Response {
                            from: ev.from.to_string(),
                            source: Some(ev.source),
                            error: Some("the daemon sent data that is not hex".into()),
                            ..Response::default()
                        },
                    };
                    printer.response(r);
                }
                Some(ApiEvent::Overflow { dropped }) => {
                    eprintln!("nbdgm dc-ping: {dropped} datagrams dropped by the daemon (too slow)")
                }
                Some(_) | None => {}
            }
        }
    }
    Ok(())
}

fn standalone(
    args: &DcPingArgs,
    printer: &mut Printer,
    tag: u32,
    wait: Duration,
) -> Result<(), ToolError> {
    let bind = args.net.standalone.bind();
    let source: Name = match &args.from {
        Some(f) => f.parse().map_err(|e| ToolError::bad("--from", f, e))?,
        None => Name::new(&super::host_netbios_name(), 0)
            .map_err(|e| ToolError::Encode(e.to_string()))?,
    };
    let computer = source.name();
    let port = args.net.standalone.port();
    let mut config = args.net.standalone.node_config()?;
    config.allow_unregistered_source = true;
    config.deliver_not_for_us = true;
    let spec = spec(args, &computer);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut node = nbdgm_runtime::Standalone::open_ephemeral(config, bind)?
            .with_gate(nbdgm_daemon::standalone_gate::default_gate());
        let mut probes: Vec<Probe> = Vec::new();
        for round in 0..args.count {
            let start = probes.len();
            probes.extend(
                plan(&spec, round, tag.wrapping_add(start as u32))
                    .map_err(|e| ToolError::Encode(e.to_string()))?,
            );
            let mut ids: HashMap<RequestId, usize> = HashMap::new();
            for (i, p) in probes.iter().enumerate().skip(start) {
                let mode = match p.how {
                    How::Broadcast => SendMode::Group,
                    How::Resolve => SendMode::Unique,
                    How::At(ip, _) => SendMode::UniqueAt(SocketAddrV4::new(ip, port)),
                };
                let data = MailslotWrite::new(NETLOGON, p.message.clone())
                    .to_bytes()
                    .map_err(|e| ToolError::Encode(format!("mailslot write: {e}")))?;
                let id = node
                    .node()
                    .send(
                        Instant::now(),
                        SendRequest {
                            source: source.clone(),
                            destination: p.destination.clone(),
                            mode,
                            data,
                        },
                    )
                    .map_err(|e| ToolError::Encode(e.to_string()))?;
                ids.insert(id, i);
            }
            let deadline = Instant::now() + wait;
            let mut pending: Vec<Response> = Vec::new();
            let mut notes: Vec<Sent> = Vec::new();
            let probes_ref = &mut probes;
            node.run(Some(deadline), |ev| {
                match ev {
                    // Emitted after the datagram was handed to the socket.
                    Event::SendDone { id, result } => {
                        if let Some(&i) = ids.get(&id) {
                            let p = &mut probes_ref[i];
                            match result {
                                Ok(info) => {
                                    p.sent_at = Some(Instant::now());
                                    notes.push(sent_note(p, Some(info.to.to_string()), None));
                                }
                                Err(e) => notes.push(sent_note(p, None, Some(e.to_string()))),
                            }
                        }
                    }
                    Event::Delivered(d) => pending.push(match_response(
                        probes_ref,
                        SocketAddr::V4(d.from),
                        Some(d.source.to_string()),
                        &d.data,
                        Instant::now(),
                    )),
                    Event::Dropped { reason, from }
                        if !matches!(reason, DropReason::OwnPacket | DropReason::NotOwned) =>
                    {
                        pending.push(Response {
                            from: from.to_string(),
                            error: Some(format!("dropped: {}", reason.as_str())),
                            ..Response::default()
                        })
                    }
                    _ => {}
                }
                // Print as they come.
                for s in notes.drain(..) {
                    printer.sent(s);
                }
                for r in pending.drain(..) {
                    printer.response(r);
                }
                true
            })
            .await?;
        }
        Ok::<(), ToolError>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_wire::mailslot::MailslotWrite;
    use nbdgm_wire::netlogon::{PrimaryResponse, SamLogonResponseEx};

    fn spec<'a>(server: Option<Ipv4Addr>, target: Option<TargetArg>, q: QueryArg) -> PlanSpec<'a> {
        PlanSpec {
            domain: "TESTGROUP",
            server,
            port: None,
            target: target.map(Targets::from),
            query: q.into(),
            computer: "WKS01",
            user: "alice",
            nt_version: None,
        }
    }

    fn reply(mailslot: &str, msg: NetlogonMessage) -> Vec<u8> {
        MailslotWrite::new(mailslot, msg.to_bytes().unwrap())
            .to_bytes()
            .unwrap()
    }

    fn from() -> SocketAddr {
        "198.51.100.10:138".parse().unwrap()
    }

    #[test]
    fn arguments_choose_the_planned_targets_and_queries() {
        let ip = Ipv4Addr::new(198, 51, 100, 10);
        let p = plan(&spec(Some(ip), Some(TargetArg::Pdc), QueryArg::Sam), 0, 7).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].destination.suffix(), p[0].kind),
            (0x1B, QueryKind::Sam)
        );
        let p = plan(&spec(None, Some(TargetArg::Both), QueryArg::Primary), 0, 7).unwrap();
        let got: Vec<_> = p.iter().map(|x| (x.destination.suffix(), x.kind)).collect();
        assert_eq!(
            got,
            [(0x1C, QueryKind::Primary), (0x1B, QueryKind::Primary)]
        );
        let p = plan(&spec(None, Some(TargetArg::Dc), QueryArg::Both), 0, 7).unwrap();
        let got: Vec<_> = p.iter().map(|x| (x.destination.suffix(), x.kind)).collect();
        assert_eq!(got, [(0x1C, QueryKind::Primary), (0x1C, QueryKind::Sam)]);
    }

    #[test]
    fn primary_response_matches_its_request() {
        let mut p = plan(&spec(None, Some(TargetArg::Dc), QueryArg::Both), 0, 100).unwrap();
        let t0 = Instant::now();
        p[0].sent_at = Some(t0);
        let resp = PrimaryResponse {
            primary_dc_name: "SAMBAA".into(),
            unicode_primary_dc_name: Some("SAMBAA".into()),
            unicode_domain_name: Some("TESTGROUP".into()),
            nt_version: Some(1),
            lmnt_token: Some(0xFFFF),
            lm20_token: Some(0xFFFF),
            ..PrimaryResponse::default()
        };
        let data = reply(&p[0].mailslot, NetlogonMessage::PrimaryResponse(resp));
        let r = match_response(
            &p,
            from(),
            Some("SAMBAA<00>".into()),
            &data,
            t0 + Duration::from_millis(5),
        );
        assert!(r.is_answer(), "{r:?}");
        assert_eq!(r.request, Some("LOGON_PRIMARY_QUERY"));
        assert_eq!(r.command, Some("LOGON_PRIMARY_RESPONSE"));
        assert_eq!(r.dc_name.as_deref(), Some("SAMBAA"));
        assert_eq!(r.domain.as_deref(), Some("TESTGROUP"));
        assert_eq!(r.nt_version, Some(1));
        assert!((r.time_ms.unwrap() - 5.0).abs() < 0.001);
        let line = text_line(&r);
        assert!(
            line.contains("LOGON_PRIMARY_RESPONSE") && line.contains("dc=SAMBAA"),
            "{line}"
        );
        // The same response on the SAM request's mailslot does not answer it.
        let data = reply(
            &p[1].mailslot,
            NetlogonMessage::PrimaryResponse(PrimaryResponse::default()),
        );
        let r = match_response(&p, from(), None, &data, Instant::now());
        assert!(!r.is_answer());
        assert!(r.error.unwrap().contains("does not answer"));
    }

    #[test]
    fn ex_response_fields_are_shown() {
        let p = plan(&spec(None, Some(TargetArg::Dc), QueryArg::Sam), 0, 5).unwrap();
        let ex = SamLogonResponseEx {
            flags: ds_flag::PDC | ds_flag::LDAP | ds_flag::DS,
            forest: "corp.example".into(),
            dns_domain: "corp.example".into(),
            dns_host_name: "dc1.corp.example".into(),
            netbios_domain: "CORP".into(),
            netbios_computer_name: "DC1".into(),
            dc_site_name: "Default-First-Site-Name".into(),
            nt_version: 5,
            ..SamLogonResponseEx::default()
        };
        let data = reply(&p[0].mailslot, NetlogonMessage::SamLogonResponseEx(ex));
        let r = match_response(&p, from(), None, &data, Instant::now());
        assert!(r.is_answer(), "{r:?}");
        assert_eq!(r.dc_name.as_deref(), Some("DC1"));
        assert_eq!(r.domain.as_deref(), Some("CORP"));
        assert_eq!(r.dns_host_name.as_deref(), Some("dc1.corp.example"));
        assert_eq!(r.dc_site.as_deref(), Some("Default-First-Site-Name"));
        assert_eq!(r.flag_names, vec!["PDC", "LDAP", "DS"]);
        // Not sent yet: no time.
        assert_eq!(r.time_ms, None);
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let p = plan(&spec(None, None, QueryArg::Both), 0, 9).unwrap();
        // Not SMB at all.
        let r = match_response(&p, from(), None, b"garbage", Instant::now());
        assert!(r.error.unwrap().contains("not a mailslot write"));
        // A mailslot write to our mailslot with a truncated PrimaryResponse.
        let data = MailslotWrite::new(&p[0].mailslot, vec![0x0C, 0x00, b'S'])
            .to_bytes()
            .unwrap();
        let r = match_response(&p, from(), None, &data, Instant::now());
        assert!(!r.is_answer());
        assert!(r.error.unwrap().contains("malformed NETLOGON"));
        // A foreign mailslot.
        let data = MailslotWrite::new("\\MAILSLOT\\NET\\GETDC1", vec![0x0C, 0x00])
            .to_bytes()
            .unwrap();
        let r = match_response(&p, from(), None, &data, Instant::now());
        assert!(r.error.unwrap().contains("not one of ours"));
        // Every prefix of a valid reply decodes or errors without panicking.
        let ok = reply(
            &p[0].mailslot,
            NetlogonMessage::PrimaryResponse(PrimaryResponse {
                primary_dc_name: "X".into(),
                unicode_primary_dc_name: Some("X".into()),
                unicode_domain_name: Some("D".into()),
                nt_version: Some(1),
                lmnt_token: Some(0xFFFF),
                lm20_token: Some(0xFFFF),
                ..PrimaryResponse::default()
            }),
        );
        for n in 0..ok.len() {
            let _ = match_response(&p, from(), None, &ok[..n], Instant::now());
        }
    }

    #[test]
    fn nt_version_parses_hex_and_decimal() {
        assert_eq!(parse_u32("0xB"), Ok(11));
        assert_eq!(parse_u32("11"), Ok(11));
        assert!(parse_u32("zz").is_err());
    }
}
