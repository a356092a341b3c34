//! The streaming capture reader.

use std::borrow::Cow;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

mod file_header;

use file_header::{
    open_pcap, open_pcapng, read_magic, Head, PCAPNG_BOM, PCAPNG_BOM_SWAPPED, PCAPNG_PB,
    PCAPNG_SHB, PCAP_MODIFIED_BE, PCAP_MODIFIED_LE, PCAP_NSEC_BE, PCAP_NSEC_LE, PCAP_USEC_BE,
    PCAP_USEC_LE,
};

use crate::error::{CaptureError, FrameProblem, MalformedReason};
use crate::filter::PortFilter;
use crate::frame::{FrameCtx, FrameDecoder, Located};
use crate::reassembly::{ReassemblyDrops, ReassemblyLimits};
use crate::time::{Timestamp, TsConv};
use crate::udp::UdpWarnings;

/// Default size of the read buffer.
const DEFAULT_BUFFER: usize = 1 << 20;
/// Largest pcapng block accepted.
const MAX_NG_BLOCK: usize = 64 << 20;
/// Largest pcap record accepted when the header's snapshot length is smaller
/// (the limit libpcap and Wireshark apply).
const MAX_PCAP_RECORD: u32 = 262_144;
/// Largest pcap record accepted whatever the snapshot length.
const MAX_PCAP_SNAPLEN: u32 = 16 << 20;

/// How a [`CaptureReader`] decodes.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// Which datagrams to return (default: all).
    pub ports: PortFilter,
    /// IP reassembly bounds (default: on, see [`ReassemblyLimits::default`]).
    pub reassembly: ReassemblyLimits,
    /// Verify UDP checksums and report mismatches in [`UdpWarnings`] (default: true).
    pub verify_checksums: bool,
    /// Follow tunnels: GRE (with ERSPAN I/II/III), IPv4/IPv6-in-IP, VXLAN on UDP 4789
    /// and Teredo on UDP 3544 (default: true). A tunnel whose inner packet carries UDP
    /// yields the inner datagram; otherwise the outer UDP datagram is returned.
    pub tunnels: bool,
    /// Read buffer size in bytes (default 1 MiB; at least 64 KiB, at most 256 MiB;
    /// grown when a block is larger).
    pub buffer_size: usize,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            ports: PortFilter::all(),
            reassembly: ReassemblyLimits::default(),
            verify_checksums: true,
            tunnels: true,
            buffer_size: DEFAULT_BUFFER,
        }
    }
}

/// The container format of the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap format.
    Pcap {
        /// Timestamps in nanoseconds (magic `0xa1b23c4d`) rather than microseconds.
        nanosecond: bool,
        /// Written big-endian.
        big_endian: bool,
        /// Link-layer type of every record.
        linktype: u32,
        /// Snapshot length from the file header.
        snaplen: u32,
    },
    /// pcapng (draft-ietf-opsawg-pcapng).
    PcapNg,
}

/// A capture interface (pcapng Interface Description Block, or the pcap header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    /// Link-layer type.
    pub linktype: u32,
    /// Snapshot length (0: unlimited).
    pub snaplen: u32,
    ts: TsConv,
    ts_offset: i64,
}

impl Interface {
    /// Timestamp units per second (pcapng `if_tsresol`; 1 000 000 for pcap, whose
    /// nanosecond variant is converted separately).
    pub fn ts_units_per_sec(&self) -> u64 {
        self.ts.units_per_sec
    }

    /// Seconds added to every timestamp (pcapng `if_tsoffset`).
    pub fn ts_offset_secs(&self) -> i64 {
        self.ts_offset
    }
}

