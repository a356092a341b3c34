//! LLMNR (RFC 4795 §2.1) and mDNS (RFC 6762 §18) messages: the parts the detectors need,
//! capped: at most [`MAX_RECORDS`] records kept per section, names at most [`MAX_NAME`]
//! bytes, canonical (ASCII lower case, no trailing dot). Framing follows RFC 1035 §4.1;
//! names (compression, loops, length) are decoded by `hickory-proto`. Liberal in what it
//! accepts (RFC 1035 §4.1.3, RFC 3597 §5): any TYPE, QTYPE, CLASS or QCLASS parses and
//! RDATA is kept only for A and AAAA; only bytes that break the framing are errors.

use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Records kept per section; the rest are counted in [`Message::dropped`].
pub const MAX_RECORDS: usize = 64;
/// Longest name kept, in bytes of its dotted text.
pub const MAX_NAME: usize = 255;

/// DNS type A.
pub const TYPE_A: u16 = 1;
/// DNS type AAAA.
pub const TYPE_AAAA: u16 = 28;

/// The header flags word, decoded. LLMNR reuses DNS bit positions: its C (conflict) bit
/// is DNS AA, its T (tentative) bit is DNS RD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// The whole word.
    pub raw: u16,
    /// QR: a response.
    pub qr: bool,
    /// OPCODE (0 standard query).
    pub opcode: u8,
    /// AA (mDNS) / C, conflict (LLMNR).
    pub aa: bool,
    /// TC: truncated.
    pub tc: bool,
    /// RD (mDNS, unused) / T, tentative (LLMNR).
    pub rd: bool,
    /// RCODE (0 no error).
    pub rcode: u8,
}

impl Flags {
    /// Decodes a flags word.
    pub fn from_raw(raw: u16) -> Flags {
        Flags {
            raw,
            qr: raw & 0x8000 != 0,
            opcode: ((raw >> 11) & 0x0F) as u8,
            aa: raw & 0x0400 != 0,
            tc: raw & 0x0200 != 0,
            rd: raw & 0x0100 != 0,
            rcode: (raw & 0x000F) as u8,
        }
    }

    /// LLMNR C bit.
    pub fn conflict(&self) -> bool {
        self.aa
    }

    /// LLMNR T bit.
    pub fn tentative(&self) -> bool {
        self.rd
    }
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Canonical name.
    pub name: String,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS without the mDNS unicast-response bit.
    pub qclass: u16,
    /// mDNS QU bit (top bit of QCLASS, RFC 6762 §5.4).
    pub unicast_response: bool,
}

/// One resource record; only A and AAAA data are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Canonical name.
    pub name: String,
    /// TYPE.
    pub rtype: u16,
    /// CLASS without the mDNS cache-flush bit.
    pub class: u16,
    /// mDNS cache-flush bit (RFC 6762 §10.2).
    pub cache_flush: bool,
    /// TTL in seconds.
    pub ttl: u32,
    /// The address of an A or AAAA record.
    pub addr: Option<IpAddr>,
}

/// A parsed LLMNR or mDNS message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Transaction id.
    pub id: u16,
    /// Header flags.
    pub flags: Flags,
    /// Questions (at most [`MAX_RECORDS`]).
    pub questions: Vec<Question>,
    /// Answers (at most [`MAX_RECORDS`]).
    pub answers: Vec<Record>,
    /// Authority records (mDNS probes put their proposed records here).
    pub authority: Vec<Record>,
    /// Additional records.
    pub additional: Vec<Record>,
    /// Entries beyond the per-section cap, not kept.
    pub dropped: usize,
}

impl Message {
    /// Parses `buf`; the error is the reason.
    pub fn parse(buf: &[u8]) -> Result<Message, String> {
        if buf.len() < 12 {
            return Err(format!("{} bytes, shorter than a DNS header", buf.len()));
        }
        let word = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        // The reserved Z bit is ignored (RFC 1035 §4.1.1).
        let (id, raw) = (word(0), word(2));
        let counts = [word(4), word(6), word(8), word(10)];
        let mut d = BinDecoder::new(buf);
        d.read_slice(12).map_err(bad)?;
        let mut dropped = 0usize;
        let mut questions = Vec::new();
        for _ in 0..counts[0] {
            let q = question(&mut d)?;
            if questions.len() < MAX_RECORDS {
                questions.push(q);
            } else {
                dropped += 1;
            }
        }
        let answers = records(&mut d, counts[1], &mut dropped)?;
        let authority = records(&mut d, counts[2], &mut dropped)?;
        let additional = records(&mut d, counts[3], &mut dropped)?;
        Ok(Message {
            id,
            flags: Flags::from_raw(raw),
            questions,
            answers,
            authority,
            additional,
            dropped,
        })
    }

