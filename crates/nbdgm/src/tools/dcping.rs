//! `nbdgm dc-ping`: NETLOGON domain-controller ping (MS-ADTS §6.3.1, §6.3.5; DIGEST §7).
//! CONTRACT stub: to be written.

use clap::Args;

#[derive(Args, Debug)]
pub struct DcPingArgs {
    /// The domain (NetBIOS name).
    pub domain: String,
}

pub fn run(args: &DcPingArgs) -> u8 {
    let _ = args;
    crate::exit::USAGE
}
