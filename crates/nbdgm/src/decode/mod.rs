//! `nbdgm decode`: read captures, decode every NetBIOS datagram and name-service
//! packet, print text, JSON or NDJSON (schema: `docs/json-schema.md`).

pub mod direct;
pub mod json;
pub mod record;
pub mod text;

use crate::exit;
use clap::{Args as ClapArgs, ValueEnum};
pub use nbdgm_capture::PortFilter;
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
    /// Decoding threads (default: the number of CPUs, at most 8). Output order is the
    /// capture's order whatever the number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(usize))]
    pub threads: Option<usize>,
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

/// How one record is rendered.
#[derive(Debug, Clone)]
pub struct Style {
    pub format: Format,
    pub verbose: bool,
    /// Name the file in every record (several inputs).
    pub file: Option<Arc<str>>,
}

impl Style {
    /// Append one record: text with its newline(s), NDJSON with its newline, JSON
    /// without separators (the sink adds them).
    pub fn render(&self, r: &Record, out: &mut Vec<u8>) {
        match self.format {
            Format::Text => {
                if let Some(f) = &self.file {
                    out.extend_from_slice(f.as_bytes());
                    out.extend_from_slice(b": ");
                }
                if self.verbose {
                    out.extend_from_slice(text::tree(r).as_bytes());
                } else {
                    text::summary_into(out, r);
                    out.push(b'\n');
                }
            }
            Format::Json | Format::Ndjson => {
                // The bytes of `serde_json::to_writer`, written field by field.
                match &self.file {
                    Some(f) => direct::write_record_with_file(out, f, r),
                    None => direct::write_record(out, r),
                }
                if self.format == Format::Ndjson {
                    out.push(b'\n');
                }
            }
        }
    }
}

/// Writes rendered records, adding the JSON array's brackets and commas.
pub struct Sink<W: Write> {
    out: W,
    style: Style,
    first: bool,
    scratch: Vec<u8>,
}

impl<W: Write> Sink<W> {
    pub fn new(out: W, format: Format, verbose: bool) -> Self {
        Sink {
            out,
            style: Style {
                format,
                verbose,
                file: None,
            },
            first: true,
            scratch: Vec::with_capacity(1024),
        }
    }

    pub fn style(&self) -> &Style {
        &self.style
    }

    pub fn set_file(&mut self, file: Option<&str>) {
        self.style.file = file.map(Arc::from);
    }

    pub fn begin(&mut self) -> io::Result<()> {
        if self.style.format == Format::Json {
            self.out.write_all(b"[")?;
        }
        Ok(())
    }

