//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/`:
//!
//! - the UDP payloads on ports 137 and 138 of every capture in the captures folder
//!   (default `../shared/captures` beside the repository, or the first argument), split by
//!   layer: name-service packets, datagrams, their SMB user data, the mailslot data by
//!   mailslot name (BROWSE, LANMAN, NETLOGON and reply slots, MESSNGR), encoded names;
//! - the hex vectors of `crates/nbdgm-wire/tests/data/test_vectors.json`;
//! - a few built messages for layers the captures lack (messenger, NETLOGON requests);
//! - the capture files of at most 64 KiB themselves, for the `capture` target;
//! - for the `node` target, each capture's packets as records, 16 per file.
//!
//! Files are named by a hash of their content, so running it again adds nothing twice.
//!
//! `cargo run --release --manifest-path fuzz/Cargo.toml --features seed --bin seed [DIR]`

use nbdgm_capture::CaptureReader;
use nbdgm_fuzz::{make_name_input, DECODE_NBDGM, DECODE_NBNS};
use nbdgm_wire::datagram::{Body, Datagram};
use nbdgm_wire::mailslot::MailslotWrite;
use nbdgm_wire::payload::{classify, Application};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// Largest capture file copied into the `capture` corpus.
const MAX_CAPTURE_SEED: u64 = 64 << 10;

#[derive(Default)]
struct Corpus {
    root: PathBuf,
    /// Files written (new) per target.
    added: BTreeMap<&'static str, usize>,
    seen: BTreeMap<&'static str, usize>,
}

impl Corpus {
    fn add(&mut self, target: &'static str, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        *self.seen.entry(target).or_default() += 1;
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("create corpus folder");
        let path = dir.join(format!("seed-{:016x}-{}", fnv1a(data), data.len()));
        if !path.exists() {
            fs::write(&path, data).expect("write seed");
            *self.added.entry(target).or_default() += 1;
        }
    }

    /// A datagram-service payload and every layer inside it.
    fn datagram(&mut self, payload: &[u8]) {
        self.add("datagram", payload);
        self.add("decode", &prefixed(DECODE_NBDGM, payload));
        let Ok(d) = Datagram::parse(payload) else {
            return;
        };
        // Names start at 14 in data datagrams, at 10 in query datagrams.
        match &d.body {
            Body::Data { .. } if d.source_name().is_some() => {
                self.name(payload, 14);
                self.name(payload, 14 + d.source_name().unwrap().encoded_len());
            }
            Body::Query { .. } => self.name(payload, 10),
            _ => {}
        }
        if let Some(user) = d.user_data() {
            self.mailslot(user);
        }
    }

    fn mailslot(&mut self, user: &[u8]) {
        self.add("mailslot", user);
        if let Ok(w) = MailslotWrite::parse(user) {
            self.application(&w.name, &w.data);
        }
    }

    fn application(&mut self, slot: &str, data: &[u8]) {
        match classify(slot) {
            Application::Browser => self.add("browser", data),
            Application::Lanman => self.add("lanman", data),
            Application::Netlogon => self.add("netlogon", data),
            Application::Messenger => self.add("messenger", data),
            Application::Unknown => {}
        }
    }

    /// A name-service payload, and its names: the first question at 12 and every offset a
    /// compression pointer sits at.
    fn nbns(&mut self, payload: &[u8]) {
        self.add("nbns", payload);
        self.add("decode", &prefixed(DECODE_NBNS, payload));
        if payload.len() > 12 {
            self.name(payload, 12);
        }
        for (i, w) in payload.windows(2).enumerate() {
            if w[0] & 0xC0 == 0xC0 && i > 12 {
                self.name(payload, i);
            }
        }
    }

    fn name(&mut self, buf: &[u8], offset: usize) {
        if let Some(input) = make_name_input(buf, offset) {
            self.add("name", &input);
        }
    }
}

fn prefixed(sel: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 1);
    v.push(sel);
    v.extend_from_slice(payload);
    v
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn is_capture(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("pcap" | "pcapng" | "cap")
    )
}

