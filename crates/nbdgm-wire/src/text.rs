//! Text from the network made safe for one log field or one terminal line.
//!
//! Every string that comes from a packet, a capture, an API client or a peer server
//! passes [`escape`] (or its [`Escaped`] `Display` form) before it reaches a log field
//! or human-readable output. JSON output keeps the exact value instead: serde escapes
//! control characters there, and the consumer gets the bytes that were sent.
//!
//! Escaped: C0 controls and DEL (`\n`, `\r`, `\t`, `\x1b`, ...), C1 controls
//! (`\u{9b}` is a one-byte CSI on some terminals), the backslash itself (so the form is
//! unambiguous), the Unicode line and paragraph separators, and the bidirectional
//! overrides and isolates that reorder what a terminal shows (CVE-2021-42574, "Trojan
//! Source"). Everything else, including other non-ASCII text, is kept.

use core::fmt;
use std::borrow::Cow;

/// True for a character that [`escape`] rewrites.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{feff}'
        )
}

/// `s` with every character of [`needs_escape`] written as an escape (`\n`, `\\`,
/// `\x1b`, `\u{202e}`); borrowed when nothing needed escaping.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_escaped(&mut out, s);
    Cow::Owned(out)
}

/// Bytes that should be text (a name, a comment from a packet): invalid UTF-8 is
/// shown as `\xNN`, the rest as [`escape`] does.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        push_escaped(&mut out, chunk.valid());
        for &x in chunk.invalid() {
            out.push_str(&format!("\\x{x:02x}"));
        }
    }
    out
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        if !needs_escape(c) {
            out.push(c);
            continue;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
}

/// `Display` that writes its string escaped: `warn!(server = %Escaped(&name), ...)`.
/// Width and alignment apply to the escaped form (`{:<16}` in tables).
#[derive(Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&escape(self.0))
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", escape(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("LAB-PC 01 é"), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(escape("a\nb"), "a\\nb");
        assert_eq!(escape("\x1b[2K\r"), "\\x1b[2K\\r");
        assert_eq!(escape("\x7f\u{9b}"), "\\x7f\\u{9b}");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
        assert_eq!(escape("\u{202e}evil"), "\\u{202e}evil");
        assert_eq!(escape("x\u{2028}y"), "x\\u{2028}y");
    }

    #[test]
    fn escaped_output_has_no_control_characters() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let e = escape(&all);
        assert!(e.chars().all(|c| c == '\\' || !needs_escape(c)));
        assert!(!e.chars().any(|c| c.is_control()));
        assert!(!e.contains('\u{202e}'));
    }

    #[test]
    fn bytes_show_invalid_utf8() {
        assert_eq!(escape_bytes(b"ab\xff\n"), "ab\\xff\\n");
    }

    #[test]
    fn display_wrapper() {
        assert_eq!(format!("{}", Escaped("a\nb")), "a\\nb");
        assert_eq!(format!("{:?}", Escaped("a\"b")), "\"a\"b\"");
        assert_eq!(format!("[{:<6}]", Escaped("a\nb")), "[a\\nb  ]");
    }
}