    pub fn record(&mut self, r: &Record) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        self.style.render(r, &mut buf);
        let res = self.rendered(&buf);
        self.scratch = buf;
        res
    }

    /// Write one record rendered by [`Style::render`].
    pub fn rendered(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.style.format == Format::Json {
            self.out
                .write_all(if self.first { b"\n" } else { b",\n" })?;
        }
        self.first = false;
        self.out.write_all(bytes)
    }

    /// Write records rendered one after the other into `bytes`, record `i` ending at
    /// `ends[i]`: one write unless the JSON array needs its separators.
    fn rendered_batch(&mut self, bytes: &[u8], ends: &[usize]) -> io::Result<()> {
        if self.style.format != Format::Json {
            self.first &= ends.is_empty();
            return self.out.write_all(bytes);
        }
        let mut from = 0;
        for &end in ends {
            self.rendered(bytes.get(from..end).unwrap_or_default())?;
            from = end;
        }
        Ok(())
    }

    pub fn end(&mut self) -> io::Result<()> {
        if self.style.format == Format::Json {
            self.out
                .write_all(if self.first { b"]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()
    }
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

/// The ports to decode: 137 and 138, plus `extra`.
pub fn port_filter(extra: &[u16]) -> PortFilter {
    PortFilter::ports([137, 138].into_iter().chain(extra.iter().copied()))
}

/// One UDP datagram taken out of the capture, owned so it can cross threads; its
/// payload is `end - len .. end` of its batch's byte buffer.
struct Packet {
    frame: u64,
    time: nbdgm_capture::Timestamp,
    src: std::net::SocketAddr,
    dst: std::net::SocketAddr,
    end: usize,
    len: usize,
    warnings: nbdgm_capture::UdpWarnings,
}

/// Packets for one worker, their payloads in one buffer (two allocations per batch,
/// not one per packet).
struct Batch {
    seq: u64,
    packets: Vec<Packet>,
    payloads: Vec<u8>,
}

/// Decode one datagram into its record.
fn decode_packet(
    frame: u64,
    time: nbdgm_capture::Timestamp,
    src: std::net::SocketAddr,
    dst: std::net::SocketAddr,
    payload: &[u8],
    warnings: nbdgm_capture::UdpWarnings,
) -> Record {
    let meta = Meta {
        frame,
        time: time.to_rfc3339_micros(),
        time_epoch: time.as_f64(),
        src,
        dst,
    };
    let protocol = Protocol::guess(src.port(), dst.port(), payload);
    let mut rec = Record::decode(meta, protocol, payload);
    // Checksums are not reported: captures taken on the sending host carry
    // unfinished checksums (transmit offload), as Wireshark's default also assumes.
    let udp_warnings = nbdgm_capture::UdpWarnings {
        bad_checksum: false,
        ..warnings
    };
    rec.warnings.extend(udp_warnings.iter().map(str::to_owned));
    rec
}

/// Packets per batch handed to a worker.
const BATCH: usize = 1024;

/// Decode one capture stream into `sink`, on `threads` threads (1: all on the caller's).
/// Output order is the capture's order whatever the thread count. Returns an error
/// for a file-level problem (not a capture, damage); every record before the damage
/// has been written by then.
pub fn decode_stream<R: Read, W: Write>(
    input: R,
    filter: &PortFilter,
    sink: &mut Sink<W>,
    totals: &mut Totals,
    threads: usize,
    mut progress: impl FnMut(u64),
) -> Result<(), StreamError> {
    let mut reader = nbdgm_capture::CaptureReader::new(input).map_err(StreamError::Capture)?;
    reader.set_port_filter(filter.clone());
    if threads <= 1 {
        loop {
            let d = match reader.next_udp() {
                None => return Ok(()),
                Some(Ok(d)) => d,
                Some(Err(e)) => return Err(StreamError::Capture(e)),
            };
            let rec = decode_packet(d.frame, d.time, d.src, d.dst, &d.payload, d.warnings);
            if rec.malformed.is_some() {
                totals.malformed += 1;
            }
            totals.packets += 1;
            sink.record(&rec).map_err(StreamError::Output)?;
            if totals.packets.is_multiple_of(4096) {
                progress(totals.packets);
            }
        }
    }
    parallel(&mut reader, sink, totals, threads, &mut progress)
}

/// A rendered batch: the bytes of each record and how many were malformed.
struct Done {
    seq: u64,
    bytes: Vec<u8>,
    ends: Vec<usize>,
    malformed: u64,
}

/// Batches of packets sent to the workers, numbered in capture order.
type Jobs = std::sync::mpsc::SyncSender<Batch>;

/// Emptied buffers handed back for the next batch, so that a run allocates (and the
/// kernel zeroes) a batch's buffers once instead of once per batch. Each list holds
/// at most the buffers in flight (`2 × threads` plus one per worker).
#[derive(Default)]
struct Spare {
    /// Input batches the workers have decoded, for the reading thread.
    batches: std::sync::Mutex<Vec<Batch>>,
    /// Output buffers the writer has written, for the workers.
    outputs: std::sync::Mutex<Vec<(Vec<u8>, Vec<usize>)>>,
}

impl Spare {
    fn batch(&self, seq: u64) -> Batch {
        let spare = self.batches.lock().ok().and_then(|mut v| v.pop());
        match spare {
            Some(mut b) => {
                b.seq = seq;
                b.packets.clear();
                b.payloads.clear();
                b
            }
            None => Batch {
                seq,
                packets: Vec::with_capacity(BATCH),
                payloads: Vec::with_capacity(BATCH * 256),
            },
        }
    }

    fn output(&self) -> (Vec<u8>, Vec<usize>) {
        let spare = self.outputs.lock().ok().and_then(|mut v| v.pop());
        match spare {
            Some((mut bytes, mut ends)) => {
                bytes.clear();
                ends.clear();
                (bytes, ends)
            }
            None => (Vec::with_capacity(BATCH * 800), Vec::with_capacity(BATCH)),
        }
    }

    fn give_batch(&self, b: Batch) {
        if let Ok(mut v) = self.batches.lock() {
            v.push(b);
        }
    }

    fn give_output(&self, bytes: Vec<u8>, ends: Vec<usize>) {
        if let Ok(mut v) = self.outputs.lock() {
            v.push((bytes, ends));
        }
    }
}

/// The reading thread batches packets to `threads` workers, which decode and render
/// them; batches are written back in sequence. At most `2 × threads` batches are in
/// flight, so memory stays bounded whatever the capture size.
fn parallel<R: Read, W: Write>(
    reader: &mut nbdgm_capture::CaptureReader<R>,
    sink: &mut Sink<W>,
    totals: &mut Totals,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<(), StreamError> {
    use std::sync::{mpsc, Mutex};
    let style = sink.style().clone();
    let (job_tx, job_rx) = mpsc::sync_channel::<Batch>(threads);
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let spare = Spare::default();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let job_rx = &job_rx;
            let style = style.clone();
            let spare = &spare;
            scope.spawn(move || render_batches(job_rx, &done_tx, &style, spare));
        }
        drop(done_tx);
        let mut out = InOrder {
            done_rx: &done_rx,
            pending: std::collections::BTreeMap::new(),
            written: 0,
            spare: &spare,
        };
        feed(reader, job_tx, &mut out, sink, totals, threads, progress)
    })
}

/// A worker: decode and render the batches it takes until the jobs end (or nobody
/// waits for the results any more).
fn render_batches(
    jobs: &std::sync::Mutex<std::sync::mpsc::Receiver<Batch>>,
    done_tx: &std::sync::mpsc::Sender<Done>,
    style: &Style,
    spare: &Spare,
) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(batch) = job else { return };
        let (bytes, ends) = spare.output();
        let mut done = Done {
            seq: batch.seq,
            bytes,
            ends,
            malformed: 0,
        };
        for p in &batch.packets {
            let payload = batch.payloads.get(p.end - p.len..p.end).unwrap_or_default();
            let rec = decode_packet(p.frame, p.time, p.src, p.dst, payload, p.warnings);
            done.malformed += u64::from(rec.malformed.is_some());
            style.render(&rec, &mut done.bytes);
            done.ends.push(done.bytes.len());
        }
        spare.give_batch(batch);
        if done_tx.send(done).is_err() {
            return;
        }
    }
}

