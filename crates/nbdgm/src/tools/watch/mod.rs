//! `nbdgm watch`: the command line of the detection engine `nbdgm_watch` (docs/watch.md):
//! packets of ports 137/138 (RFC 1002 §4.2, §4.4), 5355 (LLMNR, RFC 4795) and 5353 (mDNS,
//! RFC 6762) from capture files or an interface, alerts in text, ndjson or Suricata EVE,
//! and a Nagios-style exit status.

use crate::exit;
use clap::{ArgGroup, Args, ValueEnum};
use ipnet::IpNet;
use nbdgm_capture::{CaptureReader, PortFilter};
use nbdgm_watch::output::{self, Format};
use nbdgm_watch::{Alert, Engine, Packet, Severity, WatchConfig};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "live")]
mod live;
pub mod sinks;

/// Output format of `nbdgm watch`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchFormat {
    /// One escaped line per alert.
    Text,
    /// nbdgm's flat JSON, one object per line.
    Ndjson,
    /// Suricata EVE JSON (`event_type: alert`), one object per line.
    Eve,
}

impl From<WatchFormat> for Format {
    fn from(f: WatchFormat) -> Format {
        match f {
            WatchFormat::Text => Format::Text,
            WatchFormat::Ndjson => Format::Ndjson,
            WatchFormat::Eve => Format::Eve,
        }
    }
}

/// A severity argument.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeverityArg {
    High,
    Medium,
    Low,
}

impl From<SeverityArg> for Severity {
    fn from(s: SeverityArg) -> Severity {
        match s {
            SeverityArg::High => Severity::High,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::Low => Severity::Low,
        }
    }
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("source").args(["read", "interface"]).multiple(false)))]
#[command(after_help = "Examples:\n  \
    nbdgm watch --read capture.pcapng\n  \
    nbdgm watch --read a.pcap b.pcapng --format eve --output eve.json\n  \
    tcpdump -w - -U 'udp port 137 or 138 or 5353 or 5355' | nbdgm watch --read -\n  \
    nbdgm watch --interface eth0 --duration 10m --fail-on high      # Nagios check\n  \
    nbdgm watch --read day.pcap --local-net 198.51.100.0/24 --nbdd 198.51.100.2 \\\n      \
    --disable master-change --min-severity medium --inventory hosts.json --stats\n  \
    nbdgm watch --list-signatures\n\n\
