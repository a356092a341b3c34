//! Honey query bytes, as Windows sends them: NBNS broadcast NAME QUERY REQUEST
//! (RFC 1002 §4.2.12), LLMNR query (RFC 4795 §2.1) and mDNS one-shot query (RFC 6762
//! §5.1, §18). Checked byte for byte against Windows queries in
//! /work/shared/captures (see the tests).

use nbdgm_wire::name::Name;
use nbdgm_wire::nbns;

/// NBNS flags of a Windows broadcast name query: opcode QUERY, RD and B (0x0110).
pub const NBNS_BROADCAST_QUERY_FLAGS: u16 = 0x0110;
/// Windows broadcast query tries (BcastNameQueryCount).
pub const NBNS_TRIES: u8 = 3;
/// Windows gap between tries, with the same NAME_TRN_ID (BcastNameQueryTimeout).
pub const NBNS_RETRY_MS: u64 = 750;
/// LLMNR tries: Windows sends each query twice, about 100 ms apart, same id.
pub const LLMNR_TRIES: u8 = 2;
/// LLMNR gap between tries.
pub const LLMNR_RETRY_MS: u64 = 100;
/// DNS type A.
pub const TYPE_A: u16 = 1;
/// DNS type AAAA.
pub const TYPE_AAAA: u16 = 28;

/// A Windows NBNS broadcast NAME QUERY REQUEST for `name` (up to 15 bytes, ASCII, upper
/// cased and space padded) with `suffix` (0x20 server, 0x00 workstation).
pub fn nbns_query(txid: u16, name: &str, suffix: u8) -> Result<Vec<u8>, String> {
    let n = Name::new(name, suffix).map_err(|e| e.to_string())?;
    nbns::Packet::request(txid, NBNS_BROADCAST_QUERY_FLAGS, n, nbns::TYPE_NB)
        .to_bytes()
        .map_err(|e| e.to_string())
}

/// A DNS-format query with one question (class IN, no QU bit) and flags 0: LLMNR
/// (random `id`) and mDNS (`id` 0, RFC 6762 §18.1). `name` is dotted, without a
/// trailing dot; labels 1 to 63 bytes of ASCII, 255 bytes at most encoded.
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(18 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    let start = out.len();
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 || !label.is_ascii() {
            return Err(format!(
                "bad DNS label {:?} in {:?}",
                nbdgm_wire::text::escape(label),
                nbdgm_wire::text::escape(name)
            ));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    if out.len() - start > 255 {
        return Err("DNS name longer than 255 bytes".into());
    }
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    Ok(out)
}

/// A Windows LLMNR query (RFC 4795: random id, flags 0, one question).
pub fn llmnr_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    dns_query(id, name, qtype)
}

/// A Windows mDNS one-shot query for `name` (`host.local`): id 0, flags 0, QM question.
pub fn mdns_query(name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    dns_query(0, name, qtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn nbns_query_matches_windows_bytes() {
        // suricata-verify__base64-decode-5885__input__nbt-only.pcap frame 1: WPAD<00>
        // from 192.168.100.67:137 to .255:137, tries at 0, 0.749, 1.498 s, id 0xdcbf.
        let want = hex(
            "dcbf011000010000000000002046484641454245454341434143414341434143414341434143414341434141410000200001",
        );
        assert_eq!(nbns_query(0xdcbf, "wpad", 0x00).unwrap(), want);
        let q = nbns_query(0x1234, "DESKTOP-AB12CD3", 0x20).unwrap();
        let p = nbns::Packet::parse(&q).unwrap();
        assert_eq!(p.flags, 0x0110);
        assert_eq!(p.questions[0].name.name(), "DESKTOP-AB12CD3");
        assert_eq!(p.questions[0].name.suffix(), 0x20);
        assert_eq!(p.questions[0].qtype, 0x0020);
        assert!(nbns_query(1, "SIXTEEN-CHARS-XX", 0x20).is_err());
    }

    #[test]
    fn llmnr_query_matches_windows_bytes() {
        // suricata-verify__base64-decode-5885__input.pcap: wpad A to 224.0.0.252:5355.
        let want = hex("80c90000000100000000000004777061640000010001");
        assert_eq!(llmnr_query(0x80c9, "wpad", TYPE_A).unwrap(), want);
    }

    #[test]
    fn mdns_query_matches_windows_bytes() {
        // suricata-verify__base64-decode-5885__input.pcap: _googlecast._tcp.local PTR, id 0.
        let want =
            hex("0000000000010000000000000b5f676f6f676c6563617374045f746370056c6f63616c00000c0001");
        assert_eq!(mdns_query("_googlecast._tcp.local", 12).unwrap(), want);
        let a = mdns_query("desktop-ab12cd3.local", TYPE_A).unwrap();
        assert_eq!(&a[..4], &[0, 0, 0, 0]);
        assert_eq!(
            &a[a.len() - 4..],
            &[0, 1, 0, 1],
            "type A, class IN, QU clear"
        );
    }

    #[test]
    fn dns_query_rejects_bad_names() {
        assert!(dns_query(1, "", TYPE_A).is_err());
        assert!(dns_query(1, "a..b", TYPE_A).is_err());
        assert!(dns_query(1, &"x".repeat(64), TYPE_A).is_err());
        assert!(dns_query(1, &vec!["x".repeat(63); 5].join("."), TYPE_A).is_err());
        assert!(dns_query(1, "caf\u{e9}", TYPE_A).is_err());
    }
}