/// The reading thread: batch the capture's packets to the workers, writing finished
/// batches as they come, then wait for the rest. `jobs` is dropped on return, which
/// ends the workers (also on an early output error).
fn feed<R: Read, W: Write>(
    reader: &mut nbdgm_capture::CaptureReader<R>,
    jobs: Jobs,
    out: &mut InOrder<'_>,
    sink: &mut Sink<W>,
    totals: &mut Totals,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<(), StreamError> {
    let max_in_flight = (2 * threads) as u64;
    let mut sent = 0u64;
    let mut batch = out.spare.batch(0);
    let mut result = Ok(());
    loop {
        let d = match reader.next_udp() {
            None => break,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                result = Err(StreamError::Capture(e));
                break;
            }
        };
        batch.payloads.extend_from_slice(&d.payload);
        batch.packets.push(Packet {
            frame: d.frame,
            time: d.time,
            src: d.src,
            dst: d.dst,
            end: batch.payloads.len(),
            len: d.payload.len(),
            warnings: d.warnings,
        });
        if batch.packets.len() == BATCH {
            // Wait for room first, so that the next batch can reuse a written one.
            while sent - out.written >= max_in_flight {
                out.drain(true, sink, totals)?;
            }
            let full = std::mem::replace(&mut batch, out.spare.batch(sent + 1));
            if jobs.send(full).is_err() {
                break;
            }
            sent += 1;
            out.drain(false, sink, totals)?;
            progress(totals.packets);
        }
    }
    if !batch.packets.is_empty() && jobs.send(batch).is_ok() {
        sent += 1;
    }
    drop(jobs);
    while out.written < sent {
        let before = out.written;
        out.drain(true, sink, totals)?;
        if out.written == before {
            break; // workers gone
        }
    }
    result
}

/// The workers' finished batches, written back in sequence.
struct InOrder<'a> {
    done_rx: &'a std::sync::mpsc::Receiver<Done>,
    /// Finished batches waiting for an earlier one.
    pending: std::collections::BTreeMap<u64, Done>,
    /// Batches written.
    written: u64,
    /// Where written buffers go back to.
    spare: &'a Spare,
}

impl InOrder<'_> {
    /// Write every finished batch that is next in sequence. With `block`, first wait
    /// until at least one batch has been written (or the workers are gone).
    fn drain<W: Write>(
        &mut self,
        block: bool,
        sink: &mut Sink<W>,
        totals: &mut Totals,
    ) -> Result<(), StreamError> {
        let start = self.written;
        loop {
            while let Some(done) = self.pending.remove(&self.written) {
                sink.rendered_batch(&done.bytes, &done.ends)
                    .map_err(StreamError::Output)?;
                totals.packets += done.ends.len() as u64;
                totals.malformed += done.malformed;
                self.written += 1;
                self.spare.give_output(done.bytes, done.ends);
            }
            let next = if block && self.written == start {
                self.done_rx.recv().ok()
            } else {
                self.done_rx.try_recv().ok()
            };
            match next {
                Some(d) => {
                    self.pending.insert(d.seq, d);
                }
                None => return Ok(()),
            }
        }
    }
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
    let mut sink = Sink::new(
        BufWriter::with_capacity(1 << 16, stdout.lock()),
        args.format,
        args.verbose,
    );
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)));
    let filter = port_filter(&args.ports);
    let mut totals = Totals::default();
    if let Err(e) = sink.begin() {
        return output_error(e);
    }
    for path in &args.files {
        if args.files.len() > 1 {
            sink.set_file(Some(path));
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
        let result = decode_stream(input, &filter, &mut sink, &mut totals, threads, |_| {
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
