//! Validation of a parsed configuration: values that are well typed but not
//! acceptable (bad NetBIOS names, RFC 1001 §5.2 node types without a name server,
//! unusable addresses), each reported with its key path.

use super::error::{issue, ConfigError, Issue, ValueError};
use super::schema::check_announce_address;
use super::{Config, NodeType};
use ipnet::Ipv4Net;
use nbdgm_wire::Name;
use std::fmt;

impl Config {
    /// Validate a configuration built or changed in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_all().map_err(|i| ConfigError::Value {
            key: i.key,
            message: i.message,
        })
    }

    /// Every check, in the order of the file's sections; the first failure wins.
    pub(super) fn check_all(&self) -> Result<(), Issue> {
        self.check_node()?;
        self.check_nbns_nbdd()?;
        self.check_interfaces()?;
        self.check_ports()?;
        self.check_datagram()?;
        self.check_limits()?;
        self.check_api()?;
        self.check_privileges()?;
        Ok(())
    }

    /// `[node]`: names, scope and node type.
    fn check_node(&self) -> Result<(), Issue> {
        let n = &self.node;
        if let Some(name) = &n.name {
            check_netbios_name(name).map_err(|m| issue("node.name", m))?;
        }
        for (i, a) in n.aliases.iter().enumerate() {
            check_netbios_name(a).map_err(|m| issue(format!("node.aliases[{i}]"), m))?;
        }
        check_netbios_name(&n.workgroup).map_err(|m| issue("node.workgroup", m))?;
        check_scope(&n.scope).map_err(|m| issue("node.scope", m))?;
        check_node_type(n.node_type, &self.nbns).map_err(|m| issue("node.node_type", m))?;
        Ok(())
    }

    /// `[nbns]`, `[nbdd]` and the NBNS/NBDD server roles.
    fn check_nbns_nbdd(&self) -> Result<(), Issue> {
        let n = &self.node;
        for (i, ip) in self.nbns.servers.iter().enumerate() {
            if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
                return Err(issue(
                    format!("nbns.servers[{i}]"),
                    format!("{ip} cannot be a name server"),
                ));
            }
        }
        if self.nbns.port == 0 {
            return Err(issue("nbns.port", "port 0 is not allowed"));
        }
        if self.nbns.refresh_min_s == 0 {
            return Err(issue("nbns.refresh_min_s", "must be at least 1"));
        }
        if let Some(a) = self.nbdd.address {
            if a.is_unspecified() || a.is_multicast() || a.is_broadcast() {
                return Err(issue("nbdd.address", format!("{a} cannot be an NBDD")));
            }
        }
        if self.nbdd.port == Some(0) {
            return Err(issue("nbdd.port", "port 0 is not allowed"));
        }
        if n.role.nbns {
            self.nbns_server
                .check(self.ports.name, self.ports.name)
                .map_err(|(k, m)| issue(k, m))?;
        }
        if n.role.nbdd {
            self.nbdd_server
                .check(self.ports.datagram)
                .map_err(|(k, m)| issue(k, m))?;
            if !n.role.nbns && self.nbdd_server.nbns.is_none() && self.nbns.servers.is_empty() {
                return Err(issue(
                    "node.role",
                    "the NBDD needs group members: add role \"nbns\", nbdd_server.nbns or [nbns] servers",
                ));
            }
        }
        Ok(())
    }

    /// `node.names`, `[[interface]]` and the announce addresses.
    fn check_interfaces(&self) -> Result<(), Issue> {
        let n = &self.node;
        for (i, x) in n.names.iter().enumerate() {
            parse_extra_name(&x.name).map_err(|m| issue(format!("node.names[{i}].name"), m))?;
        }
        for (i, itf) in self.interfaces.iter().enumerate() {
            check_interface(itf.address)
                .map_err(|m| issue(format!("interface[{i}].address"), m))?;
            if self.interfaces[..i]
                .iter()
                .any(|o| o.address.addr() == itf.address.addr())
            {
                return Err(issue(
                    format!("interface[{i}].address"),
                    format!("{} is listed twice", itf.address.addr()),
                ));
            }
            if let Some(b) = itf.broadcast {
                if b.is_unspecified() || b.is_multicast() {
                    return Err(issue(
                        format!("interface[{i}].broadcast"),
                        format!("{b} cannot be a broadcast address"),
                    ));
                }
            }
        }
        if let Some(a) = n.announce_address {
            check_announce_address(a).map_err(|m| issue("node.announce_address", m))?;
        }
        for (i, itf) in self.interfaces.iter().enumerate() {
            if let Some(a) = itf.announce_address {
                check_announce_address(a)
                    .map_err(|m| issue(format!("interface[{i}].announce_address"), m))?;
            }
        }
        Ok(())
    }

    /// `[browser]`, `[messenger]` and `[ports]`.
    fn check_ports(&self) -> Result<(), Issue> {
        self.browser.check().map_err(|(k, m)| issue(k, m))?;
        self.messenger
            .validate()
            .map_err(|m| issue("messenger", m))?;
        let p = &self.ports;
        for (key, port) in [("ports.name", p.name), ("ports.datagram", p.datagram)] {
            if port == 0 {
                return Err(issue(key, "port 0 is not allowed"));
            }
        }
        if p.name == p.datagram {
            return Err(issue(
                "ports.datagram",
                format!("the same as ports.name ({})", p.name),
            ));
        }
        Ok(())
    }

    /// `[datagram]`, `[reassembly]` and `[name_service]`.
    fn check_datagram(&self) -> Result<(), Issue> {
        let d = &self.datagram;
        in_range("datagram.max_length", d.max_length, 128, 65535)?;
        in_range(
            "datagram.fragment_timeout_ms",
            d.fragment_timeout_ms,
            1,
            600_000,
        )?;
        let r = &self.reassembly;
        in_range("reassembly.max_pending", r.max_pending, 0, 1_000_000)?;
        in_range("reassembly.max_total_bytes", r.max_total_bytes, 0, 1 << 30)?;
        if r.max_bytes_per_source > r.max_total_bytes {
            return Err(issue(
                "reassembly.max_bytes_per_source",
                format!(
                    "{} is larger than reassembly.max_total_bytes ({})",
                    r.max_bytes_per_source, r.max_total_bytes
                ),
            ));
        }
        in_range(
            "reassembly.max_datagram_bytes",
            r.max_datagram_bytes,
            1,
            1 << 20,
        )?;
        let ns = &self.name_service;
        in_range("name_service.retry_count", ns.retry_count, 1, 10)?;
        in_range(
            "name_service.retry_interval_ms",
            ns.retry_interval_ms,
            10,
            60_000,
        )?;
        in_range(
            "name_service.conflict_timer_ms",
            ns.conflict_timer_ms,
            1,
            600_000,
        )?;
        in_range("name_service.cache_entries", ns.cache_entries, 0, 1_000_000)?;
        Ok(())
    }

    /// `[limits]`.
    fn check_limits(&self) -> Result<(), Issue> {
        let l = &self.limits;
        for (key, rc) in [
            ("limits.rx_per_source", l.rx_per_source),
            ("limits.replies_per_source", l.replies_per_source),
        ] {
            if !(rc.rate.is_finite() && rc.rate > 0.0) {
                return Err(issue(
                    format!("{key}.rate"),
                    format!(
                        "must be a positive number of packets per second, not {}",
                        rc.rate
                    ),
                ));
            }
            if rc.burst == 0 {
                return Err(issue(format!("{key}.burst"), "must be at least 1"));
            }
        }
        in_range("limits.max_sources", l.max_sources, 1, 1_000_000)?;
        in_range("limits.reply_amplification", l.reply_amplification, 1, 1000)?;
        in_range("limits.max_names", l.max_names, 1, 10_000)?;
        in_range("limits.rx_moderation_us", l.rx_moderation_us, 0, 1000)?;
        let names = self.names().len();
        if names > l.max_names {
            return Err(issue(
                "limits.max_names",
                format!(
                    "the node would register {names} names, more than limits.max_names = {}",
                    l.max_names
                ),
            ));
        }
        Ok(())
    }

    /// `[api]`.
    fn check_api(&self) -> Result<(), Issue> {
        let a = &self.api;
        if a.socket.as_os_str().is_empty() {
            return Err(issue("api.socket", "must not be empty"));
        }
        in_range("api.max_clients", a.max_clients, 1, 65_536)?;
        in_range("api.queue_per_client", a.queue_per_client, 1, 1 << 20)?;
        in_range(
            "api.queue_bytes_per_client",
            a.queue_bytes_per_client,
            64 << 10,
            1 << 30,
        )?;
        in_range(
            "api.queue_bytes_total",
            a.queue_bytes_total,
            64 << 10,
            1 << 32,
        )?;
        in_range(
            "api.max_clients_per_peer",
            a.max_clients_per_peer,
            1,
            65_536,
        )?;
        if a.group.as_deref() == Some("") {
            return Err(issue("api.group", "must not be empty"));
        }
        if let Some(t) = a.tcp {
            if t.port() == 0 {
                return Err(issue("api.tcp", "port 0 is not allowed"));
            }
            if a.tcp_token_file.is_none() {
                return Err(issue(
                    "api.tcp_token_file",
                    "a TCP API needs a token file (every local user can reach a TCP port): \
                     put a secret in a file only the daemon's user can read and name it here",
                ));
            }
        }
        Ok(())
    }

    /// `[privileges]` and `[log]`.
    fn check_privileges(&self) -> Result<(), Issue> {
        let pr = &self.privileges;
        if pr.user.as_deref() == Some("") {
            return Err(issue("privileges.user", "must not be empty"));
        }
        if let Some(g) = &pr.group {
            if g.is_empty() {
                return Err(issue("privileges.group", "must not be empty"));
            }
            if pr.user.is_none() {
                return Err(issue(
                    "privileges.group",
                    "needs privileges.user (the group is set when dropping to that user)",
                ));
            }
        }
        check_log_level(&self.log.level).map_err(|m| issue("log.level", m))?;
        Ok(())
    }
}

