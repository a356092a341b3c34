//! WinPopup messages on `\MAILSLOT\MESSNGR` (DIGEST §5; no Microsoft specification exists).
//!
//! The mailslot data is three NUL-terminated strings in the sender's OEM code page: the
//! sender's name, the recipient's name (a user or computer name, or `*` for the whole
//! workgroup) and the message text. Lines in the text are separated by CR LF; the text is
//! kept exactly as received, [`Message::lines`] splits it and [`crlf`] prepares it.
//! Windows 95 WinPopup, `net send`-like tools and the Messenger-compatible clients send this
//! format; some senders omit the final NUL, so the text may run to the end of the packet
//! (recorded in `text_unterminated` so that emit reproduces it). Bytes after the text's NUL
//! are kept in `trailing`. Code-page bytes are read as Latin-1 ([`crate::reader::latin1`]).
//!
//! Wireshark has no dissector for this mailslot: its SMB mailslot dissector hands only
//! BROWSE, LANMAN, NET*, TEMP\NETLOGON and MSSP to sub-dissectors and shows MESSNGR
//! payloads as plain data (its "messenger" protocol is the DCE/RPC msgsvc interface).
//!
//! `parse(emit(x)) == x` for every value `emit` accepts; `emit` refuses a NUL inside a string,
//! characters outside Latin-1, and trailing bytes after an unterminated text.

use crate::error::{Error, Result};
use crate::reader::{latin1, to_latin1, Reader};

/// A WinPopup message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Message {
    pub sender: String,
    /// User or computer name, `*` for everyone in the workgroup.
    pub recipient: String,
    /// Lines separated by CR LF.
    pub text: String,
    /// The text ran to the end of the packet without its NUL.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "crate::is_false"))]
    pub text_unterminated: bool,
    /// Bytes after the text's NUL.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

impl Message {
    /// A message with the text taken as it is (see [`crlf`] for line breaks).
    pub fn new(sender: &str, recipient: &str, text: &str) -> Self {
        Message {
            sender: sender.to_owned(),
            recipient: recipient.to_owned(),
            text: text.to_owned(),
            ..Message::default()
        }
    }

    /// Parse the mailslot data. The sender and recipient must be NUL-terminated; the text
    /// may end with the packet.
    pub fn parse(data: &[u8]) -> Result<Message> {
        let mut r = Reader::new(data);
        let sender = latin1(r.cstr("sender")?);
        let recipient = latin1(r.cstr("recipient")?);
        let (text, terminated) = r.cstr_lenient();
        Ok(Message {
            sender,
            recipient,
            text: latin1(text),
            text_unterminated: !terminated,
            trailing: r.rest().to_vec(),
        })
    }

    /// Append the message to `out`. On error `out` is left as it was.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        if self.text_unterminated && !self.trailing.is_empty() {
            return Err(Error::emit(
                "text",
                "an unterminated text must end the packet",
            ));
        }
        let mut m = Vec::new();
        put_str(&mut m, &self.sender, "sender")?;
        m.push(0);
        put_str(&mut m, &self.recipient, "recipient")?;
        m.push(0);
        put_str(&mut m, &self.text, "text")?;
        if !self.text_unterminated {
            m.push(0);
        }
        m.extend_from_slice(&self.trailing);
        out.extend_from_slice(&m);
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        crate::emit_to_vec(0, |v| self.emit(v))
    }

    /// The text split at CR LF (a lone LF also ends a line).
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.lines()
    }
}