/// One UDP datagram found in the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// 1-based number of the frame in the file, counting every packet record
    /// (UDP or not). For a reassembled datagram, the frame that completed it.
    pub frame: u64,
    /// Capture time of that frame.
    pub time: Timestamp,
    /// pcapng interface index within its section (0 for pcap).
    pub interface: u32,
    /// Link-layer type of the frame.
    pub linktype: u32,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// Source address of the outermost Ethernet header (Ethernet link type only;
    /// `None` for other link types).
    pub src_mac: Option<[u8; 6]>,
    /// The UDP payload (without the 8-byte header): borrowed from the reader's
    /// buffer; call [`UdpDatagram::into_owned`] to keep it.
    pub payload: Cow<'a, [u8]>,
    /// Whether the datagram was reassembled from IP fragments.
    pub ip_reassembled: bool,
    /// The UDP length field.
    pub udp_length: u16,
    /// The UDP checksum field.
    pub udp_checksum: u16,
    /// Non-fatal problems (truncation, length, checksum).
    pub warnings: UdpWarnings,
}

impl UdpDatagram<'_> {
    /// A copy that owns its payload.
    pub fn into_owned(self) -> UdpDatagram<'static> {
        UdpDatagram {
            payload: Cow::Owned(self.payload.into_owned()),
            frame: self.frame,
            time: self.time,
            interface: self.interface,
            linktype: self.linktype,
            src: self.src,
            dst: self.dst,
            src_mac: self.src_mac,
            ip_reassembled: self.ip_reassembled,
            udp_length: self.udp_length,
            udp_checksum: self.udp_checksum,
            warnings: self.warnings,
        }
    }
}

/// What [`CaptureReader::next_event`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A UDP datagram that passed the port filter.
    Udp(UdpDatagram<'a>),
    /// A frame that was skipped as malformed or undecodable.
    Skipped(FrameProblem),
}

/// Counters over everything read so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packet records read (pcap records; pcapng EPB, SPB and PB).
    pub frames: u64,
    /// UDP datagrams found, before the port filter (reassembled ones included).
    pub udp: u64,
    /// UDP datagrams that passed the port filter and were returned.
    pub udp_matched: u64,
    /// Frames that decoded cleanly to something other than UDP (ARP, TCP, ...).
    pub non_udp: u64,
    /// IP fragments seen (IPv4 and IPv6).
    pub ip_fragments: u64,
    /// Datagrams completed by reassembly.
    pub reassembled: u64,
    /// Fragments that overlapped bytes already received.
    pub reassembly_overlaps: u64,
    /// Datagrams discarded by reassembly, by reason.
    pub reassembly_dropped: ReassemblyDrops,
    /// Frames skipped as malformed or undecodable (see [`Stats::malformed`]).
    pub malformed_frames: u64,
    malformed: [u64; MalformedReason::COUNT],
    /// Returned datagrams truncated by the snapshot length.
    pub udp_truncated: u64,
    /// Returned datagrams with an inconsistent UDP length field.
    pub udp_bad_length: u64,
    /// Returned datagrams with a wrong checksum (or zero over IPv6).
    pub udp_bad_checksum: u64,
}

impl Stats {
    /// Frames skipped for `reason`.
    pub fn malformed(&self, reason: MalformedReason) -> u64 {
        self.malformed.get(reason.index()).copied().unwrap_or(0)
    }

    /// The reasons frames were skipped for, with their counts (non-zero only).
    pub fn malformed_by_reason(&self) -> impl Iterator<Item = (MalformedReason, u64)> + '_ {
        MalformedReason::ALL
            .iter()
            .map(|r| (*r, self.malformed(*r)))
            .filter(|(_, n)| *n > 0)
    }

    pub(crate) fn count_malformed(&mut self, reason: MalformedReason) {
        self.malformed_frames += 1;
        if let Some(n) = self.malformed.get_mut(reason.index()) {
            *n += 1;
        }
    }
}

/// The input, after the bytes already read to identify the format. Retries
/// interrupted reads and keeps the last I/O error (pcap-parser only reports
/// that a read failed).
struct Source<R> {
    prefix: Vec<u8>,
    pos: usize,
    inner: R,
    error: Arc<Mutex<Option<io::Error>>>,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(rest) = self.prefix.get(self.pos..) {
            if !rest.is_empty() {
                let n = rest.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                    dst.copy_from_slice(src);
                }
                self.pos += n;
                if self.pos >= self.prefix.len() {
                    self.prefix = Vec::new();
                    self.pos = 0;
                }
                return Ok(n);
            }
        }
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let kind = e.kind();
                    if let Ok(mut slot) = self.error.lock() {
                        *slot = Some(e);
                    }
                    return Err(io::Error::from(kind));
                }
                ok => return ok,
            }
        }
    }
}