    /// A response with RCODE 0?
    pub fn is_positive_response(&self) -> bool {
        self.flags.qr && self.flags.rcode == 0
    }
}

fn bad(e: impl std::fmt::Display) -> String {
    format!("bad DNS message: {e}")
}

fn u16_at(d: &mut BinDecoder<'_>) -> Result<u16, String> {
    Ok(d.read_u16().map_err(bad)?.unverified())
}

fn question(d: &mut BinDecoder<'_>) -> Result<Question, String> {
    let name = canonical(&Name::read(d).map_err(bad)?)?;
    let qtype = u16_at(d)?;
    let qclass = u16_at(d)?;
    Ok(Question {
        name,
        qtype,
        qclass: qclass & 0x7FFF,
        unicast_response: qclass & 0x8000 != 0,
    })
}

/// Reads `count` records, keeping the first ones up to the cap; every one is checked.
fn records(d: &mut BinDecoder<'_>, count: u16, dropped: &mut usize) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    for _ in 0..count {
        let r = record(d)?;
        if out.len() < MAX_RECORDS {
            out.push(r);
        } else {
            *dropped += 1;
        }
    }
    Ok(out)
}

fn record(d: &mut BinDecoder<'_>) -> Result<Record, String> {
    let name = canonical(&Name::read(d).map_err(bad)?)?;
    let rtype = u16_at(d)?;
    let class = u16_at(d)?;
    let ttl = d.read_u32().map_err(bad)?.unverified();
    let len = usize::from(u16_at(d)?);
    let rdata = d.read_slice(len).map_err(bad)?.unverified();
    let addr = match rtype {
        TYPE_A => Some(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(rdata).map_err(|_| format!("A record of {len} bytes"))?,
        ))),
        TYPE_AAAA => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(rdata).map_err(|_| format!("AAAA record of {len} bytes"))?,
        ))),
        _ => None,
    };
    Ok(Record {
        name,
        rtype,
        class: class & 0x7FFF,
        cache_flush: class & 0x8000 != 0,
        ttl,
        addr,
    })
}

