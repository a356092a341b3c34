//! `nbdgm-corpus`: a deterministic, seeded generator of NetBIOS traffic, written as a
//! classic pcap file (LINKTYPE_ETHERNET, Ethernet II + IPv4 + UDP with correct IPv4 header
//! and UDP checksums, strictly increasing timestamps).
//!
//! The same `(count, seed, mix)` always gives the same bytes. Two mixes:
//! - [`Mix::Mixed`] exercises everything the codec knows: the seven datagram types
//!   (RFC 1002 §4.4), every FLAGS combination, scopes up to the 255-byte name limit
//!   (RFC 1002 §4.1), fragments (RFC 1001 §17.1.2), DGM_LENGTH right and wrong, mailslot
//!   writes with and without alignment padding (MS-MAIL §2.2.1), all browser frames
//!   (MS-BRWS §2.2) and LAN Manager announcements, NETLOGON and WinPopup messages, the
//!   name-service packets a datagram node meets (RFC 1002 §4.2) and a small share of
//!   deliberately malformed packets (kinds starting with `malformed.`).
//! - [`Mix::Realistic`] looks like a quiet LAN: about 70 % HostAnnouncements, the rest
//!   other browser frames and name queries, all well-formed. It is meant for benchmarks.
//!
//! Every generated packet carries a `kind` naming what it is (`browser.host_announcement`,
//! `nbns.wack`, `dgm.fragment_middle`, `malformed.truncated`, ...).

#![forbid(unsafe_code)]
// A test-data generator (never shipped): its generated frames always encode, so an
// encoding failure is a generator bug that should abort the run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gen;
mod pcap;
mod rng;

pub use pcap::write_pcap;

use clap::ValueEnum;
use gen::Gen;
use std::collections::VecDeque;
use std::net::SocketAddrV4;

/// What the corpus contains.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// Every packet kind the codec knows, odd flag and length values, and a small share of
    /// malformed packets.
    Mixed,
    /// Traffic as on a real LAN (about 70 % HostAnnouncements, the rest other browser
    /// frames and name queries), all well-formed; for benchmarks.
    Realistic,
}

/// One generated UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Vec<u8>,
    /// What the packet is, e.g. `browser.host_announcement`; `malformed.*` for the
    /// deliberately broken ones.
    pub kind: &'static str,
}

impl Generated {
    /// True for the deliberately malformed packets.
    pub fn is_malformed(&self) -> bool {
        self.kind.starts_with("malformed.")
    }
}

/// The packets of a corpus, lazily generated. Deterministic in `(count, seed, mix)`.
pub fn generate(count: usize, seed: u64, mix: Mix) -> impl Iterator<Item = Generated> {
    Corpus {
        gen: Gen::new(seed, mix),
        left: count,
        pending: VecDeque::new(),
    }
}

struct Corpus {
    gen: Gen,
    left: usize,
    pending: VecDeque<Generated>,
}

impl Iterator for Corpus {
    type Item = Generated;

    fn next(&mut self) -> Option<Generated> {
        if self.left == 0 {
            return None;
        }
        while self.pending.is_empty() {
            let batch = self.gen.next_batch();
            self.pending.extend(batch);
        }
        self.left -= 1;
        self.pending.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn corpus(n: usize, seed: u64, mix: Mix) -> Vec<Generated> {
        generate(n, seed, mix).collect()
    }

    #[test]
    fn deterministic() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        assert_eq!(
            write_pcap(&mut a, generate(2000, 7, Mix::Mixed)).unwrap(),
            2000
        );
        assert_eq!(
            write_pcap(&mut b, generate(2000, 7, Mix::Mixed)).unwrap(),
            2000
        );
        assert_eq!(a, b);
        let mut c = Vec::new();
        write_pcap(&mut c, generate(2000, 8, Mix::Mixed)).unwrap();
        assert_ne!(a, c);
        // A prefix of a longer corpus is the shorter corpus.
        let long = corpus(3000, 7, Mix::Mixed);
        assert_eq!(&long[..2000], &corpus(2000, 7, Mix::Mixed)[..]);
        assert_eq!(
            corpus(500, 3, Mix::Realistic),
            corpus(500, 3, Mix::Realistic)
        );
    }

    #[test]
    fn exact_count() {
        for n in [0, 1, 2, 3, 17, 1000] {
            assert_eq!(generate(n, 5, Mix::Mixed).count(), n);
        }
    }

    #[test]
    fn realistic_is_mostly_host_announcements() {
        let packets = corpus(10_000, 1, Mix::Realistic);
        let ha = packets
            .iter()
            .filter(|p| p.kind == "browser.host_announcement")
            .count();
        assert!((6_500..=7_500).contains(&ha), "{ha}");
        assert!(packets.iter().all(|p| !p.is_malformed()));
    }

    fn pcap_sha256(count: usize, seed: u64, mix: Mix) -> String {
        let mut file = Vec::new();
        write_pcap(&mut file, generate(count, seed, mix)).unwrap();
        Sha256::digest(&file)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The files `nbdgm corpus --count 5000 --seed 42 --mix realistic|mixed` wrote before
    /// the generator left the CLI (sha256sum of the release binary's output): the benchmark
    /// corpora stay byte for byte the same.
    #[test]
    fn same_bytes_as_the_former_nbdgm_corpus() {
        assert_eq!(
            pcap_sha256(5000, 42, Mix::Realistic),
            "66920dca57227dec5d7ca66ccb7e2729c0a002d82e56f46e3625ff8934f62aeb"
        );
        assert_eq!(
            pcap_sha256(5000, 42, Mix::Mixed),
            "70af85eea61069d7fe9b3df2deeb0daf3adb301a85b6b75ed006166febd0666e"
        );
    }
}