enum Inner<R: Read> {
    Pcap(LegacyPcapReader<Source<R>>),
    Ng(PcapNGReader<Source<R>>),
}

#[derive(Debug)]
enum Found {
    Udp(Located),
    Problem(FrameProblem),
    Fatal(CaptureError),
}

enum Step {
    /// Something to report; the block holding it is `usize` bytes long and must
    /// stay in the buffer until the next call.
    Found(Found, usize),
    End,
    Fatal(CaptureError),
}

/// Everything but the pcap-parser reader (so both can be borrowed at once).
struct State {
    opts: CaptureOptions,
    format: CaptureFormat,
    pcap_iface: Interface,
    pcap_nanos: bool,
    pcap_max_caplen: u32,
    interfaces: Vec<Interface>,
    ng_big_endian: bool,
    frame: u64,
    dec: FrameDecoder,
    io_error: Arc<Mutex<Option<io::Error>>>,
    capacity: usize,
}

/// Reads a pcap or pcapng capture from any [`Read`] and yields its UDP datagrams.
///
/// The reader streams: memory is one read buffer (1 MiB by default, grown only
/// for larger blocks) plus the reassembly buffers. Datagrams borrow the reader's
/// buffer ("lending" style), so each must be dropped (or [`UdpDatagram::into_owned`])
/// before the next call.
///
/// ```no_run
/// use nbdgm_capture::{CaptureOptions, CaptureReader, PortFilter};
///
/// let file = std::fs::File::open("capture.pcapng")?;
/// let opts = CaptureOptions { ports: PortFilter::netbios(), ..CaptureOptions::default() };
/// let mut reader = CaptureReader::with_options(file, opts)?;
/// while let Some(item) = reader.next_udp() {
///     let d = item?;
///     println!("{} {} {} -> {} {} bytes", d.frame, d.time, d.src, d.dst, d.payload.len());
/// }
/// eprintln!("{:?}", reader.stats());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CaptureReader<R: Read> {
    inner: Inner<R>,
    st: State,
    /// Bytes of the block last reported, consumed at the next call.
    pending_consume: usize,
    done: bool,
}

impl<R: Read> std::fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("format", &self.st.format)
            .field("frame", &self.st.frame)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Reads until `buf` holds `want` bytes or the input ends.
