//! The RAP NetServerEnum2 responder (`nbdgm_rap::server`, issue 17 §3): any sequence of
//! NBSS packets gives answers, never a panic, and every answer is one well-framed NBSS
//! packet of at most `server::MAX_REPLY` bytes. The input is cut into packets: a type
//! byte, a 16-bit big-endian length, the body; the session is opened first unless the
//! first byte is odd (then the input's own first packet must do it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_rap::nbss;
use nbdgm_rap::server::{ListEntry, ListSnapshot, ServerConfig, Session, Step, MAX_REPLY};

fn entry(name: &str, wg: &str, ty: u32, local: bool) -> ListEntry {
    ListEntry {
        name: name.into(),
        workgroup: wg.into(),
        os_major: 6,
        os_minor: 1,
        server_type: ty,
        comment: "comment \u{e9}\u{263a}".into(),
        local,
    }
}

fuzz_target!(|data: &[u8]| {
    let list = ListSnapshot {
        servers: (0..300)
            .map(|i| entry(&format!("SRV{i}"), "TESTGROUP", 1 << (i % 32), i % 3 != 0))
            .collect(),
        workgroups: vec![entry("TESTGROUP", "", 0x8000_1000, true)],
    };
    let mut s = Session::new(ServerConfig {
        server_name: "FUZZSRV".into(),
        workgroup: "TESTGROUP".into(),
        challenge: [0; 8],
    });
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    if first & 1 == 0 {
        let r = nbss::session_request("FUZZSRV", "FUZZ");
        assert_eq!(s.handle(r[0], &r[4..]), Step::Send(vec![0x82, 0, 0, 0]));
    }
    for _ in 0..128 {
        let [t, hi, lo, tail @ ..] = rest else { return };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        let (out, close) = match s.handle(*t, body) {
            Step::Send(b) => (b, false),
            Step::Close(b) => (b, true),
            Step::Nothing => (Vec::new(), false),
            Step::Enum(req) => (s.answer(&req, &list), false),
        };
        assert!(out.len() <= MAX_REPLY);
        if !out.is_empty() {
            let (_, n) = nbss::parse_header(&out[..4]).expect("framed");
            assert_eq!(n + 4, out.len());
        }
        if close {
            return;
        }
    }
});
