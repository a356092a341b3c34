//! The SMB1 and RAP reply parsers of the backup browser's client (`nbdgm-rap`, issue 12
//! item 1): any bytes give a value or an error, never a panic, and a NetServerEnum2
//! reply never decodes into more than the documented caps: at most `max_entries` (and
//! `rap::MAX_ENTRIES`) entries, names ≤ `rap::MAX_NAME_LEN` and comments ≤
//! `rap::MAX_COMMENT_LEN` characters, at most `rap::MAX_DECODED_BYTES` of strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_rap::rap;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = nbdgm_rap::smb::parse_reply(data) {
        let _ = nbdgm_rap::smb::parse_negotiate(&r);
        let _ = nbdgm_rap::smb::parse_trans(&r);
    }
    let _ = nbdgm_rap::nbss::parse_header(data);
    if let Some((&t, body)) = data.split_first() {
        let _ = nbdgm_rap::nbss::parse_session_response(t, body);
    }
    // First byte: where the parameters end; second: the entry cap (0 = unlimited).
    let (cut, max) = match data {
        [a, b, ..] => (usize::from(*a), usize::from(*b)),
        _ => (0, 0),
    };
    let max = if max == 0 { usize::MAX } else { max };
    let rest = data.get(2..).unwrap_or(&[]);
    let (params, block) = rest.split_at(cut.min(rest.len()));
    if let Ok(v) = rap::parse_reply(params, block, max) {
        assert!(v.len() <= max && v.len() <= rap::MAX_ENTRIES);
        assert!(v.len() * rap::ENTRY_LEN <= block.len());
        for s in &v {
            assert!(s.name.chars().count() <= rap::MAX_NAME_LEN, "{:?}", s.name);
            assert!(
                s.comment.chars().count() <= rap::MAX_COMMENT_LEN,
                "{:?}",
                s.comment
            );
        }
        let decoded = rap::decoded_bytes(&v);
        assert!(decoded <= rap::MAX_DECODED_BYTES);
        // Per entry: at most its limits, two UTF-8 bytes a Latin-1 character.
        assert!(decoded <= v.len() * 2 * (rap::MAX_NAME_LEN + rap::MAX_COMMENT_LEN));
    }
});