fn read_up_to<R: Read>(r: &mut R, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    while buf.len() < want {
        let have = buf.len();
        buf.resize(want, 0);
        let n = loop {
            match r.read(buf.get_mut(have..).unwrap_or(&mut [])) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match n {
            Ok(n) => {
                buf.truncate(have + n);
                if n == 0 {
                    return Ok(());
                }
            }
            Err(e) => {
                buf.truncate(have);
                return Err(e);
            }
        }
    }
    Ok(())
}

fn u32_at(d: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let b: [u8; 4] = d.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

fn u16_at(d: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    let b: [u8; 2] = d.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}

impl<R: Read> CaptureReader<R> {
    /// Opens a capture with default options (all ports, reassembly on).
    pub fn new(input: R) -> Result<Self, CaptureError> {
        Self::with_options(input, CaptureOptions::default())
    }

    /// Opens a capture: reads just enough of `input` to recognise the format and
    /// parse the file header.
    pub fn with_options(mut input: R, opts: CaptureOptions) -> Result<Self, CaptureError> {
        let mut prefix = Vec::with_capacity(64);
        let magic = read_magic(&mut input, &mut prefix)?;
        let io_error = Arc::new(Mutex::new(None));
        let capacity = opts.buffer_size.clamp(64 << 10, 256 << 20);
        let head = Head {
            input,
            prefix,
            error: io_error.clone(),
            capacity,
        };
        let opened = match magic {
            PCAPNG_SHB => open_pcapng(head)?,
            PCAP_USEC_BE | PCAP_USEC_LE | PCAP_NSEC_BE | PCAP_NSEC_LE | PCAP_MODIFIED_LE => {
                open_pcap(head, magic)?
            }
            PCAP_MODIFIED_BE => {
                return Err(CaptureError::Unsupported(
                    "big-endian \"modified\" (Kuznetzov) pcap".into(),
                ))
            }
            _ => return Err(CaptureError::NotCapture { magic }),
        };
        let dec = FrameDecoder::new(opts.clone());
        Ok(CaptureReader {
            inner: opened.inner,
            st: State {
                opts,
                format: opened.format,
                pcap_iface: opened.pcap_iface.unwrap_or(Interface {
                    linktype: 0,
                    snaplen: 0,
                    ts: TsConv::MICROS,
                    ts_offset: 0,
                }),
                pcap_nanos: opened.pcap_nanos,
                pcap_max_caplen: opened.pcap_max_caplen,
                interfaces: Vec::new(),
                ng_big_endian: opened.ng_big_endian,
                frame: 0,
                dec,
                io_error,
                capacity: opened.capacity,
            },
            pending_consume: 0,
            done: false,
        })
    }

    /// The container format.
    pub fn format(&self) -> CaptureFormat {
        self.st.format
    }

    /// The interfaces of the current pcapng section (for pcap: the one interface
    /// the file header describes).
    pub fn interfaces(&self) -> &[Interface] {
        match self.st.format {
            CaptureFormat::Pcap { .. } => std::slice::from_ref(&self.st.pcap_iface),
            CaptureFormat::PcapNg => &self.st.interfaces,
        }
    }

    /// Replaces the port filter (takes effect from the next frame).
    pub fn set_port_filter(&mut self, ports: PortFilter) {
        self.st.opts.ports = ports.clone();
        self.st.dec.set_port_filter(ports);
    }

    /// Counters so far. Once the reader has returned `None` or an error, datagrams
    /// still incomplete are counted in `reassembly_dropped.incomplete_at_end`.
    pub fn stats(&self) -> Stats {
        let mut s = self.st.dec.stats();
        s.frames = self.st.frame;
        s
    }

    /// The next UDP datagram or skipped frame; `None` at the end of the capture.
    /// After an error, the reader is finished and returns `None`.
    pub fn next_event(&mut self) -> Option<Result<Event<'_>, CaptureError>> {
        match self.advance(true)? {
            Ok(Found::Udp(loc)) => Some(Ok(Event::Udp(self.build(loc)))),
            Ok(Found::Problem(p)) => Some(Ok(Event::Skipped(p))),
            Ok(Found::Fatal(e)) | Err(e) => Some(Err(e)),
        }
    }

    /// The next UDP datagram that passes the port filter; skipped frames are only
    /// counted. `None` at the end of the capture. A truncated or corrupt file yields
    /// every datagram before the damage, then the error (which carries its offset).
    pub fn next_udp(&mut self) -> Option<Result<UdpDatagram<'_>, CaptureError>> {
        match self.advance(false)? {
            Ok(Found::Udp(loc)) => Some(Ok(self.build(loc))),
            // advance(false) skips problems.
            Ok(Found::Problem(_)) => None,
            Ok(Found::Fatal(e)) | Err(e) => Some(Err(e)),
        }
    }

    /// Calls `f` on every remaining UDP datagram that passes the port filter.
    pub fn for_each_udp<F>(&mut self, mut f: F) -> Result<(), CaptureError>
    where
        F: FnMut(&UdpDatagram<'_>),
    {
        while let Some(d) = self.next_udp() {
            f(&d?);
        }
        Ok(())
    }

    /// An iterator of owned datagrams (one payload copy each).
    pub fn into_owned_iter(self) -> OwnedUdpIter<R> {
        OwnedUdpIter { reader: self }
    }

    fn build(&self, loc: Located) -> UdpDatagram<'_> {
        let buf: &[u8] = if loc.reassembled {
            self.st.dec.reassembled_output()
        } else {
            match &self.inner {
                Inner::Pcap(r) => r.data(),
                Inner::Ng(r) => r.data(),
            }
        };
        loc.build(buf)
    }

    /// Reads records until one yields something to report (problems only when
    /// `problems`).
    fn advance(&mut self, problems: bool) -> Option<Result<Found, CaptureError>> {
        if self.pending_consume > 0 {
            let n = std::mem::take(&mut self.pending_consume);
            match &mut self.inner {
                Inner::Pcap(r) => r.consume_noshift(n),
                Inner::Ng(r) => r.consume_noshift(n),
            }
        }
        if self.done {
            return None;
        }
        loop {
            let step = match &mut self.inner {
                Inner::Pcap(r) => step(r, &mut self.st),
                Inner::Ng(r) => step(r, &mut self.st),
            };
            match step {
                Step::Found(Found::Problem(_), len) if !problems => match &mut self.inner {
                    Inner::Pcap(r) => r.consume_noshift(len),
                    Inner::Ng(r) => r.consume_noshift(len),
                },
                Step::Found(Found::Fatal(e), _) | Step::Fatal(e) => {
                    self.finish();
                    return Some(Err(e));
                }
                Step::Found(found, len) => {
                    self.pending_consume = len;
                    return Some(Ok(found));
                }
                Step::End => {
                    self.finish();
                    return None;
                }
            }
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.st.dec.finish();
    }
}

/// Iterator of owned datagrams; see [`CaptureReader::into_owned_iter`].
#[derive(Debug)]
pub struct OwnedUdpIter<R: Read> {
    reader: CaptureReader<R>,
}

impl<R: Read> OwnedUdpIter<R> {
    /// The reader's counters so far.
    pub fn stats(&self) -> Stats {
        self.reader.stats()
    }
}

impl<R: Read> Iterator for OwnedUdpIter<R> {
    type Item = Result<UdpDatagram<'static>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.reader
            .next_udp()
            .map(|r| r.map(UdpDatagram::into_owned))
    }
}