pub(super) fn in_range<T: PartialOrd + fmt::Display + Copy>(
    key: &str,
    v: T,
    min: T,
    max: T,
) -> Result<(), Issue> {
    if v < min || v > max {
        return Err(issue(key, format!("{v} is outside {min}..={max}")));
    }
    Ok(())
}

/// A NetBIOS name as typed by a user: 1–15 bytes of printable ASCII, not
/// starting with `*` or a space.
pub fn check_netbios_name(s: &str) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::EmptyName);
    }
    if s.len() > 15 {
        return Err(ValueError::NameTooLong(s.to_owned(), s.len()));
    }
    if let Some(c) = s.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(ValueError::NameCharacter {
            name: s.to_owned(),
            c,
        });
    }
    if s.starts_with('*') || s.starts_with(' ') {
        return Err(ValueError::NameStart(s.to_owned()));
    }
    Ok(())
}

pub(super) fn check_scope(s: &str) -> Result<(), ValueError> {
    nbdgm_wire::name::validate_scope(s).map_err(|e| wire_error(s, &e))
}

/// A codec error about `input`, without the codec's "cannot emit" framing.
pub(super) fn wire_error(input: &str, e: &nbdgm_wire::Error) -> ValueError {
    let reason = match e {
        nbdgm_wire::Error::Emit { reason, .. } => (*reason).to_owned(),
        other => other.to_string(),
    };
    ValueError::Wire {
        input: input.to_owned(),
        reason,
    }
}