/// `text` with every line break (LF or CR LF) written as CR LF, as WinPopup expects.
pub fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev = '\0';
    for c in text.chars() {
        if c == '\n' && prev != '\r' {
            out.push('\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

fn put_str(m: &mut Vec<u8>, s: &str, field: &'static str) -> Result<()> {
    let bytes = to_latin1(s, field)?;
    if bytes.contains(&0) {
        return Err(Error::emit(field, "string contains a NUL"));
    }
    m.extend_from_slice(&bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact(bytes: &[u8]) -> Message {
        let m = Message::parse(bytes).unwrap();
        assert_eq!(m.to_bytes().unwrap(), bytes, "{m:?}");
        m
    }

    #[test]
    fn winpopup_message() {
        let m = exact(b"FRED\0BARNEY\0Meeting at 10\r\nRoom 2\0");
        assert_eq!(m.sender, "FRED");
        assert_eq!(m.recipient, "BARNEY");
        assert_eq!(m.text, "Meeting at 10\r\nRoom 2");
        assert!(!m.text_unterminated && m.trailing.is_empty());
        assert_eq!(m.lines().collect::<Vec<_>>(), ["Meeting at 10", "Room 2"]);
        assert_eq!(Message::new("FRED", "BARNEY", "Meeting at 10\r\nRoom 2"), m);
    }

    #[test]
    fn text_without_final_nul() {
        // Several mailslot senders write the three strings without the last NUL.
        let m = exact(b"_MyApp\0*\0Backup finished");
        assert_eq!(
            (m.recipient.as_str(), m.text.as_str()),
            ("*", "Backup finished")
        );
        assert!(m.text_unterminated);
        let m = exact(b"A\0B\0");
        assert_eq!((m.text.as_str(), m.text_unterminated), ("", true));
    }

    #[test]
    fn trailing_bytes_and_code_page() {
        let m = exact(b"J\xf6rg\0ALL\0Gr\xfc\xdfe\0\0\0");
        assert_eq!(m.sender, "J\u{f6}rg");
        assert_eq!(m.text, "Gr\u{fc}\u{df}e");
        assert_eq!(m.trailing, [0, 0]);
    }

    #[test]
    fn missing_terminators() {
        for (data, field, offset) in [
            (&b""[..], "sender", 0),
            (b"FRED", "sender", 0),
            (b"FRED\0BARN", "recipient", 5),
        ] {
            match Message::parse(data).unwrap_err() {
                Error::Invalid {
                    field: f,
                    offset: o,
                    ..
                } => assert_eq!((f, o), (field, offset)),
                e => panic!("{e:?}"),
            }
        }
    }

    #[test]
    fn emit_refusals() {
        let mut out = vec![7];
        for (m, field) in [
            (Message::new("FR\0ED", "B", "t"), "sender"),
            (Message::new("F", "B\0", "t"), "recipient"),
            (Message::new("F", "B", "t\0"), "text"),
            (Message::new("F", "B", "\u{20ac}"), "text"),
            (
                Message {
                    text_unterminated: true,
                    trailing: vec![1],
                    ..Message::new("F", "B", "t")
                },
                "text",
            ),
        ] {
            assert!(
                matches!(m.emit(&mut out), Err(Error::Emit { field: f, .. }) if f == field),
                "{m:?}"
            );
            assert_eq!(out, [7]);
        }
    }

    #[test]
    fn line_breaks() {
        assert_eq!(crlf("a\nb\r\nc\n"), "a\r\nb\r\nc\r\n");
        assert_eq!(crlf("no break"), "no break");
        assert_eq!(
            Message::new("A", "B", "x\ny").lines().collect::<Vec<_>>(),
            ["x", "y"]
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn json_field_names() {
        let j = serde_json::to_value(Message::new("FRED", "*", "hi")).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"sender": "FRED", "recipient": "*", "text": "hi"})
        );
        let j = serde_json::to_value(Message::parse(b"A\0B\0x").unwrap()).unwrap();
        assert_eq!(j["text_unterminated"], true);
    }

    fn latin1_text() -> impl Strategy<Value = String> {
        "[\u{1}-\u{ff}]{0,20}"
    }

    proptest! {
        #[test]
        fn parse_of_emit_is_identity(
            sender in latin1_text(),
            recipient in latin1_text(),
            text in latin1_text(),
            text_unterminated in any::<bool>(),
            trailing in prop::collection::vec(any::<u8>(), 0..4),
        ) {
            let m = Message { sender, recipient, text, text_unterminated, trailing };
            match m.to_bytes() {
                Ok(bytes) => prop_assert_eq!(Message::parse(&bytes).unwrap(), m),
                Err(_) => prop_assert!(m.text_unterminated && !m.trailing.is_empty()),
            }
        }

        #[test]
        fn parse_never_panics_and_reemits_exactly(data in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(m) = Message::parse(&data) {
                prop_assert_eq!(m.to_bytes().unwrap(), data);
            }
        }

        #[test]
        fn three_strings_always_parse(a in "[\u{1}-\u{ff}]{0,8}", b in "[\u{1}-\u{ff}]{0,8}", c in "[\u{1}-\u{ff}]{0,8}") {
            let data: Vec<u8> = [a.as_str(), b.as_str(), c.as_str()].iter().flat_map(|s| s.chars().map(|ch| ch as u8).chain([0])).collect();
            let m = Message::parse(&data).unwrap();
            prop_assert_eq!((m.sender, m.recipient, m.text), (a, b, c));
        }
    }
}