/// pcap-parser's error, without the borrow.
#[derive(Clone, Copy)]
enum ReadErr {
    Eof,
    Incomplete,
    UnexpectedEof,
    BufferTooSmall,
    Read,
    Parse,
}

fn classify(e: &PcapError<&[u8]>) -> ReadErr {
    match e {
        PcapError::Eof => ReadErr::Eof,
        PcapError::Incomplete(_) => ReadErr::Incomplete,
        PcapError::UnexpectedEof => ReadErr::UnexpectedEof,
        PcapError::BufferTooSmall => ReadErr::BufferTooSmall,
        PcapError::ReadError => ReadErr::Read,
        _ => ReadErr::Parse,
    }
}

/// Advances `rdr` until a record yields something, the input ends, or a fatal error.
fn step<I: PcapReaderIterator>(rdr: &mut I, st: &mut State) -> Step {
    loop {
        let base = rdr.data().as_ptr() as usize;
        let offset = rdr.consumed() as u64;
        // pcap-parser trusts the block length more than it should (a Process
        // Information Block of 4 to 11 bytes underflows a subtraction in 0.17):
        // check the framing of every pcapng block before it sees one.
        if let Some(e) = st.ng_framing_error(rdr.data(), rdr.reader_exhausted(), offset) {
            return Step::Fatal(e);
        }
        let outcome = match rdr.next() {
            Ok((len, block)) => Ok((len, st.on_block(block, base, offset))),
            Err(e) => Err(classify(&e)),
        };
        if let Err(
            ReadErr::Incomplete | ReadErr::BufferTooSmall | ReadErr::UnexpectedEof | ReadErr::Parse,
        ) = outcome
        {
            // A complete pcapng block (its two lengths agree and it is all in the
            // buffer) that pcap-parser rejects has an invalid body: skip it.
            if let Some(len) = st.intact_ng_block(rdr.data()) {
                if let Some(found) = st.bad_block(rdr.data()) {
                    return Step::Found(found, len);
                }
                rdr.consume_noshift(len);
                continue;
            }
        }
        match outcome {
            Ok((len, None)) => rdr.consume_noshift(len),
            Ok((len, Some(found))) => return Step::Found(found, len),
            Err(ReadErr::Eof) => return Step::End,
            Err(ReadErr::Incomplete) => {
                let before = rdr.data().len();
                if rdr.refill().is_err() {
                    return Step::Fatal(st.io_error());
                }
                if !rdr.reader_exhausted() && rdr.data().len() == before {
                    // The buffer is full and still holds no complete block.
                    if let Err(e) = st.grow(rdr, st.capacity.saturating_mul(2)) {
                        return Step::Fatal(e);
                    }
                }
            }
            Err(ReadErr::BufferTooSmall) => {
                // Doubling (rather than jumping to the announced size) keeps a
                // corrupt length at the end of a file from allocating much.
                if let Err(e) = st.grow(rdr, st.capacity.saturating_mul(2)) {
                    return Step::Fatal(e);
                }
                if rdr.refill().is_err() {
                    return Step::Fatal(st.io_error());
                }
            }
            Err(ReadErr::Read) => return Step::Fatal(st.io_error()),
            Err(kind @ (ReadErr::UnexpectedEof | ReadErr::Parse)) => {
                let truncated = matches!(kind, ReadErr::UnexpectedEof);
                return Step::Fatal(st.damage(rdr.data(), offset, truncated));
            }
        }
    }
}

