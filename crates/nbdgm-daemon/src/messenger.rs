//! WinPopup messages received on `\MAILSLOT\MESSNGR` (DIGEST §5; `nbdgm_wire::messenger`):
//! logged, and handed to an optional exec hook that gets arguments only, never a shell.
//! (API subscribers get the datagrams through the hub like any other mailslot.)
//! CONTRACT: bodies to be written.

use nbdgm_node::Delivery;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// `[messenger]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessengerConfig {}

/// Handles received WinPopup messages for one worker.
pub struct Messenger {}

impl Messenger {
    pub fn new(config: &MessengerConfig) -> Self {
        let _ = config;
        Messenger {}
    }

    /// Replace the settings (SIGHUP).
    pub fn set_config(&mut self, config: &MessengerConfig) {
        let _ = config;
    }

    /// A delivered datagram whose mailslot is `\MAILSLOT\MESSNGR` (any destination;
    /// decide here whether it is for us: `d.for_us`).
    pub fn on_delivery(&mut self, interface: Ipv4Addr, d: &Delivery) {
        let _ = (interface, d);
    }
}