pub(super) fn check_node_type(
    t: NodeType,
    nbns: &crate::roles::NbnsClientConfig,
) -> Result<(), ValueError> {
    match t {
        NodeType::P | NodeType::M if nbns.servers.is_empty() => Err(
            ValueError::NodeTypeWithoutNbns(t.as_str().to_ascii_uppercase()),
        ),
        _ => Ok(()),
    }
}

pub(super) fn check_interface(n: Ipv4Net) -> Result<(), ValueError> {
    let ip = n.addr();
    if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
        return Err(ValueError::InterfaceAddress(ip));
    }
    Ok(())
}

pub(super) fn parse_extra_name(s: &str) -> Result<Name, ValueError> {
    let name: Name = s.parse().map_err(|e| wire_error(s, &e))?;
    if !name.scope().is_empty() {
        return Err(ValueError::ScopeInName(s.to_owned()));
    }
    if name.raw().first() == Some(&b'*') {
        return Err(ValueError::WildcardName(s.to_owned()));
    }
    Ok(name)
}

pub(super) fn check_log_level(s: &str) -> Result<(), ValueError> {
    tracing_subscriber::EnvFilter::builder()
        .parse(s)
        .map(|_| ())
        .map_err(|e| ValueError::LogFilter {
            input: s.to_owned(),
            reason: e.to_string(),
        })
}

/// Warnings about the addresses served (issue 17 §5): not errors, since a container
/// bridge or a NAT address may be exactly what the operator wants.
impl Config {
    /// What `serve` logs and `--check-config` prints about `served` (the result of
    /// [`Config::resolve_interfaces`]): an interface named in `[[interface]]` that
    /// discovery would leave out (a container or VM bridge), an address in Docker's
    /// default network 172.17.0.0/16 in registrations and announcements, and browser
    /// roles that the interfaces found automatically do not take.
    pub fn interface_warnings(&self, served: &[super::Interface]) -> Vec<String> {
        use nbdgm_runtime::interfaces::{interface_of, is_docker_default};
        let configured = !self.interfaces.is_empty();
        let mut out = Vec::new();
        for i in served {
            let addr = i.net.addr();
            let carried = i.announce_address.unwrap_or(addr);
            if configured && i.announce_address.is_none() {
                if let Some((sys, Some(reason))) = interface_of(addr) {
                    out.push(format!(
                        "interface {addr} is {} ({reason}): name registrations and \
                         announcements there carry {addr}, which hosts beyond this machine \
                         may not reach; if peers see this host under another address, set \
                         announce_address (see docs/configuration.md)",
                        nbdgm_wire::text::escape(&sys.name)
                    ));
                }
            }
            if is_docker_default(carried) {
                out.push(format!(
                    "interface {addr}: name registrations and announcements carry {carried}, \
                     in Docker's default bridge network 172.17.0.0/16 (a container behind \
                     NAT?); set announce_address to the address peers see, or run the \
                     container with host networking (see docs/configuration.md)"
                ));
            }
        }
        let b = &self.browser;
        let sends = b.announce || b.local_master || !b.remote_announce.is_empty();
        if !configured && sends && !b.auto_interfaces {
            out.push(
                "browser.announce, local_master and remote_announce run only on [[interface]] \
                 ones; the interfaces found automatically only listen: name them in \
                 [[interface]], or set browser.auto_interfaces = true"
                    .to_owned(),
            );
        }
        out
    }
}