impl State {
    fn io_error(&self) -> CaptureError {
        let e = self.io_error.lock().ok().and_then(|mut slot| slot.take());
        CaptureError::Io(e.unwrap_or_else(|| io::Error::other("read error")))
    }

    /// Size of the block or record at the start of `data`, if its header is there.
    fn block_size(&self, data: &[u8]) -> usize {
        match self.format {
            CaptureFormat::Pcap { big_endian, .. } => {
                u32_at(data, 8, big_endian).map_or(0, |c| (c as usize).saturating_add(16))
            }
            CaptureFormat::PcapNg => {
                let be = self.ng_endianness(data);
                u32_at(data, 4, be).map_or(0, |l| l as usize)
            }
        }
    }

    /// The byte order of the pcapng block at the start of `data` (a section header
    /// announces its own).
    fn ng_endianness(&self, data: &[u8]) -> bool {
        if u32_at(data, 0, true) == Some(PCAPNG_SHB) {
            match u32_at(data, 8, true) {
                Some(PCAPNG_BOM) => return true,
                Some(PCAPNG_BOM_SWAPPED) => return false,
                _ => {}
            }
        }
        self.ng_big_endian
    }

    fn grow<I: PcapReaderIterator>(
        &mut self,
        rdr: &mut I,
        want: usize,
    ) -> Result<(), CaptureError> {
        let limit = match self.format {
            CaptureFormat::Pcap { .. } => self.pcap_max_caplen as usize + 16,
            CaptureFormat::PcapNg => MAX_NG_BLOCK,
        };
        let need = self.block_size(rdr.data());
        if need > limit {
            return Err(CaptureError::Corrupt {
                offset: rdr.consumed() as u64,
                reason: format!("block or record length {need} exceeds the limit of {limit} bytes"),
            });
        }
        let max = limit.saturating_add(64 << 10).max(self.capacity);
        let new = want.clamp(self.capacity, max);
        if new <= self.capacity {
            return Err(CaptureError::Corrupt {
                offset: rdr.consumed() as u64,
                reason: "block or record does not fit in the read buffer".into(),
            });
        }
        rdr.grow(new);
        self.capacity = new;
        Ok(())
    }

