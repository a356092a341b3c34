//! Dispatch of mailslot data to the application codecs by mailslot name
//! (MS-MAIL §3.2.5.1: names compare case-insensitively). Unknown mailslots are not
//! an error: the caller keeps the raw bytes.

use crate::browser::{BrowserFrame, LanmanFrame};
use crate::error::Result;
use crate::mailslot::{BROWSE, LANMAN, MESSNGR};
use crate::messenger::Message;
use crate::netlogon::NetlogonMessage;

/// Which application protocol a mailslot name carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Application {
    Browser,
    Lanman,
    Netlogon,
    Messenger,
    Unknown,
}

/// Classify a mailslot name. NETLOGON requests go to `\MAILSLOT\NET\NETLOGON` or
/// `\MAILSLOT\NET\NTLOGON`; replies to a slot the requester names, conventionally
/// under `\MAILSLOT\NET\` (e.g. `\MAILSLOT\NET\GETDC...`) or `\MAILSLOT\TEMP\NETLOGON`.
pub fn classify(mailslot: &str) -> Application {
    let upper = mailslot.to_ascii_uppercase();
    if upper == BROWSE {
        Application::Browser
    } else if upper == LANMAN {
        Application::Lanman
    } else if upper == MESSNGR {
        Application::Messenger
    } else if upper.starts_with("\\MAILSLOT\\NET\\") || upper == "\\MAILSLOT\\TEMP\\NETLOGON" {
        Application::Netlogon
    } else {
        Application::Unknown
    }
}

/// A decoded mailslot message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Browser(BrowserFrame),
    Lanman(LanmanFrame),
    Netlogon(NetlogonMessage),
    Messenger(Message),
}

/// Decode `data` according to the mailslot it arrived on. `Ok(None)` for mailslots
/// this codec does not know.
pub fn parse(mailslot: &str, data: &[u8]) -> Result<Option<Payload>> {
    Ok(Some(match classify(mailslot) {
        Application::Browser => Payload::Browser(BrowserFrame::parse(data)?),
        Application::Lanman => Payload::Lanman(LanmanFrame::parse(data)?),
        Application::Netlogon => Payload::Netlogon(NetlogonMessage::parse(data)?),
        Application::Messenger => Payload::Messenger(Message::parse(data)?),
        Application::Unknown => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify("\\MAILSLOT\\BROWSE"), Application::Browser);
        assert_eq!(classify("\\mailslot\\browse"), Application::Browser);
        assert_eq!(classify("\\MAILSLOT\\LANMAN"), Application::Lanman);
        assert_eq!(classify("\\MAILSLOT\\NET\\NETLOGON"), Application::Netlogon);
        assert_eq!(classify("\\MAILSLOT\\NET\\GETDC123"), Application::Netlogon);
        assert_eq!(
            classify("\\MAILSLOT\\TEMP\\NETLOGON"),
            Application::Netlogon
        );
        assert_eq!(classify("\\MAILSLOT\\MESSNGR"), Application::Messenger);
        assert_eq!(classify("\\MAILSLOT\\FOO"), Application::Unknown);
    }

    #[test]
    fn unknown_slot_is_not_an_error() {
        assert_eq!(parse("\\MAILSLOT\\FOO", &[1, 2, 3]).unwrap(), None);
    }
}
