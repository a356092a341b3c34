//! Live capture (cargo feature `live`): libpcap through the `pcap` crate, with a
//! kernel BPF filter so that only the NetBIOS (RFC 1002 §4.2, §4.4), mDNS
//! (RFC 6762) and LLMNR (RFC 4795) ports reach user space; frames are decoded by
//! [`FrameDecoder`].

use std::time::Duration;

use thiserror::Error;

use crate::filter::PortFilter;
use crate::frame::FrameDecoder;
use crate::linktype::LINKTYPE_ETHERNET;
use crate::reader::{CaptureOptions, Event, Stats, UdpDatagram};
use crate::reassembly::ReassemblyLimits;
use crate::time::Timestamp;

/// The UDP ports captured by default: NetBIOS name (137) and datagram (138)
/// services, mDNS (5353), LLMNR (5355).
pub const DEFAULT_LIVE_PORTS: [u16; 4] = [137, 138, 5353, 5355];

/// How [`LiveCapture::open`] captures.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Most bytes kept of each frame (default 65535).
    pub snaplen: u32,
    /// Promiscuous mode (default true).
    pub promiscuous: bool,
    /// Kernel capture buffer in bytes (default 32 MiB).
    pub buffer_size: u32,
    /// Deliver each packet as it arrives instead of in blocks (default false).
    /// On Linux, libpcap then uses a TPACKET_V2 ring of snaplen-sized slots (about
    /// 500 with the defaults), which overflows at high rates; without it, the
    /// TPACKET_V3 ring packs frames and a block is delivered when full or after
    /// the read timeout (the latency bound).
    pub immediate: bool,
    /// Longest wait for a packet in [`LiveCapture::next_batch`] (default 100 ms;
    /// 1 ms to 60 s).
    pub read_timeout: Duration,
    /// UDP ports (source or destination) captured by the kernel filter and returned
    /// (default [`DEFAULT_LIVE_PORTS`]; 1 to 64 ports).
    pub ports: Vec<u16>,
    /// IP reassembly bounds (default: on, see [`ReassemblyLimits::default`]).
    pub reassembly: ReassemblyLimits,
    /// Verify UDP checksums (default true; transmit checksum offload makes outgoing
    /// datagrams of the capturing host look bad).
    pub verify_checksums: bool,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            snaplen: 65_535,
            promiscuous: true,
            buffer_size: 32 << 20,
            immediate: false,
            read_timeout: Duration::from_millis(100),
            ports: DEFAULT_LIVE_PORTS.to_vec(),
            reassembly: ReassemblyLimits::default(),
            verify_checksums: true,
        }
    }
}

/// Why a live capture could not be opened or read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The interface does not exist (in this network namespace).
    #[error("no such network interface: {iface:?} (see `ip link` for the interfaces)")]
    NoSuchInterface {
        /// The interface name asked for.
        iface: String,
    },
    /// The process may not capture.
    #[error(
        "permission denied capturing on {iface:?}: live capture needs root or the CAP_NET_RAW \
         capability (e.g. `sudo setcap cap_net_raw,cap_net_admin+eip BINARY`) (libpcap: {detail})"
    )]
    PermissionDenied {
        /// The interface name.
        iface: String,
        /// libpcap's message.
        detail: String,
    },
    /// The options are out of range.
    #[error("invalid live capture options: {0}")]
    Options(String),
    /// The kernel filter could not be compiled or attached.
    #[error("cannot set the capture filter {filter:?} on {iface:?}: {detail}")]
    Filter {
        /// The interface name.
        iface: String,
        /// The BPF expression.
        filter: String,
        /// libpcap's message.
        detail: String,
    },
    /// Any other failure to open the capture.
    #[error("cannot capture on {iface:?}: {detail}")]
    Open {
        /// The interface name.
        iface: String,
        /// libpcap's message.
        detail: String,
    },
    /// Reading packets or statistics failed.
    #[error("capture on {iface:?} failed: {detail}")]
    Read {
        /// The interface name.
        iface: String,
        /// libpcap's message.
        detail: String,
    },
}

