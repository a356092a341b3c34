//! `nbdgm browse`: the browse list (MS-BRWS §3.3.1) from the daemon, or heard passively.
//! CONTRACT stub: to be written.

use clap::Args;

#[derive(Args, Debug)]
pub struct BrowseArgs {}

pub fn run(args: &BrowseArgs) -> u8 {
    let _ = args;
    crate::exit::USAGE
}