fn captures(c: &mut Corpus, dir: &Path) -> (usize, usize, usize) {
    let mut entries: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            eprintln!("cannot read {}: {e}", dir.display());
            return (0, 0, 0);
        }
    };
    entries.sort();
    let (mut files, mut nbns, mut dgm) = (0, 0, 0);
    for path in entries.iter().filter(|p| is_capture(p)) {
        let Ok(meta) = fs::metadata(path) else {
            continue;
        };
        if meta.len() <= MAX_CAPTURE_SEED {
            if let Ok(bytes) = fs::read(path) {
                c.add("capture", &bytes);
            }
        }
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                continue;
            }
        };
        let mut reader = match CaptureReader::new(std::io::BufReader::new(file)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                continue;
            }
        };
        files += 1;
        // `node` seeds: the capture's packets as records of the node target, 16 per file.
        let mut records: Vec<u8> = Vec::new();
        let mut in_record = 0;
        while let Some(d) = reader.next_udp() {
            let d = match d {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    break;
                }
            };
            let ports = [d.src.port(), d.dst.port()];
            if let Ok(len) = u16::try_from(d.payload.len()) {
                let service = u8::from(ports.contains(&138));
                // [flags: service, broadcast][source host][time step][len][bytes]
                records.extend_from_slice(&[service | 2, 2 + (in_record * 7 % 250) as u8, 1]);
                records.extend_from_slice(&len.to_be_bytes());
                records.extend_from_slice(&d.payload);
                in_record += 1;
                if in_record == 16 {
                    c.add("node", &records);
                    records.clear();
                    in_record = 0;
                }
            }
            if ports.contains(&138) {
                c.datagram(&d.payload);
                dgm += 1;
            } else if ports.contains(&137) {
                c.nbns(&d.payload);
                nbns += 1;
            }
        }
        if in_record > 0 {
            c.add("node", &records);
        }
    }
    (files, nbns, dgm)
}