/// Counters of a live capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Packets that passed the kernel filter (libpcap `ps_recv`).
    pub received: u64,
    /// Packets that passed the filter but were dropped because the kernel buffer
    /// was full (`ps_drop`).
    pub dropped: u64,
    /// Packets dropped by the interface or its driver (`ps_ifdrop`).
    pub if_dropped: u64,
    /// The decoder's counters (`frames`: frames read by user space).
    pub decoder: Stats,
}

/// A 32-bit libpcap counter extended to 64 bits across wrap-arounds.
#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    last: u32,
    total: u64,
}

impl Counter {
    fn update(&mut self, now: u32) -> u64 {
        self.total += u64::from(now.wrapping_sub(self.last));
        self.last = now;
        self.total
    }
}

/// The BPF expression for `ports`: UDP from or to one of them, IPv4 fragments with
/// a non-zero offset (they carry no UDP header; reassembly needs them) and IPv6
/// fragments; with `vlan`, the same inside 802.1Q tags too. IPv6 UDP behind other
/// extension headers and tunnelled traffic do not pass.
pub fn bpf_filter(ports: &[u16], vlan: bool) -> String {
    let ports: Vec<String> = ports.iter().map(|p| format!("port {p}")).collect();
    let inner = format!(
        "(udp and ({})) or (ip and ip[6:2] & 0x1fff != 0) or (ip6 and ip6[6] == 44)",
        ports.join(" or ")
    );
    if vlan {
        // `vlan` shifts the offsets for the rest of the expression, so it comes last.
        format!("({inner}) or (vlan and ({inner}))")
    } else {
        inner
    }
}

/// What libpcap's message says went wrong.
fn classify_open_error(iface: &str, detail: String) -> LiveError {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("operation not permitted") {
        LiveError::PermissionDenied {
            iface: iface.to_string(),
            detail,
        }
    } else if lower.contains("no such device") {
        LiveError::NoSuchInterface {
            iface: iface.to_string(),
        }
    } else {
        LiveError::Open {
            iface: iface.to_string(),
            detail,
        }
    }
}

fn check_options(iface: &str, opts: &LiveOptions) -> Result<(), LiveError> {
    if iface.is_empty()
        || iface.len() > 15
        || iface.contains(['/', '\0'])
        || iface.contains(char::is_whitespace)
    {
        return Err(LiveError::Options(format!(
            "{iface:?} is not an interface name (1 to 15 characters, no '/' or spaces)"
        )));
    }
    if opts.ports.is_empty() || opts.ports.len() > 64 {
        return Err(LiveError::Options(format!(
            "{} ports given; 1 to 64 allowed",
            opts.ports.len()
        )));
    }
    if !(Duration::from_millis(1)..=Duration::from_secs(60)).contains(&opts.read_timeout) {
        return Err(LiveError::Options(
            "the read timeout must be between 1 ms and 60 s".into(),
        ));
    }
    if opts.snaplen < 128 || opts.snaplen > 262_144 {
        return Err(LiveError::Options(format!(
            "snaplen {} is outside 128..=262144",
            opts.snaplen
        )));
    }
    if opts.buffer_size < opts.snaplen || opts.buffer_size > 1 << 30 {
        return Err(LiveError::Options(format!(
            "buffer size {} must be at least the snaplen and at most 1 GiB",
            opts.buffer_size
        )));
    }
    Ok(())
}

/// A live capture on one interface, its frames decoded to UDP datagrams.
///
/// The kernel filter ([`bpf_filter`]) keeps every other packet in the kernel;
/// [`LiveCapture::stats`] tells how many passed it and how many were dropped.
pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    read_timeout: Duration,
    iface: String,
    linktype: u32,
    filter: String,
    dec: FrameDecoder,
    frames: u64,
    received: Counter,
    dropped: Counter,
    if_dropped: Counter,
}