    /// Checks the header of the pcapng block at the start of `data` (the file's
    /// offset `offset`) before pcap-parser reads it: a total length below 12 (the
    /// type and both length fields) or not a multiple of 4 leaves no way to find
    /// the next block and is [`CaptureError::Corrupt`]; a length running past the
    /// end of the input (`exhausted`: nothing more to read) is
    /// [`CaptureError::Truncated`]. `None` when the header is sound or not yet all
    /// in the buffer (the next read brings the rest), and for pcap.
    fn ng_framing_error(&self, data: &[u8], exhausted: bool, offset: u64) -> Option<CaptureError> {
        if !matches!(self.format, CaptureFormat::PcapNg) {
            return None;
        }
        // A section header announces its byte order after its length field.
        if u32_at(data, 0, false) == Some(PCAPNG_SHB) && data.len() < 12 {
            return None;
        }
        let be = self.ng_endianness(data);
        let btype = u32_at(data, 0, be)?;
        let len = u32_at(data, 4, be)?;
        let problem = if len < 12 {
            "below the minimum of 12"
        } else if len % 4 != 0 {
            "not a multiple of 4"
        } else if exhausted && len as usize > data.len() {
            return Some(CaptureError::Truncated {
                offset,
                what: "incomplete pcapng block",
            });
        } else {
            return None;
        };
        Some(CaptureError::Corrupt {
            offset,
            reason: format!("pcapng block (type 0x{btype:08x}) total length {len} is {problem}"),
        })
    }

    /// If `data` starts with a complete pcapng block (lengths agree, block in the
    /// buffer), its length.
    fn intact_ng_block(&self, data: &[u8]) -> Option<usize> {
        if !matches!(self.format, CaptureFormat::PcapNg) {
            return None;
        }
        let be = self.ng_endianness(data);
        let len = u32_at(data, 4, be)? as usize;
        if len < 12 || len & 3 != 0 || len > data.len() {
            return None;
        }
        (u32_at(data, len - 4, be)? as usize == len).then_some(len)
    }

    /// Accounts for a pcapng block with an invalid body. Packet blocks count as
    /// frames and are reported; a broken interface description keeps the
    /// numbering of the interfaces after it.
    fn bad_block(&mut self, data: &[u8]) -> Option<Found> {
        let be = self.ng_endianness(data);
        match u32_at(data, 0, be)? {
            0x0000_0006 | 0x0000_0003 | PCAPNG_PB => {
                self.frame += 1;
                Some(self.problem(0, Timestamp::default(), MalformedReason::BadBlock))
            }
            0x0000_0001 => {
                self.interfaces.push(Interface {
                    linktype: u32::MAX,
                    snaplen: 0,
                    ts: TsConv::MICROS,
                    ts_offset: 0,
                });
                None
            }
            _ => None,
        }
    }

    fn damage(&self, data: &[u8], offset: u64, truncated: bool) -> CaptureError {
        if truncated {
            let what = match self.format {
                CaptureFormat::Pcap { .. } => "incomplete packet record",
                CaptureFormat::PcapNg => "incomplete pcapng block",
            };
            return CaptureError::Truncated { offset, what };
        }
        let reason = match self.format {
            CaptureFormat::Pcap { .. } => "invalid packet record".to_string(),
            CaptureFormat::PcapNg => {
                let be = self.ng_endianness(data);
                match (u32_at(data, 0, be), u32_at(data, 4, be)) {
                    (Some(t), Some(l)) => {
                        format!("invalid pcapng block (type 0x{t:08x}, length {l})")
                    }
                    _ => "invalid pcapng block".to_string(),
                }
            }
        };
        CaptureError::Corrupt { offset, reason }
    }

    fn problem(&mut self, linktype: u32, time: Timestamp, reason: MalformedReason) -> Found {
        Found::Problem(self.dec.problem(self.frame, linktype, time, reason))
    }

