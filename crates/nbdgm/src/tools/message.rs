//! `nbdgm message send|listen`: WinPopup messages on `\MAILSLOT\MESSNGR` (DIGEST §5).
//! CONTRACT stub: to be written.

use clap::Args;

#[derive(Args, Debug)]
pub struct MessageArgs {}

pub fn run(args: &MessageArgs) -> u8 {
    let _ = args;
    crate::exit::USAGE
}