impl std::fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCapture")
            .field("iface", &self.iface)
            .field("linktype", &self.linktype)
            .field("filter", &self.filter)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl LiveCapture {
    /// Opens `iface` ("any": all interfaces) in the calling thread's network
    /// namespace and attaches the kernel filter.
    pub fn open(iface: &str, opts: LiveOptions) -> Result<LiveCapture, LiveError> {
        check_options(iface, &opts)?;
        if iface != "any" && nix::net::if_::if_nametoindex(iface).is_err() {
            return Err(LiveError::NoSuchInterface {
                iface: iface.to_string(),
            });
        }
        let open_err = |e: pcap::Error| classify_open_error(iface, e.to_string());
        let timeout_ms = i32::try_from(opts.read_timeout.as_millis()).unwrap_or(60_000);
        let mut cap = pcap::Capture::from_device(iface)
            .map_err(open_err)?
            .snaplen(i32::try_from(opts.snaplen).unwrap_or(65_535))
            .promisc(opts.promiscuous)
            .buffer_size(i32::try_from(opts.buffer_size).unwrap_or(32 << 20))
            .immediate_mode(opts.immediate)
            .timeout(timeout_ms)
            .open()
            .map_err(open_err)?
            // Non-blocking reads and poll(2) for the wait: libpcap's read timeout is
            // not honoured in every mode (immediate mode on Linux, for one).
            .setnonblock()
            .map_err(open_err)?;
        let linktype = u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX);
        let filter = bpf_filter(&opts.ports, linktype == LINKTYPE_ETHERNET);
        cap.filter(&filter, true).map_err(|e| LiveError::Filter {
            iface: iface.to_string(),
            filter: filter.clone(),
            detail: e.to_string(),
        })?;
        let dec = FrameDecoder::new(CaptureOptions {
            ports: PortFilter::ports(opts.ports.iter().copied()),
            reassembly: opts.reassembly,
            verify_checksums: opts.verify_checksums,
            tunnels: true,
            ..CaptureOptions::default()
        });
        Ok(LiveCapture {
            cap,
            read_timeout: opts.read_timeout,
            iface: iface.to_string(),
            linktype,
            filter,
            dec,
            frames: 0,
            received: Counter::default(),
            dropped: Counter::default(),
            if_dropped: Counter::default(),
        })
    }

    /// The interface captured on.
    pub fn interface(&self) -> &str {
        &self.iface
    }

    /// The link-layer type of the frames (a `LINKTYPE_*` value).
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// The BPF expression attached in the kernel.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Reads frames and appends their datagrams (owned) to `out`, until `max`
    /// datagrams were appended, `4 * max` (at least 64) frames were read, or no
    /// frame came for the read timeout. Returns the number appended (0 after a
    /// quiet read timeout), so the caller can check a stop flag between calls.
    /// Malformed frames are only counted.
    pub fn next_batch(
        &mut self,
        out: &mut Vec<UdpDatagram<'static>>,
        max: usize,
    ) -> Result<usize, LiveError> {
        let max_frames = max.saturating_mul(4).max(64);
        let mut added = 0usize;
        let mut read = 0usize;
        let mut waited = false;
        while added < max && read < max_frames {
            let packet = match self.cap.next_packet() {
                Ok(p) => p,
                Err(pcap::Error::TimeoutExpired | pcap::Error::NoMorePackets) => {
                    // Nothing buffered: wait once per call, then return.
                    if waited || added > 0 || !self.wait()? {
                        break;
                    }
                    waited = true;
                    continue;
                }
                Err(e) => {
                    return Err(LiveError::Read {
                        iface: self.iface.clone(),
                        detail: e.to_string(),
                    })
                }
            };
            read += 1;
            self.frames += 1;
            let ts = packet.header.ts;
            let usec = u32::try_from(ts.tv_usec).unwrap_or(0).min(999_999);
            #[allow(clippy::useless_conversion)] // time_t is i32 on some targets
            let time = Timestamp::new(i64::from(ts.tv_sec), usec * 1000);
            if let Some(Event::Udp(d)) =
                self.dec
                    .decode(self.linktype, packet.data, time, self.frames)
            {
                out.push(d.into_owned());
                added += 1;
            }
        }
        Ok(added)
    }

    /// Waits up to the read timeout for the capture to become readable.
    fn wait(&self) -> Result<bool, LiveError> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let ms = u16::try_from(self.read_timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.cap.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(LiveError::Read {
                iface: self.iface.clone(),
                detail: format!("poll: {e}"),
            }),
        }
    }

    /// The kernel's counters (since the capture was opened) and the decoder's.
    pub fn stats(&mut self) -> Result<LiveStats, LiveError> {
        let s = self.cap.stats().map_err(|e| LiveError::Read {
            iface: self.iface.clone(),
            detail: e.to_string(),
        })?;
        Ok(LiveStats {
            received: self.received.update(s.received),
            dropped: self.dropped.update(s.dropped),
            if_dropped: self.if_dropped.update(s.if_dropped),
            decoder: self.dec.stats(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_expression() {
        let f = bpf_filter(&[137, 138], false);
        assert_eq!(
            f,
            "(udp and (port 137 or port 138)) or (ip and ip[6:2] & 0x1fff != 0) \
             or (ip6 and ip6[6] == 44)"
        );
        let v = bpf_filter(&[137], true);
        assert!(v.ends_with(") or (vlan and ((udp and (port 137)) or (ip and ip[6:2] & 0x1fff != 0) or (ip6 and ip6[6] == 44)))"));
    }

    #[test]
    fn filter_compiles_and_matches() {
        // Compiled by libpcap for Ethernet without a device, then run on frames.
        let dead = pcap::Capture::dead(pcap::Linktype(1)).unwrap();
        let prog = dead
            .compile(&bpf_filter(&DEFAULT_LIVE_PORTS, true), true)
            .unwrap();
        let frame = |vlan: bool, frag: u16, dport: u16| {
            let mut f = vec![0xff; 6];
            f.extend([2, 0, 0, 0, 0, 1]);
            if vlan {
                f.extend([0x81, 0x00, 0x00, 0x0a]);
            }
            f.extend([0x08, 0x00]);
            f.extend([0x45, 0, 0, 28, 0, 1]);
            f.extend(frag.to_be_bytes());
            f.extend([64, 17, 0, 0, 198, 51, 100, 1, 198, 51, 100, 2]);
            f.extend([0x04, 0x00]);
            f.extend(dport.to_be_bytes());
            f.extend([0, 8, 0, 0]);
            f
        };
        assert!(prog.filter(&frame(false, 0, 138)));
        assert!(prog.filter(&frame(true, 0, 5355)));
        assert!(!prog.filter(&frame(false, 0, 9999)));
        assert!(!prog.filter(&frame(true, 0, 9999)));
        // Offset 185 (x8 = 1480): a later fragment of any UDP datagram passes.
        assert!(prog.filter(&frame(false, 185, 9999)));
        assert!(prog.filter(&frame(true, 185, 9999)));
    }

    #[test]
    fn errors_are_clear() {
        let e = classify_open_error("eth0", "socket: Operation not permitted".into());
        assert!(matches!(e, LiveError::PermissionDenied { .. }));
        assert!(e.to_string().contains("CAP_NET_RAW"), "{e}");
        let e = classify_open_error("eth9", "SIOCGIFINDEX: No such device".into());
        assert!(matches!(e, LiveError::NoSuchInterface { .. }));
        let e = LiveCapture::open("nbdgm-none0", LiveOptions::default()).unwrap_err();
        assert!(matches!(e, LiveError::NoSuchInterface { .. }), "{e}");
        assert!(e.to_string().contains("no such network interface"), "{e}");
        let e = LiveCapture::open("a/b", LiveOptions::default()).unwrap_err();
        assert!(matches!(e, LiveError::Options(_)), "{e}");
        let opts = LiveOptions {
            ports: vec![],
            ..LiveOptions::default()
        };
        assert!(matches!(
            LiveCapture::open("lo", opts),
            Err(LiveError::Options(_))
        ));
    }

    #[test]
    fn counter_wraps() {
        let mut c = Counter::default();
        assert_eq!(c.update(u32::MAX - 1), u64::from(u32::MAX - 1));
        assert_eq!(c.update(3), u64::from(u32::MAX) + 4);
    }
}
