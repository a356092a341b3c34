//! `nbdgm serve` configuration: the TOML file and its defaults, command-line
//! overrides, and validation. Every error names the key
//! (`access.datagram.allow[1]`) and, for a file, the line and column.
//!
//! Positions: `toml` errors carry a byte span, and validation runs on the plain
//! [`Config`]; both are mapped to a key path and a line through a tree of value
//! spans (`locate`) built from the same text, so the public structs stay free
//! of span wrappers.

mod error;
mod load;
mod locate;
mod overrides;
mod schema;
mod summary;
mod validate;

pub use error::{ConfigError, ErrorKind, ValueError};
pub use nbdgm_runtime::system_interfaces;
pub use overrides::Overrides;
pub use schema::*;
pub use summary::{check, Summary};
pub use validate::check_netbios_name;

/// The sections whose types live with the code that uses them.
pub use crate::browse::BrowserSection;
pub use crate::messenger::MessengerConfig;
pub use crate::roles::{
    NbddClientConfig, NbddServerConfig, NbnsClientConfig, NbnsServerConfig, Roles,
};

use ipnet::Ipv4Net;
use nbdgm_wire::Name;
use std::io;
use validate::parse_extra_name;

/// Where `nbdgm serve` looks without `--config`.
pub const DEFAULT_PATH: &str = "/etc/nbdgm/nbdgm.toml";
/// Largest configuration file read (bytes).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Node name used when the host name is unusable.
pub const FALLBACK_NODE_NAME: &str = "NBDGM";

impl Config {
    /// The NetBIOS name in use: `node.name`, else the host name.
    pub fn node_name(&self) -> String {
        match &self.node.name {
            Some(n) => n.to_ascii_uppercase(),
            None => default_node_name(),
        }
    }

    /// The names to register, `(name, group)`, scope applied, without duplicates:
    /// NAME<00>, NAME<03> (messenger), NAME<20> (server), the same for each alias,
    /// WORKGROUP<00> (group), then `node.names`. `NAME<20>` also with `[browser]
    /// domain_master` or `rap_server`. (The browser registers
    /// WORKGROUP<1E>, <1D> and MSBROWSE itself as its role requires.)
    pub fn names(&self) -> Vec<(Name, bool)> {
        let n = &self.node;
        let mut wanted: Vec<(Name, bool)> = Vec::new();
        let mut push = |name: Option<Name>, group: bool| {
            // Invalid entries are reported by validation; here they are skipped.
            if let Some(name) = name.and_then(|x| x.with_scope(&n.scope).ok()) {
                if !wanted.iter().any(|(w, _)| *w == name) {
                    wanted.push((name, group));
                }
            }
        };
        let own = std::iter::once(self.node_name()).chain(n.aliases.iter().cloned());
        for host in own {
            push(Name::new(&host, 0x00).ok(), false);
            if n.messenger {
                push(Name::new(&host, 0x03).ok(), false);
            }
            // A domain master browser and the RAP responder are called as `NAME<20>` on
            // 139 (Samba's sync_browse_lists; an LMB finds the DMB's name as the first
            // unique <20> of its node status), so they hold it like a server does.
            if n.server || self.browser.domain_master || self.browser.rap_server {
                push(Name::new(&host, 0x20).ok(), false);
            }
        }
        push(Name::new(&n.workgroup, 0x00).ok(), true);
        for x in &n.names {
            push(parse_extra_name(&x.name).ok(), x.group);
        }
        wanted
    }

    /// The interfaces to serve: `[[interface]]`, else every up, non-loopback IPv4
    /// interface of the system.
    pub fn resolve_interfaces(&self) -> io::Result<Vec<Interface>> {
        if !self.interfaces.is_empty() {
            return Ok(self
                .interfaces
                .iter()
                .map(|i| Interface {
                    net: i.address,
                    broadcast: i.broadcast_addr(),
                    announce_address: i.announce_address.or(self.node.announce_address),
                })
                .collect());
        }
        let found: Vec<Interface> = system_interfaces()?
            .into_iter()
            .filter_map(|(ip, len, bcast)| {
                let net = Ipv4Net::new(ip, len).ok()?;
                Some(Interface {
                    net,
                    broadcast: bcast.unwrap_or_else(|| net.broadcast()),
                    announce_address: self.node.announce_address,
                })
            })
            .collect();
        if found.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no up, non-loopback IPv4 interface; add an [[interface]] or --interface",
            ));
        }
        Ok(found)
    }
}

/// The host name, upper-cased, first label only, cut to 15 bytes.
pub fn default_node_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    node_name_from_hostname(&raw)
}

fn node_name_from_hostname(raw: &str) -> String {
    let first = raw.trim().split('.').next().unwrap_or_default();
    let name: String = first
        .chars()
        .take(15)
        .collect::<String>()
        .to_ascii_uppercase();
    if check_netbios_name(&name).is_ok() {
        name
    } else {
        FALLBACK_NODE_NAME.to_owned()
    }
}

#[cfg(test)]
mod tests;