    /// Handles one parsed block; `base` is the address of the start of the read
    /// buffer's data, `offset` the block's offset in the file.
    fn on_block(&mut self, block: PcapBlockOwned<'_>, base: usize, offset: u64) -> Option<Found> {
        match block {
            PcapBlockOwned::LegacyHeader(_) => None,
            PcapBlockOwned::Legacy(b) => {
                if b.caplen > self.pcap_max_caplen {
                    return Some(Found::Fatal(CaptureError::Corrupt {
                        offset,
                        reason: format!(
                            "packet record captured length {} exceeds the limit of {}",
                            b.caplen, self.pcap_max_caplen
                        ),
                    }));
                }
                self.frame += 1;
                let time = Timestamp::from_pcap(b.ts_sec, b.ts_usec, self.pcap_nanos);
                let iface = self.pcap_iface;
                self.packet(iface.linktype, 0, b.data, time, base)
            }
            PcapBlockOwned::NG(block) => match block {
                Block::EnhancedPacket(epb) => {
                    self.frame += 1;
                    let Some(iface) = self.interfaces.get(epb.if_id as usize).copied() else {
                        return Some(self.problem(
                            0,
                            Timestamp::default(),
                            MalformedReason::UnknownInterface,
                        ));
                    };
                    let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                    let time = Timestamp::from_units(ts, iface.ts, iface.ts_offset);
                    let caplen = (epb.caplen as usize).min(epb.data.len());
                    let data = epb.data.get(..caplen).unwrap_or(&[]);
                    self.packet(iface.linktype, epb.if_id, data, time, base)
                }
                Block::SimplePacket(spb) => {
                    self.frame += 1;
                    let Some(iface) = self.interfaces.first().copied() else {
                        return Some(self.problem(
                            0,
                            Timestamp::default(),
                            MalformedReason::UnknownInterface,
                        ));
                    };
                    let mut len = (spb.origlen as usize).min(spb.data.len());
                    if iface.snaplen != 0 {
                        len = len.min(iface.snaplen as usize);
                    }
                    let data = spb.data.get(..len).unwrap_or(&[]);
                    // A simple packet block carries no timestamp.
                    self.packet(iface.linktype, 0, data, Timestamp::default(), base)
                }
                Block::InterfaceDescription(idb) => {
                    let ts = TsConv::from_tsresol(idb.if_tsresol).unwrap_or(TsConv::MICROS);
                    self.interfaces.push(Interface {
                        linktype: (idb.linktype.0 as u32) & 0xFFFF,
                        snaplen: idb.snaplen,
                        ts,
                        ts_offset: idb.if_tsoffset,
                    });
                    None
                }
                Block::SectionHeader(shb) => {
                    self.interfaces.clear();
                    self.ng_big_endian = shb.big_endian();
                    None
                }
                Block::Unknown(ub) => {
                    // pcap-parser reads the type of unknown blocks little-endian.
                    let pb_type = if self.ng_big_endian {
                        PCAPNG_PB.swap_bytes()
                    } else {
                        PCAPNG_PB
                    };
                    if ub.block_type == pb_type {
                        self.frame += 1;
                        self.legacy_packet_block(ub.data, base)
                    } else {
                        None
                    }
                }
                _ => None,
            },
        }
    }

    /// The obsolete pcapng Packet Block (type 2): interface id (16 bits), drops
    /// count (16), timestamp (2 x 32), captured and original lengths, data.
    fn legacy_packet_block(&mut self, body: &[u8], base: usize) -> Option<Found> {
        let be = self.ng_big_endian;
        let fields = (
            u16_at(body, 0, be),
            u32_at(body, 4, be),
            u32_at(body, 8, be),
            u32_at(body, 12, be),
        );
        let (Some(if_id), Some(ts_high), Some(ts_low), Some(caplen)) = fields else {
            return Some(self.problem(0, Timestamp::default(), MalformedReason::BadBlock));
        };
        let Some(iface) = self.interfaces.get(usize::from(if_id)).copied() else {
            return Some(self.problem(0, Timestamp::default(), MalformedReason::UnknownInterface));
        };
        let ts = (u64::from(ts_high) << 32) | u64::from(ts_low);
        let time = Timestamp::from_units(ts, iface.ts, iface.ts_offset);
        let Some(data) = body
            .get(20..)
            .and_then(|d| d.get(..(caplen as usize).min(d.len())))
        else {
            return Some(self.problem(iface.linktype, time, MalformedReason::BadBlock));
        };
        self.packet(iface.linktype, u32::from(if_id), data, time, base)
    }

    /// Decodes one frame.
    fn packet(
        &mut self,
        linktype: u32,
        interface: u32,
        data: &[u8],
        time: Timestamp,
        base: usize,
    ) -> Option<Found> {
        let ctx = FrameCtx {
            frame: self.frame,
            time,
            interface,
            linktype,
        };
        Some(match self.dec.locate(&ctx, data, base)? {
            Ok(loc) => Found::Udp(loc),
            Err(p) => Found::Problem(p),
        })
    }
}