/// Lower-case dotted text of `name`, no trailing dot; non-UTF-8 octets replaced.
fn canonical(name: &Name) -> Result<String, String> {
    let mut s = String::new();
    for label in name.iter() {
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
        if s.len() > MAX_NAME {
            return Err(format!("name longer than {MAX_NAME} bytes"));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(out: &mut Vec<u8>, n: &str) {
        for l in n.split('.') {
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_bytes());
        }
        out.push(0);
    }

    fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&flags.to_be_bytes());
        for c in counts {
            v.extend_from_slice(&c.to_be_bytes());
        }
        v
    }

    #[test]
    fn parses_an_llmnr_answer_with_flags() {
        let mut v = header(0x1234, 0x8000 | 0x0400 | 0x0100, [1, 1, 0, 0]);
        name(&mut v, "Host1");
        v.extend_from_slice(&[0, 1, 0, 1]);
        v.extend_from_slice(&[0xC0, 12]); // pointer to the question name
        v.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 198, 51, 100, 7]);
        let m = Message::parse(&v).unwrap();
        assert_eq!(m.id, 0x1234);
        assert!(m.flags.qr && m.flags.conflict() && m.flags.tentative() && !m.flags.tc);
        assert_eq!(m.questions[0].name, "host1");
        assert_eq!(m.answers[0].name, "host1");
        assert_eq!(m.answers[0].ttl, 30);
        assert_eq!(m.answers[0].addr, Some("198.51.100.7".parse().unwrap()));
        assert!(m.is_positive_response());
    }

    #[test]
    fn parses_mdns_bits_and_keeps_other_types_as_type_only() {
        let mut v = header(0, 0x8400, [1, 2, 0, 0]);
        name(&mut v, "printer.local");
        v.extend_from_slice(&[0, 28, 0x80, 1]); // AAAA, QU
        name(&mut v, "Printer.LOCAL");
        v.extend_from_slice(&[0, 28, 0x80, 1, 0, 0, 0, 120, 0, 16]);
        v.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        name(&mut v, "printer.local");
        v.extend_from_slice(&[0, 16, 0, 1, 0, 0, 0, 120, 0, 2, 1, b'x']); // TXT
        let m = Message::parse(&v).unwrap();
        assert!(m.questions[0].unicast_response);
        assert_eq!(m.questions[0].qclass, 1);
        assert_eq!(m.questions[0].qtype, TYPE_AAAA);
        assert!(m.answers[0].cache_flush);
        assert_eq!(m.answers[0].class, 1);
        assert_eq!(m.answers[0].name, "printer.local");
        assert_eq!(m.answers[0].addr, Some("fe80::1".parse().unwrap()));
        assert_eq!(m.answers[1].rtype, 16);
        assert_eq!(m.answers[1].addr, None);
    }

    #[test]
    fn reserved_z_bit_is_ignored() {
        let mut v = header(7, 0x0040, [1, 0, 0, 0]);
        name(&mut v, "wpad");
        v.extend_from_slice(&[0, 1, 0, 1]);
        let m = Message::parse(&v).unwrap();
        assert_eq!(m.questions[0].name, "wpad");
    }

    #[test]
    fn sections_are_capped() {
        let mut v = header(1, 0x8000, [0, 100, 0, 0]);
        for i in 0..100u8 {
            name(&mut v, "h");
            v.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 10, 0, 0, i]);
        }
        let m = Message::parse(&v).unwrap();
        assert_eq!(m.answers.len(), MAX_RECORDS);
        assert_eq!(m.dropped, 100 - MAX_RECORDS);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut v = header(1, 0, [1, 0, 0, 0]);
        name(&mut v, "host");
        v.extend_from_slice(&[0, 1, 0, 1]);
        for n in 0..v.len() {
            assert!(Message::parse(&v[..n]).is_err(), "prefix of {n} bytes");
        }
        assert!(Message::parse(&v).is_ok());
    }

    #[test]
    fn pointer_loops_are_errors() {
        // A name that points at itself, and two names pointing at each other.
        let mut v = header(1, 0, [1, 0, 0, 0]);
        v.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        assert!(Message::parse(&v).is_err());
        let mut v = header(1, 0, [1, 0, 0, 0]);
        v.extend_from_slice(&[1, b'a', 0xC0, 16, 1, b'b', 0xC0, 12, 0, 1, 0, 1]);
        assert!(Message::parse(&v).is_err());
    }

    #[test]
    fn over_long_names_are_errors() {
        let mut v = header(1, 0, [1, 0, 0, 0]);
        for _ in 0..5 {
            v.push(63);
            v.extend_from_slice(&[b'a'; 63]);
        }
        v.push(0);
        v.extend_from_slice(&[0, 1, 0, 1]);
        assert!(Message::parse(&v).is_err());
        // Each question adds a 63-byte label before a pointer to the previous name: the
        // fourth name is over 255 bytes.
        let mut ok = header(1, 0, [3, 0, 0, 0]);
        let mut v = header(1, 0, [4, 0, 0, 0]);
        let mut prev: Option<u16> = None;
        for i in 0..4u8 {
            let here = v.len() as u16;
            v.push(63);
            v.extend_from_slice(&[b'a' + i; 63]);
            match prev {
                Some(p) => v.extend_from_slice(&(0xC000 | p).to_be_bytes()),
                None => v.push(0),
            }
            v.extend_from_slice(&[0, 1, 0, 1]);
            prev = Some(here);
            if i == 2 {
                ok.extend_from_slice(&v[12..]);
            }
        }
        let m = Message::parse(&ok).unwrap();
        assert_eq!(m.questions[2].name.len(), 3 * 64 - 1);
        assert!(Message::parse(&v).is_err());
    }

    // mDNS query for printer.local, type 65 (HTTPS), QU bit.
    const MDNS_HTTPS_QUERY: &[u8] = &[
        0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'p', b'r', b'i', b'n', b't', b'e', b'r', 5, b'l',
        b'o', b'c', b'a', b'l', 0, 0, 65, 0x80, 1,
    ];

    #[test]
    fn mdns_query_for_https_parses() {
        let m = Message::parse(MDNS_HTTPS_QUERY).unwrap();
        assert_eq!(m.questions.len(), 1);
        assert_eq!(m.questions[0].name, "printer.local");
        assert_eq!(m.questions[0].qtype, 65);
        assert_eq!(m.questions[0].qclass, 1);
        assert!(m.questions[0].unicast_response);
    }

    // mDNS response: printer.local A 198.51.100.7 (cache-flush, class 0x8001) and
    // NSEC (type 47) for the same name, next name a pointer, bitmap A + AAAA.
    const MDNS_NSEC_RESPONSE: &[u8] = &[
        0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 1, 7, b'p', b'r', b'i', b'n', b't', b'e', b'r', 5,
        b'l', b'o', b'c', b'a', b'l', 0, 0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4, 198, 51, 100, 7, 0xC0,
        12, 0, 47, 0x80, 1, 0, 0, 0, 120, 0, 8, 0xC0, 12, 0, 4, 0x40, 0, 0, 0x08,
    ];

    #[test]
    fn mdns_response_with_nsec_and_cache_flush_parses() {
        let m = Message::parse(MDNS_NSEC_RESPONSE).unwrap();
        let a = &m.answers[0];
        assert_eq!((a.rtype, a.class, a.cache_flush), (TYPE_A, 1, true));
        assert_eq!(a.addr, Some("198.51.100.7".parse().unwrap()));
        let nsec = &m.additional[0];
        assert_eq!((nsec.name.as_str(), nsec.rtype), ("printer.local", 47));
        assert_eq!((nsec.class, nsec.cache_flush, nsec.addr), (1, true, None));
        assert!(m.is_positive_response());
    }

    // LLMNR query for wpad, QTYPE 255 (ANY).
    const LLMNR_ANY_QUERY: &[u8] = &[
        0xAB, 0xCD, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, b'w', b'p', b'a', b'd', 0, 0, 255, 0, 1,
    ];

    #[test]
    fn llmnr_query_for_any_parses() {
        let m = Message::parse(LLMNR_ANY_QUERY).unwrap();
        assert_eq!(m.id, 0xABCD);
        assert_eq!(
            (m.questions[0].name.as_str(), m.questions[0].qtype),
            ("wpad", 255)
        );
        assert!(!m.questions[0].unicast_response);
    }

    // Response to a question for the private type 0xff00: a record of that type in the
    // unknown class 0x0042 with three bytes of opaque data, then an A record. All parse,
    // the first record as a type only.
    const PRIVATE_TYPE_RESPONSE: &[u8] = &[
        0, 7, 0x80, 0, 0, 1, 0, 2, 0, 0, 0, 0, 1, b'h', 0, 0xff, 0x00, 0, 1, 0xC0, 12, 0xff, 0x00,
        0x00, 0x42, 0, 0, 0, 30, 0, 3, 1, 2, 3, 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 203, 0,
        113, 9,
    ];

    #[test]
    fn private_type_and_unknown_class_parse() {
        let m = Message::parse(PRIVATE_TYPE_RESPONSE).unwrap();
        assert_eq!((m.questions[0].qtype, m.questions[0].qclass), (0xff00, 1));
        let r = &m.answers[0];
        assert_eq!(
            (r.rtype, r.class, r.cache_flush, r.addr),
            (0xff00, 0x42, false, None)
        );
        assert_eq!(m.answers[1].addr, Some("203.0.113.9".parse().unwrap()));
        // Every shorter prefix is truncated.
        for n in 0..PRIVATE_TYPE_RESPONSE.len() {
            assert!(
                Message::parse(&PRIVATE_TYPE_RESPONSE[..n]).is_err(),
                "prefix {n}"
            );
        }
    }

    #[test]
    fn wrong_address_lengths_and_forward_pointers_are_errors() {
        let mut v = header(1, 0x8000, [0, 1, 0, 0]);
        name(&mut v, "h");
        v.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 1, 0, 3, 10, 0, 0]);
        assert!(Message::parse(&v).is_err(), "A record of 3 bytes");
        let mut v = header(1, 0x8000, [0, 1, 0, 0]);
        name(&mut v, "h");
        v.extend_from_slice(&[0, 28, 0, 1, 0, 0, 0, 1, 0, 4, 10, 0, 0, 1]);
        assert!(Message::parse(&v).is_err(), "AAAA record of 4 bytes");
        // A name pointing past itself, into the record that follows.
        let mut v = header(1, 0, [1, 0, 0, 0]);
        v.extend_from_slice(&[0xC0, 18, 0, 1, 0, 1, 1, b'a', 0]);
        assert!(Message::parse(&v).is_err());
    }

    /// Parse cost: `cargo test -p nbdgm-watch --release --lib -- --ignored --nocapture dns_parse_cost`.
    #[test]
    #[ignore]
    fn dns_parse_cost() {
        let n = 100_000u32;
        for (what, pkt) in [
            ("query", MDNS_HTTPS_QUERY),
            ("response", MDNS_NSEC_RESPONSE),
        ] {
            let t = std::time::Instant::now();
            let mut kept = 0usize;
            for _ in 0..n {
                let m = Message::parse(std::hint::black_box(pkt)).unwrap();
                kept += m.questions.len() + m.answers.len() + m.additional.len();
            }
            let ns = t.elapsed().as_nanos() / u128::from(n);
            println!(
                "{what} ({} bytes): {ns} ns/packet ({kept} entries)",
                pkt.len()
            );
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..2_000usize {
            let mut v = Vec::with_capacity(len % 300);
            for _ in 0..(len % 300) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.push(x as u8);
            }
            if v.len() >= 12 {
                v[4] = 0;
                v[5] = (x % 4) as u8;
                v[6] = 0;
                v[7] = (x % 3) as u8;
            }
            let _ = Message::parse(&v);
        }
    }
}
