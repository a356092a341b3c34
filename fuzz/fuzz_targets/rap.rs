//! The SMB1 and RAP reply parsers of the backup browser's client (`nbdgm-rap`): any
//! bytes give a value or an error, never a panic, and never more entries than the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = nbdgm_rap::smb::parse_reply(data) {
        let _ = nbdgm_rap::smb::parse_negotiate(&r);
        let _ = nbdgm_rap::smb::parse_trans(&r);
    }
    let _ = nbdgm_rap::nbss::parse_header(data);
    if let Some((&t, body)) = data.split_first() {
        let _ = nbdgm_rap::nbss::parse_session_response(t, body);
    }
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (params, rest) = data.split_at(cut);
    if let Ok(v) = nbdgm_rap::rap::parse_reply(params, rest, 8) {
        assert!(v.len() <= 8);
    }
});