Signatures, evidence, false positives and tuning: docs/watch.md.\n\n\
Exit codes: 0 no alert at or above --fail-on; 1 at least one such alert (printed or not);\n\
2 usage error, a bad --config, or a file that cannot be read or is not a capture (the\n\
message names the file; alerts found before are still printed).")]
pub struct WatchArgs {
    /// Capture files (pcap or pcapng), read in order; `-` reads standard input.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub read: Vec<String>,
    /// Capture live on this interface.
    #[arg(long, short = 'i', value_name = "IFACE")]
    pub interface: Option<String>,
    /// Output format [default: text on a terminal, ndjson otherwise].
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<WatchFormat>,
    /// Write alerts to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print only alerts at or above this severity.
    #[arg(long, value_enum, default_value_t = SeverityArg::Low)]
    pub min_severity: SeverityArg,
    /// Exit with status 1 when an alert at or above this severity was raised.
    #[arg(long, value_enum, default_value_t = SeverityArg::Medium)]
    pub fail_on: SeverityArg,
    /// Live: stop after this long (`30s`, `10m`, `1h`).
    #[arg(long, value_name = "DURATION", value_parser = crate::tools::parse_duration, requires = "interface")]
    pub duration: Option<Duration>,
    /// Stop after this many printed alerts.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Configuration file (TOML); its `[watch]` table sets the detectors (docs/watch.md).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A local subnet (repeatable); 137/138 traffic from elsewhere raises `off-subnet`.
    #[arg(long = "local-net", value_name = "CIDR")]
    pub local_net: Vec<IpNet>,
    /// An NBDD address (repeatable): the datagrams it relays may carry another SOURCE_IP.
    #[arg(long, value_name = "ADDR")]
    pub nbdd: Vec<IpAddr>,
    /// An NBNS (WINS) server (repeatable): it answers for names it does not own.
    #[arg(long = "name-server", value_name = "ADDR")]
    pub name_server: Vec<IpAddr>,
    /// Never alert on this signature, by id or slug (repeatable).
    #[arg(long, value_name = "SIG")]
    pub disable: Vec<String>,
    /// Write the host inventory (JSON) to this file at the end (atomically).
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Print the engine's counters and table sizes (JSON) on standard error at the end.
    #[arg(long)]
    pub stats: bool,
    /// Print the signature table and exit.
    #[arg(long)]
    pub list_signatures: bool,
    /// Live: also send honey queries for names that exist nowhere.
    #[arg(long, requires = "interface")]
    pub honey: bool,
    /// Mean time between honey rounds (jittered by half either way).
    #[arg(long, value_name = "DURATION", value_parser = crate::tools::parse_duration,
          default_value = "60s", requires = "honey")]
    pub honey_interval: Duration,
    /// Verify each honey responder once (TCP 445, HTTP /wpad.dat on 80) and attach the
    /// result to its alert.
    #[arg(long, requires = "honey")]
    pub honey_verify: bool,
    /// Also send the printed alerts as RFC 5424 syslog messages: `unix:///dev/log` (the
    /// default), `udp://HOST[:514]` or `tcp://HOST[:601]`.
    #[arg(long, value_name = "TARGET", num_args = 0..=1,
          default_missing_value = nbdgm_watch::syslog::DEFAULT_TARGET)]
    pub syslog: Option<String>,
    /// Syslog facility, by name (`auth`, `local0`...) or number.
    #[arg(
        long,
        value_name = "FACILITY",
        default_value = "auth",
        requires = "syslog"
    )]
    pub syslog_facility: String,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Why `nbdgm watch` stopped with status 2.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("{0}")]
    Usage(String),
    #[error("--config {path}: {reason}")]
    Config { path: String, reason: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_at(context: impl Into<String>) -> impl FnOnce(io::Error) -> WatchError {
    let context = context.into();
    move |source| WatchError::Io { context, source }
}

/// Run the subcommand; returns the exit code.
pub fn run(args: &WatchArgs) -> u8 {
    match watch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nbdgm watch: {}", nbdgm_wire::text::Escaped(&e.to_string()));
            exit::USAGE
        }
    }
}

/// The configuration of the engine: the `[watch]` table of `--config`, then the flags.
pub fn config(args: &WatchArgs) -> Result<WatchConfig, WatchError> {
    let mut cfg = match &args.config {
        Some(path) => load_config(path)?,
        None => WatchConfig::default(),
    };
    cfg.local_nets.extend(args.local_net.iter().copied());
    cfg.nbdd.extend(args.nbdd.iter().copied());
    cfg.name_servers.extend(args.name_server.iter().copied());
    cfg.disable.extend(args.disable.iter().cloned());
    cfg.validate().map_err(WatchError::Usage)?;
    Ok(cfg)
}

/// The `[watch]` table of a TOML file (other tables, and `[watch.alerts]`, are other
/// components'; a missing table means the defaults).
pub fn load_config(path: &Path) -> Result<WatchConfig, WatchError> {
    let err = |reason: String| WatchError::Config {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(e.to_string()))?;
    match doc.get("watch") {
        None => Ok(WatchConfig::default()),
        Some(v) => {
            let mut v = v.clone();
            // `[watch.alerts]` is the alert routing's (sinks.rs), not the engine's.
            if let Some(t) = v.as_table_mut() {
                t.remove("alerts");
            }
            v.try_into()
                .map_err(|e: toml::de::Error| err(format!("[watch]: {e}")))
        }
    }
}

/// Alert counts of a run, and whether it must end.
#[derive(Debug, Default)]
struct Tally {
    packets: u64,
    by_severity: [u64; 3],
    printed: u64,
    failed: bool,
    input_errors: u64,
    done: bool,
}

