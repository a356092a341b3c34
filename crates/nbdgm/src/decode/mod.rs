//! `nbdgm decode`: read captures, decode every NetBIOS datagram and name-service
//! packet, print text, JSON or NDJSON (schema: `docs/json-schema.md`).

pub mod record;
pub mod text;

use crate::exit;
use clap::{Args as ClapArgs, ValueEnum};
use record::{Meta, Protocol, Record};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One summary line per packet (`-v` for the field tree).
    Text,
    /// One JSON array of packet objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

#[derive(Debug, ClapArgs)]
#[command(after_help = "Examples:\n  \
    nbdgm decode capture.pcap\n  \
    nbdgm decode -v --port 1138 a.pcapng b.pcap\n  \
    tcpdump -w - -U udp port 138 | nbdgm decode --format ndjson -\n  \
    nbdgm decode --format json capture.pcap | jq '.[] | select(.browser) | .browser.server_name'\n\n\
Exit codes: 0 everything decoded; 1 some packets were malformed (they are still printed);\n\
2 usage error, or a file that cannot be read, is not a capture, or is damaged (the message\n\
names the file and byte offset; decoding goes on with the next file).")]
pub struct Args {
    /// Capture files (pcap or pcapng); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print every field (text format).
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Also decode UDP traffic to or from this port (repeatable). 137 and 138 are always decoded.
    #[arg(long = "port", value_name = "N")]
    pub ports: Vec<u16>,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Counts of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub packets: u64,
    pub malformed: u64,
    pub file_errors: u64,
}

impl Totals {
    pub fn exit_code(&self) -> u8 {
        if self.file_errors > 0 {
            exit::USAGE
        } else if self.malformed > 0 {
            exit::FINDINGS
        } else {
            exit::OK
        }
    }
}

/// Writes records in the chosen format.
pub struct Sink<W: Write> {
    out: W,
    format: Format,
    verbose: bool,
    first: bool,
    with_file: Option<String>,
}

impl<W: Write> Sink<W> {
    pub fn new(out: W, format: Format, verbose: bool) -> Self {
        Sink {
            out,
            format,
            verbose,
            first: true,
            with_file: None,
        }
    }

    pub fn begin(&mut self) -> io::Result<()> {
        if self.format == Format::Json {
            self.out.write_all(b"[")?;
        }
        Ok(())
    }

    pub fn record(&mut self, r: &Record) -> io::Result<()> {
        match self.format {
            Format::Text => {
                if let Some(f) = &self.with_file {
                    write!(self.out, "{f}: ")?;
                }
                let line = if self.verbose { text::tree(r) } else { text::summary(r) };
                self.out.write_all(line.as_bytes())?;
                if !self.verbose {
                    self.out.write_all(b"\n")?;
                }
            }
            Format::Json | Format::Ndjson => {
                if self.format == Format::Json {
                    self.out.write_all(if self.first { b"\n" } else { b",\n" })?;
                }
                match &self.with_file {
                    Some(f) => serde_json::to_writer(&mut self.out, &WithFile { file: f, record: r })?,
                    None => serde_json::to_writer(&mut self.out, r)?,
                }
                if self.format == Format::Ndjson {
                    self.out.write_all(b"\n")?;
                }
            }
        }
        self.first = false;
        Ok(())
    }

