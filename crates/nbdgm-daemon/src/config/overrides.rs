//! Command-line overrides of `nbdgm serve` (`--interface`, `--name`, ...), validated
//! like the file; errors name the flag.

use super::error::ConfigError;
use super::validate::{check_interface, check_netbios_name, check_node_type, check_scope};
use super::{parse_cidr, Config, InterfaceConfig, NodeType};
use std::path::PathBuf;

impl Config {
    /// Apply command-line overrides, validated like the file; errors name the flag.
    pub fn apply(&mut self, o: &Overrides) -> Result<(), ConfigError> {
        fn flag(flag: &'static str, value: &str, message: impl std::fmt::Display) -> ConfigError {
            ConfigError::Flag {
                flag,
                value: value.to_owned(),
                message: message.to_string(),
            }
        }
        if !o.interfaces.is_empty() {
            let mut list = Vec::with_capacity(o.interfaces.len());
            for s in &o.interfaces {
                let net = parse_cidr(s, true)
                    .and_then(|n| check_interface(n).map(|()| n))
                    .map_err(|m| flag("--interface", s, m))?;
                if list
                    .iter()
                    .any(|i: &InterfaceConfig| i.address.addr() == net.addr())
                {
                    return Err(flag("--interface", s, "given twice".to_owned()));
                }
                list.push(InterfaceConfig {
                    address: net,
                    broadcast: None,
                    announce_address: None,
                });
            }
            self.interfaces = list;
        }
        if let Some(name) = &o.name {
            check_netbios_name(name).map_err(|m| flag("--name", name, m))?;
            self.node.name = Some(name.clone());
        }
        if !o.aliases.is_empty() {
            for a in &o.aliases {
                check_netbios_name(a).map_err(|m| flag("--alias", a, m))?;
            }
            self.node.aliases = o.aliases.clone();
        }
        if let Some(w) = &o.workgroup {
            check_netbios_name(w).map_err(|m| flag("--workgroup", w, m))?;
            self.node.workgroup = w.clone();
        }
        if let Some(s) = &o.scope {
            check_scope(s).map_err(|m| flag("--scope", s, m))?;
            self.node.scope = s.clone();
        }
        if let Some(t) = &o.node_type {
            let nt: NodeType = t.parse().map_err(|m| flag("--node-type", t, m))?;
            check_node_type(nt, &self.nbns).map_err(|m| flag("--node-type", t, m))?;
            self.node.node_type = nt;
        }
        if let Some(p) = &o.api_socket {
            if p.as_os_str().is_empty() {
                return Err(flag("--api-socket", "", "must not be empty".to_owned()));
            }
            self.api.socket = p.clone();
        }
        if let Some(f) = &o.log_format {
            self.log.format = f
                .parse::<super::LogFormat>()
                .map_err(|m| flag("--log-format", f, m.to_string()))?;
        }
        self.validate()
    }
}

/// Command-line overrides of `nbdgm serve`. Lists replace the file's lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--interface IP/PREFIX` (repeatable).
    pub interfaces: Vec<String>,
    /// `--name`.
    pub name: Option<String>,
    /// `--alias` (repeatable).
    pub aliases: Vec<String>,
    /// `--workgroup`.
    pub workgroup: Option<String>,
    /// `--scope`.
    pub scope: Option<String>,
    /// `--node-type`.
    pub node_type: Option<String>,
    /// `--api-socket`.
    pub api_socket: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: Option<String>,
}