/// Writes alerts: the severity filter, `--count`, `--fail-on`.
struct Emitter {
    out: Box<dyn Write>,
    format: Format,
    min: Severity,
    fail_on: Severity,
    count: Option<u64>,
    flush_each: bool,
    tally: Tally,
    /// The `[[sink]]`s of `--config`: every alert raised goes there (they filter by
    /// their own `min_severity`).
    router: Option<sinks::Router>,
    /// `--syslog`: every printed alert.
    syslog: Option<nbdgm_watch::syslog::Syslog>,
}

impl Emitter {
    /// Accounts for and prints `a`. Sets `tally.done` when `--count` is reached or the
    /// reader of the output went away.
    fn alert(&mut self, a: &Alert) -> Result<(), WatchError> {
        let sev = a.severity;
        self.tally.by_severity[usize::from(sev.number() - 1).min(2)] += 1;
        if sev.at_least(self.fail_on) {
            self.tally.failed = true;
        }
        if let Some(r) = &mut self.router {
            r.route(a);
        }
        if !sev.at_least(self.min) || self.tally.done {
            return Ok(());
        }
        if let Some(s) = &mut self.syslog {
            s.send(a);
        }
        let r = output::write_alert(&mut self.out, self.format, a).and_then(|()| {
            if self.flush_each {
                self.out.flush()
            } else {
                Ok(())
            }
        });
        match r {
            Ok(()) => {}
            // `| head`: the reader went away; stop quietly.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.tally.done = true,
            Err(e) => return Err(io_at("cannot write alerts")(e)),
        }
        self.tally.printed += 1;
        if self.count.is_some_and(|n| self.tally.printed >= n) {
            self.tally.done = true;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), WatchError> {
        match self.out.flush() {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(io_at("cannot write alerts")(e)),
            _ => Ok(()),
        }
    }
}

fn watch(args: &WatchArgs) -> Result<u8, WatchError> {
    let format: Format = args.format.map(Format::from).unwrap_or(
        if args.output.is_none() && io::stdout().is_terminal() {
            Format::Text
        } else {
            Format::Ndjson
        },
    );
    if args.list_signatures {
        // The table is text unless JSON is asked for by name.
        let format = args.format.map_or(Format::Text, Format::from);
        let mut out = io::stdout().lock();
        return match output::write_signatures(&mut out, format) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(io_at("cannot write")(e)),
            _ => Ok(exit::OK),
        };
    }
    if args.read.is_empty() && args.interface.is_none() {
        return Err(WatchError::Usage(
            "give --read FILE... or --interface IFACE (or --list-signatures)".into(),
        ));
    }
    if args.count == Some(0) {
        return Err(WatchError::Usage("--count must be at least 1".into()));
    }
    #[allow(unused_mut)] // mutated only with live capture
    let mut cfg = config(args)?;
    #[cfg(feature = "live")]
    if let Some(iface) = &args.interface {
        if cfg.local_nets.is_empty() {
            cfg.local_nets = live::local_nets(iface);
        }
    }
    let mut em = emitter(args, format)?;
    let mut engine = Engine::new(cfg);
    let mut drops = None;
    if let Some(iface) = &args.interface {
        match live_source(iface, args, &mut engine, &mut em) {
            Ok(d) => drops = Some(d),
            Err(e) => {
                // Alerts and the inventory so far are still written.
                eprintln!("nbdgm watch: {}", nbdgm_wire::text::Escaped(&e.to_string()));
                em.tally.input_errors += 1;
            }
        }
    } else {
        for path in &args.read {
            if em.tally.done {
                break;
            }
            if let Err(e) = read_file(path, args.no_progress, &mut engine, &mut em) {
                eprintln!("nbdgm watch: {}", nbdgm_wire::text::Escaped(&e.to_string()));
                em.tally.input_errors += 1;
            }
        }
    }
    em.tally.packets = engine.counters().packets;
    em.finish()?;
    let routed = em.router.take().map(|r| r.finish(SINK_FLUSH));
    if let Some(path) = &args.inventory {
        write_inventory(path, &engine)?;
    }
    if args.stats {
        let mut v = engine.stats();
        if let (Some(r), Some(obj)) = (routed, v.as_object_mut()) {
            obj.insert("sinks".into(), sink_stats(&r));
        }
        let s = serde_json::to_string_pretty(&v).unwrap_or_default();
        eprintln!("{s}");
    }
    if let Some(s) = &em.syslog {
        let st = s.stats();
        if st.failed > 0 {
            eprintln!(
                "nbdgm watch: syslog: {} of {} messages not sent ({})",
                st.failed,
                st.sent + st.failed,
                s.last_error.as_deref().unwrap_or("unknown error")
            );
        }
    }
    if format == Format::Text && io::stderr().is_terminal() {
        eprintln!("{}", engine.inventory_summary_text().trim_end());
        eprintln!("{}", summary(&em.tally, drops.as_ref()));
    }
    Ok(if em.tally.input_errors > 0 {
        exit::USAGE
    } else if em.tally.failed {
        exit::FINDINGS
    } else {
        exit::OK
    })
}