    pub fn end(&mut self) -> io::Result<()> {
        if self.format == Format::Json {
            self.out.write_all(if self.first { b"]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()
    }
}

#[derive(serde::Serialize)]
struct WithFile<'a> {
    file: &'a str,
    #[serde(flatten)]
    record: &'a Record,
}

/// Counts bytes read, for the progress bar.
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

/// Which UDP datagrams to decode.
#[derive(Debug, Clone)]
pub struct PortFilter {
    extra: Vec<u16>,
}

impl PortFilter {
    pub fn new(extra: &[u16]) -> Self {
        PortFilter {
            extra: extra.to_vec(),
        }
    }

    pub fn matches(&self, src: u16, dst: u16) -> bool {
        let hit = |p: u16| p == 137 || p == 138 || self.extra.contains(&p);
        hit(src) || hit(dst)
    }

    fn to_capture(&self) -> nbdgm_capture::PortFilter {
        nbdgm_capture::PortFilter::ports([137, 138].into_iter().chain(self.extra.iter().copied()))
    }
}

/// Decode one capture stream into `sink`. Returns Err(message) for a file-level
/// problem (not a capture, damage); records before the damage are already written.
pub fn decode_stream<R: Read, W: Write>(
    input: R,
    filter: &PortFilter,
    sink: &mut Sink<W>,
    totals: &mut Totals,
    mut progress: impl FnMut(u64),
) -> Result<(), StreamError> {
    let mut reader = nbdgm_capture::CaptureReader::new(input).map_err(StreamError::Capture)?;
    reader.set_port_filter(filter.to_capture());
    loop {
        let d = match reader.next_udp() {
            None => break,
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(StreamError::Capture(e)),
        };
        let meta = Meta {
            frame: d.frame,
            time: d.time.to_rfc3339_micros(),
            time_epoch: d.time.as_f64(),
            src: d.src,
            dst: d.dst,
        };
        let protocol = Protocol::guess(d.src.port(), d.dst.port(), &d.payload);
        let mut rec = Record::decode(meta, protocol, &d.payload);
        // Checksums are not reported: captures taken on the sending host carry
        // unfinished checksums (transmit offload), as Wireshark's default also assumes.
        let udp_warnings = nbdgm_capture::UdpWarnings {
            bad_checksum: false,
            ..d.warnings
        };
        rec.warnings.extend(udp_warnings.iter().map(str::to_owned));
        if rec.malformed.is_some() {
            totals.malformed += 1;
        }
        totals.packets += 1;
        sink.record(&rec).map_err(StreamError::Output)?;
        if totals.packets % 4096 == 0 {
            progress(totals.packets);
        }
    }
    Ok(())
}

/// Why a stream stopped early.
#[derive(Debug)]
pub enum StreamError {
    Capture(nbdgm_capture::CaptureError),
    Output(io::Error),
}

/// Run the subcommand; returns the exit code.
pub fn run(args: &Args) -> u8 {
    let stdout = io::stdout();
    let mut sink = Sink::new(BufWriter::with_capacity(1 << 16, stdout.lock()), args.format, args.verbose);
    if args.files.len() > 1 {
        sink.with_file = Some(String::new());
    }
    let filter = PortFilter::new(&args.ports);
    let mut totals = Totals::default();
    if let Err(e) = sink.begin() {
        return output_error(e);
    }
    for path in &args.files {
        if sink.with_file.is_some() {
            sink.with_file = Some(path.clone());
        }
        let count = Arc::new(AtomicU64::new(0));
        let (input, size): (Box<dyn Read>, Option<u64>) = if path == "-" {
            (Box::new(io::stdin().lock()), None)
        } else {
            match File::open(path) {
                Ok(f) => {
                    let size = f.metadata().ok().map(|m| m.len());
                    (Box::new(f), size)
                }
                Err(e) => {
                    eprintln!("nbdgm decode: {path}: cannot open: {e}");
                    totals.file_errors += 1;
                    continue;
                }
            }
        };
        let bar = match size {
            Some(n) if !args.no_progress && io::stderr().is_terminal() && n > (8 << 20) => {
                let bar = indicatif::ProgressBar::new(n);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({eta})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar.set_message(path.clone());
                Some(bar)
            }
            _ => None,
        };
        let input = Counting {
            inner: input,
            count: count.clone(),
        };
        let result = decode_stream(input, &filter, &mut sink, &mut totals, |_| {
            if let Some(b) = &bar {
                b.set_position(count.load(Ordering::Relaxed));
            }
        });
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        match result {
            Ok(()) => {}
            Err(StreamError::Capture(e)) => {
                let _ = sink.out.flush();
                eprintln!("nbdgm decode: {path}: {e}");
                totals.file_errors += 1;
            }
            Err(StreamError::Output(e)) => return output_error(e),
        }
    }
    if let Err(e) = sink.end() {
        return output_error(e);
    }
    if totals.malformed > 0 {
        eprintln!(
            "nbdgm decode: {} of {} packets malformed",
            totals.malformed, totals.packets
        );
    }
    totals.exit_code()
}

fn output_error(e: io::Error) -> u8 {
    if e.kind() == io::ErrorKind::BrokenPipe {
        // The reader went away (`| head`): not an error of ours.
        return exit::OK;
    }
    eprintln!("nbdgm decode: cannot write output: {e}");
    exit::USAGE
}