fn vectors(c: &mut Corpus, path: &Path) -> usize {
    let text = fs::read_to_string(path).expect("read test_vectors.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("parse test_vectors.json");
    let mut n = 0;
    for (section, v) in json.as_object().into_iter().flatten() {
        let Some(map) = v.as_object() else { continue };
        for s in map.values().filter_map(|v| v.as_str()) {
            n += 1;
            if section.starts_with("first_level") {
                // 32 characters A..P: a whole second-level name without scope.
                let mut name = vec![0x20];
                name.extend_from_slice(s.as_bytes());
                name.push(0);
                c.name(&name, 0);
                continue;
            }
            let Some(b) = unhex(s) else { continue };
            match section.as_str() {
                "second_level_encoding" => c.name(&b, 0),
                "datagrams" => c.datagram(&b),
                "smb_mailslot" => c.mailslot(&b),
                "browser_frames" => {
                    c.add("browser", &b);
                    if matches!(b.first(), Some(0x01 | 0x0C | 0x0F)) {
                        c.add("lanman", &b);
                    }
                }
                s if s.starts_with("nbns") => c.nbns(&b),
                _ => {}
            }
        }
    }
    n
}

/// Messages for layers the captures lack (see the captures' MANIFEST.md: no NETLOGON
/// responses, LANMAN or MESSNGR traffic), alone and wrapped in a mailslot write and a
/// datagram so that the `mailslot`, `datagram` and `decode` targets reach them too.
fn built(c: &mut Corpus) {
    use nbdgm_wire::datagram::{MsgType, NodeType};
    use nbdgm_wire::messenger::{crlf, Message};
    use nbdgm_wire::name::Name;
    use nbdgm_wire::netlogon::{
        DcSockAddr, NetlogonMessage, PrimaryQuery, PrimaryResponse, SamLogonRequest,
        SamLogonResponse, SamLogonResponseEx, SamLogonResponseV5,
    };
    use std::net::Ipv4Addr;

    let mut apps: Vec<(&str, Vec<u8>)> = Vec::new();
    for m in [
        Message::new("FRED", "BARNEY", &crlf("Hello\nfrom WinPopup")),
        Message::new("FRED", "*", ""),
    ] {
        apps.extend(m.to_bytes().ok().map(|b| ("\\MAILSLOT\\MESSNGR", b)));
    }
    let ex = SamLogonResponseEx {
        flags: 0x0000_F3FD,
        forest: "corp.example.com".into(),
        dns_domain: "corp.example.com".into(),
        dns_host_name: "dc1.corp.example.com".into(),
        netbios_domain: "CORP".into(),
        netbios_computer_name: "DC1".into(),
        user_name: "alice".into(),
        dc_site_name: "Default-First-Site-Name".into(),
        client_site_name: "Default-First-Site-Name".into(),
        dc_sock_addr: Some(DcSockAddr::new(Ipv4Addr::new(192, 0, 2, 10))),
        nt_version: 0x0000_000D,
        ..SamLogonResponseEx::default()
    };
    let v5 = SamLogonResponse {
        unicode_logon_server: "\\\\DC1".into(),
        user_name: "alice".into(),
        unicode_domain_name: "CORP".into(),
        v5: Some(SamLogonResponseV5 {
            forest: "corp.example.com".into(),
            dns_domain: "corp.example.com".into(),
            dns_host_name: "dc1.corp.example.com".into(),
            dc_ip_address: Ipv4Addr::new(192, 0, 2, 10),
            flags: 0x0000_03FD,
            ..SamLogonResponseV5::default()
        }),
        nt_version: Some(0x0000_0003),
        lmnt_token: Some(0xFFFF),
        lm20_token: Some(0xFFFF),
        ..SamLogonResponse::default()
    };
    for (slot, m) in [
        (
            "\\MAILSLOT\\NET\\NETLOGON",
            NetlogonMessage::PrimaryQuery(PrimaryQuery::new("FRED", "\\MAILSLOT\\NET\\GETDC0")),
        ),
        (
            "\\MAILSLOT\\NET\\NETLOGON",
            NetlogonMessage::SamLogonRequest(SamLogonRequest::new(
                "FRED",
                "alice",
                "\\MAILSLOT\\NET\\GETDC1",
                0x0000_000B,
            )),
        ),
        (
            "\\MAILSLOT\\NET\\GETDC0",
            NetlogonMessage::PrimaryResponse(PrimaryResponse {
                primary_dc_name: "DC1".into(),
                unicode_primary_dc_name: Some("DC1".into()),
                unicode_domain_name: Some("CORP".into()),
                nt_version: Some(1),
                lmnt_token: Some(0xFFFF),
                lm20_token: Some(0xFFFF),
                ..PrimaryResponse::default()
            }),
        ),
        (
            "\\MAILSLOT\\NET\\GETDC1",
            NetlogonMessage::SamLogonResponseEx(ex.clone()),
        ),
        (
            "\\MAILSLOT\\NET\\GETDC1",
            NetlogonMessage::SamUserUnknownEx(SamLogonResponseEx {
                dc_sock_addr: None,
                next_closest_site_name: Some("Branch".into()),
                ..ex
            }),
        ),
        (
            "\\MAILSLOT\\NET\\GETDC1",
            NetlogonMessage::SamLogonResponse(v5),
        ),
    ] {
        match m.to_bytes() {
            Ok(b) => apps.push((slot, b)),
            Err(e) => eprintln!("built {}: {e}", m.command()),
        }
    }
    // An LM-layout announcement on LANMAN.
    let mut lm = vec![0x01, 0x00, 0x03, 0x10, 0x01, 0x00, 0x04, 0x00, 0xB4, 0x00];
    lm.extend_from_slice(b"FRED\0Samba\0");
    apps.push(("\\MAILSLOT\\LANMAN", lm));

    for (slot, data) in apps {
        c.application(slot, &data);
        let Ok(user) = MailslotWrite::new(slot, data).aligned().to_bytes() else {
            continue;
        };
        let d = Datagram::data(
            MsgType::DirectGroup,
            NodeType::B,
            0x1234,
            (Ipv4Addr::new(192, 0, 2, 1), 138),
            Name::new("FRED", 0x00).unwrap(),
            Name::new("CORP", 0x1C).unwrap(),
            user,
        );
        if let Ok(b) = d.to_bytes() {
            c.datagram(&b);
        }
    }
}

fn main() {
    let fuzz_dir = Path::new(MANIFEST_DIR);
    let captures_dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| fuzz_dir.join("../../shared/captures"));
    let captures_dir = captures_dir.canonicalize().unwrap_or(captures_dir);
    let mut c = Corpus {
        root: fuzz_dir.join("corpus"),
        ..Corpus::default()
    };
    let (files, nbns, dgm) = captures(&mut c, &captures_dir);
    let n = vectors(
        &mut c,
        &fuzz_dir.join("../crates/nbdgm-wire/tests/data/test_vectors.json"),
    );
    built(&mut c);
    println!(
        "{} captures read from {}: {nbns} name-service and {dgm} datagram-service payloads; {n} test vectors",
        files,
        captures_dir.display()
    );
    for (target, seen) in &c.seen {
        let added = c.added.get(target).copied().unwrap_or(0);
        println!("  {target:<10} {seen:>6} seeds, {added:>5} new files");
    }
}