/// The alert writer of a run: output, filters, `[[sink]]`s and `--syslog`.
fn emitter(args: &WatchArgs, format: Format) -> Result<Emitter, WatchError> {
    let router = match &args.config {
        Some(path) => sinks::Router::from_config(path).map_err(|e| WatchError::Config {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?,
        None => None,
    };
    let syslog = match &args.syslog {
        Some(t) => Some(open_syslog(t, &args.syslog_facility)?),
        None => None,
    };
    let out: Box<dyn Write> = match &args.output {
        None => Box::new(BufWriter::new(io::stdout())),
        Some(p) => Box::new(BufWriter::new(
            File::create(p).map_err(io_at(format!("--output {}", p.display())))?,
        )),
    };
    Ok(Emitter {
        out,
        format,
        min: args.min_severity.into(),
        fail_on: args.fail_on.into(),
        count: args.count,
        flush_each: args.interface.is_some()
            || (args.output.is_none() && io::stdout().is_terminal()),
        tally: Tally::default(),
        router,
        syslog,
    })
}

/// `--syslog TARGET` with `--syslog-facility`.
fn open_syslog(target: &str, facility: &str) -> Result<nbdgm_watch::syslog::Syslog, WatchError> {
    use nbdgm_watch::syslog::{parse_facility, Syslog, SyslogOptions, Target};
    let usage = |e: String| WatchError::Usage(format!("--syslog: {e}"));
    let t: Target = target.parse().map_err(usage)?;
    let opts = SyslogOptions {
        facility: parse_facility(facility).map_err(usage)?,
        ..SyslogOptions::default()
    };
    Syslog::open(&t, opts).map_err(io_at(format!(
        "--syslog {}",
        nbdgm_wire::text::escape(target)
    )))
}

/// Longest wait at the end for the sinks to deliver what is queued.
const SINK_FLUSH: Duration = Duration::from_secs(10);

fn sink_stats(r: &sinks::RouterStats) -> serde_json::Value {
    serde_json::json!({
        "queued": r.queued,
        "duplicates": r.duplicates,
        "below_severity": r.below_severity,
        "dropped": r.dropped,
        "keys_evicted": r.keys_evicted,
        "delivered": r.delivered,
        "failed": r.failed,
        "abandoned": r.abandoned,
    })
}

/// Kernel counters of a live capture: received, dropped (buffer full), dropped by
/// the interface.
#[derive(Debug, Clone, Copy)]
struct Drops {
    received: u64,
    dropped: u64,
    if_dropped: u64,
}

/// `nbdgm watch: 1234 packets, 3 alerts (1 high, 2 medium, 0 low), 3 printed` and, live,
/// `; kernel: 1300 received, 0 dropped, 0 dropped by the interface`.
fn summary(t: &Tally, drops: Option<&Drops>) -> String {
    let [h, m, l] = t.by_severity;
    let mut s = format!(
        "nbdgm watch: {} packets, {} alerts ({h} high, {m} medium, {l} low), {} printed",
        t.packets,
        h + m + l,
        t.printed
    );
    if let Some(d) = drops {
        s.push_str(&format!(
            "; kernel: {} received, {} dropped, {} dropped by the interface",
            d.received, d.dropped, d.if_dropped
        ));
    }
    s
}

/// The live packet source: captures on `iface` until `--duration`, `--count` or a
/// signal, with `--honey` queries (crates/nbdgm-capture `LiveCapture`, feature `live`).
#[cfg(feature = "live")]
fn live_source(
    iface: &str,
    args: &WatchArgs,
    engine: &mut Engine,
    em: &mut Emitter,
) -> Result<Drops, WatchError> {
    let s = live::run(iface, args, engine, em)?;
    Ok(Drops {
        received: s.received,
        dropped: s.dropped,
        if_dropped: s.if_dropped,
    })
}

/// Built without the `live` feature: `--interface` is an error.
#[cfg(not(feature = "live"))]
fn live_source(
    iface: &str,
    _args: &WatchArgs,
    _engine: &mut Engine,
    _em: &mut Emitter,
) -> Result<Drops, WatchError> {
    Err(WatchError::Usage(format!(
        "--interface {}: this nbdgm was built without live capture (cargo feature `live`); \
         use --read with a capture file, e.g. from tcpdump -w -",
        nbdgm_wire::text::escape(iface)
    )))
}

/// Counts the bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Feeds one capture file (frames numbered from 1 in it) to the engine.
fn read_file(
    path: &str,
    no_progress: bool,
    engine: &mut Engine,
    em: &mut Emitter,
) -> Result<(), WatchError> {
    let (input, size): (Box<dyn Read>, Option<u64>) = if path == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let f = File::open(path).map_err(io_at(format!("{path}: cannot open")))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let count = Arc::new(AtomicU64::new(0));
    let bar = match size {
        Some(n) if !no_progress && io::stderr().is_terminal() && n > (8 << 20) => {
            let bar = indicatif::ProgressBar::new(n);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(nbdgm_wire::text::escape(path).into_owned());
            Some(bar)
        }
        _ => None,
    };
    let input = Counting {
        inner: input,
        count: count.clone(),
    };
    let result = feed(path, input, engine, em, |_| {
        if let Some(b) = &bar {
            b.set_position(count.load(Ordering::Relaxed));
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    result
}

/// The datagrams of one capture through the engine, alerts to `em`.
fn feed<R: Read>(
    path: &str,
    input: R,
    engine: &mut Engine,
    em: &mut Emitter,
    mut progress: impl FnMut(u64),
) -> Result<(), WatchError> {
    let bad = |e: nbdgm_capture::CaptureError| WatchError::Usage(format!("{path}: {e}"));
    let mut reader = CaptureReader::new(input).map_err(bad)?;
    reader.set_port_filter(PortFilter::ports(nbdgm_watch::engine::PORTS));
    let mut alerts = Vec::new();
    let mut n = 0u64;
    let mut cut = None;
    loop {
        let d = match reader.next_udp() {
            None => break,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                cut = Some(e);
                break;
            }
        };
        engine.process(&Packet::from_capture(&d), &mut alerts);
        for a in alerts.drain(..) {
            em.alert(&a)?;
        }
        if em.tally.done {
            break;
        }
        n += 1;
        if n.is_multiple_of(4096) {
            progress(n);
        }
    }
    match cut {
        None => {}
        // A capture cut short (tcpdump killed, a file still being written): the packets
        // before were read; say so, but it is no input error.
        Some(e @ nbdgm_capture::CaptureError::Truncated { .. }) if reader.stats().frames > 0 => {
            eprintln!(
                "nbdgm watch: {}: {e} (the packets before it were read)",
                nbdgm_wire::text::escape(path)
            );
        }
        Some(e) => return Err(bad(e)),
    }
    Ok(())
}

/// Writes the inventory to `path` atomically: a temporary file beside it, then rename.
pub fn write_inventory(path: &Path, engine: &Engine) -> Result<(), WatchError> {
    let ctx = format!("--inventory {}", path.display());
    let body = serde_json::to_vec_pretty(&engine.inventory())
        .map_err(|e| io_at(ctx.clone())(io::Error::other(e)))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "inventory".into());
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&body)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_at(ctx)(e)
    })
}
