//! Our side: the capture reader and the decode view, exactly as `nbdgm decode` uses them,
//! serialized to the JSON of docs/json-schema.md.

use nbdgm::decode::record::{Meta, Protocol, Record};
use nbdgm_capture::{CaptureReader, PortFilter};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// One decoded UDP datagram.
#[derive(Debug)]
pub struct OurFrame {
    /// The record as `nbdgm decode --format ndjson` prints it.
    pub rec: Value,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// Every UDP/137-138 datagram of `path`, by frame number. A reader error after some frames
/// is returned next to them.
pub fn decode_file(path: &Path) -> Result<(BTreeMap<u64, OurFrame>, Option<String>), String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = CaptureReader::new(BufReader::with_capacity(1 << 16, file))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    reader.set_port_filter(PortFilter::netbios());
    let mut frames = BTreeMap::new();
    let mut error = None;
    loop {
        let d = match reader.next_udp() {
            None => break,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                error = Some(format!("{}: {e}", path.display()));
                break;
            }
        };
        let meta = Meta {
            frame: d.frame,
            time: String::new(),
            time_epoch: 0.0,
            src: d.src,
            dst: d.dst,
        };
        let protocol = Protocol::guess(d.src.port(), d.dst.port(), &d.payload);
        let rec = Record::decode(meta, protocol, &d.payload);
        let rec = serde_json::to_value(&rec).map_err(|e| e.to_string())?;
        // A frame with two NBT datagrams (a tunnel carrying a copy) keeps the first.
        frames.entry(d.frame).or_insert(OurFrame {
            rec,
            payload: d.payload.into_owned(),
        });
    }
    Ok((frames, error))
}
