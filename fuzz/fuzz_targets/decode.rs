//! The whole decoder as `nbdgm decode` runs it on one UDP payload: `Record::decode` for the
//! datagram or the name service (byte 0, bit 0), then the JSON and text renderings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm::decode::record::{Meta, Protocol, Record};
use nbdgm::decode::text;
use nbdgm_fuzz::DECODE_NBNS;
use std::net::{Ipv4Addr, SocketAddr};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    let (protocol, port) = if sel & 1 == DECODE_NBNS {
        (Protocol::Nbns, 137)
    } else {
        (Protocol::Nbdgm, 138)
    };
    let meta = Meta {
        frame: 1,
        time: "2024-01-01T00:00:00.000000Z".to_owned(),
        time_epoch: 1_704_067_200.0,
        src: SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), port)),
        dst: SocketAddr::from((Ipv4Addr::new(192, 0, 2, 255), port)),
    };
    let rec = Record::decode(meta, protocol, payload);
    let json = serde_json::to_string(&rec).expect("record serializes");
    assert!(json.starts_with('{'));
    let _ = text::summary(&rec);
    let _ = text::tree(&rec);
});
