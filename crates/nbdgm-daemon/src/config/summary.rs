//! `nbdgm serve --check-config`: the summary printed for a valid file.

use super::error::ConfigError;
use super::{AllowList, Config, NodeType};
use nbdgm_runtime::interfaces::discover_interfaces;
use serde::Serialize;
use std::fmt;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

/// What `nbdgm serve --check-config` prints for a valid file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub file: PathBuf,
    pub node_name: String,
    pub node_type: NodeType,
    pub workgroup: String,
    pub scope: String,
    /// `NAME<xx>` (with ` group` for group names).
    pub names: Vec<String>,
    /// `address/len broadcast b`; `auto: ...` when taken from the system, and
    /// `not served: NAME address/len (reason)` for what discovery leaves out.
    pub interfaces: Vec<String>,
    pub name_port: u16,
    pub datagram_port: u16,
    pub api_socket: PathBuf,
    pub api_tcp: Option<SocketAddrV4>,
    pub privileges_user: Option<String>,
    /// Valid but questionable settings.
    pub warnings: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: OK", self.file.display())?;
        writeln!(
            f,
            "node {} ({}-node), workgroup {}{}",
            self.node_name,
            self.node_type.as_str(),
            self.workgroup,
            if self.scope.is_empty() {
                String::new()
            } else {
                format!(", scope {}", self.scope)
            }
        )?;
        writeln!(f, "names: {}", self.names.join(", "))?;
        writeln!(f, "interfaces: {}", self.interfaces.join(", "))?;
        writeln!(
            f,
            "ports: name {}, datagram {}",
            self.name_port, self.datagram_port
        )?;
        write!(f, "api: {}", self.api_socket.display())?;
        if let Some(t) = self.api_tcp {
            write!(f, ", tcp {t}")?;
        }
        writeln!(f)?;
        if let Some(u) = &self.privileges_user {
            writeln!(f, "drops root to user {u}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

impl Config {
    /// The `--check-config` report of a valid configuration read from `file`.
    pub fn summary(&self, file: &Path) -> Summary {
        let names = self
            .names()
            .iter()
            .map(|(n, g)| {
                if *g {
                    format!("{n} group")
                } else {
                    n.to_string()
                }
            })
            .collect();
        let interfaces = if self.interfaces.is_empty() {
            match discover_interfaces() {
                Ok(d) => {
                    let mut l: Vec<String> = d
                        .kept
                        .iter()
                        .map(|i| format!("auto: {}/{}", i.addr, i.prefix))
                        .collect();
                    if l.is_empty() {
                        l.push("auto: none found".to_owned());
                    }
                    l.extend(d.skipped.iter().map(|(i, r)| {
                        format!(
                            "not served: {} {}/{} ({r})",
                            nbdgm_wire::text::escape(&i.name),
                            i.addr,
                            i.prefix
                        )
                    }));
                    l
                }
                Err(e) => vec![format!("auto: cannot list ({e})")],
            }
        } else {
            self.interfaces
                .iter()
                .map(|i| format!("{} broadcast {}", i.address, i.broadcast_addr()))
                .collect()
        };
        let mut warnings = self.interface_warnings(&self.resolve_interfaces().unwrap_or_default());
        if self.api.mode.0 & 0o007 != 0 {
            warnings.push(format!(
                "api.mode {} lets every local user use the API",
                self.api.mode
            ));
        }
        for (key, list) in [
            ("access.name_service.allow", &self.access.name_service.allow),
            ("access.datagram.allow", &self.access.datagram.allow),
            ("access.api.allow", &self.access.api.allow),
        ] {
            match list {
                AllowList::Any => warnings.push(format!("{key} = \"any\" admits every source")),
                AllowList::List(l) if l.is_empty() => {
                    warnings.push(format!("{key} = [] admits nobody"))
                }
                _ => {}
            }
        }
        if let Some(f) = &self.api.tcp_token_file {
            use std::os::unix::fs::PermissionsExt;
            match std::fs::metadata(f) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => warnings.push(format!(
                    "api.tcp_token_file {} is readable or writable by others: the daemon refuses it",
                    f.display()
                )),
                Ok(_) => {}
                Err(e) => warnings.push(format!(
                    "api.tcp_token_file {}: {e}",
                    f.display()
                )),
            }
        }
        if let Some(t) = self.api.tcp {
            if !t.ip().is_loopback() && self.access.api.allow == AllowList::Auto {
                warnings.push(format!(
                    "api.tcp listens on {t} but access.api.allow = \"auto\" admits loopback clients only"
                ));
            }
        }
        Summary {
            file: file.to_owned(),
            node_name: self.node_name(),
            node_type: self.node.node_type,
            workgroup: self.node.workgroup.to_ascii_uppercase(),
            scope: self.node.scope.clone(),
            names,
            interfaces,
            name_port: self.ports.name,
            datagram_port: self.ports.datagram,
            api_socket: self.api.socket.clone(),
            api_tcp: self.api.tcp,
            privileges_user: self.privileges.user.clone(),
            warnings,
        }
    }
}

/// `nbdgm serve --check-config`: load and validate `path`, and summarise it.
pub fn check(path: &Path) -> Result<Summary, ConfigError> {
    Config::load(path).map(|c| c.summary(path))
}
