//! What a probe reports: the probed ports (137/udp, 138/udp, 138/tcp, 139/tcp, 445/tcp),
//! the state each ends in, and the per-host result with the NODE STATUS details.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

/// A probed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Port {
    /// 137/udp, name service.
    #[serde(rename = "137/udp")]
    Ns137Udp,
    /// 138/udp, datagram service.
    #[serde(rename = "138/udp")]
    Dgm138Udp,
    /// 138/tcp (registered by IANA, unused in practice).
    #[serde(rename = "138/tcp")]
    Dgm138Tcp,
    /// 139/tcp, session service.
    #[serde(rename = "139/tcp")]
    Ssn139Tcp,
    /// 445/tcp, SMB direct.
    #[serde(rename = "445/tcp")]
    Smb445Tcp,
}

/// The state a probe ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortState {
    Open,
    /// 138/udp silent while 137/udp answered from the same host.
    LikelyOpen,
    #[serde(rename = "open|filtered")]
    OpenFiltered,
    Filtered,
    Closed,
    HostDown,
    Error,
    /// Not decided: the monitor records a silence it cannot interpret (its wait was shorter
    /// than the neighbour resolution time, issue 15). `nbdgm probe` never reports it.
    Unknown,
}

/// One port's result with the evidence for its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortResult {
    pub port: Port,
    pub state: PortState,
    /// Which packet answered, or which ICMP came back, or why there is no answer.
    pub evidence: String,
    /// Round-trip time of the deciding answer.
    pub rtt_ms: Option<f64>,
    /// Packets or connection attempts made.
    pub attempts: u32,
}

/// One name from the NODE STATUS answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceName {
    /// `NAME<xx>`.
    pub name: String,
    pub group: bool,
}

/// What the 137/udp answer says about the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    pub names: Vec<ServiceName>,
    pub workgroup: Option<String>,
    /// `LMB` (<1D>), `DMB` (<1B>), `DC` (<1C>), `browser` (<1E>, MSBROWSE), `file-server` (<20>), ...
    pub roles: Vec<String>,
    /// UNIT_ID as `aa:bb:cc:dd:ee:ff` (zeros from Samba).
    pub mac: Option<String>,
}

/// Everything learned about one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostResult {
    pub address: Ipv4Addr,
    /// The name the target was given as, when it was a host name.
    pub hostname: Option<String>,
    pub ports: Vec<PortResult>,
    pub info: Option<HostInfo>,
    pub duration_ms: f64,
}

impl Port {
    /// All five, in report order.
    pub const ALL: [Port; 5] = [
        Port::Ns137Udp,
        Port::Dgm138Udp,
        Port::Dgm138Tcp,
        Port::Ssn139Tcp,
        Port::Smb445Tcp,
    ];

    pub fn number(self) -> u16 {
        match self {
            Port::Ns137Udp => nbdgm_wire::nbns::NS_PORT,
            Port::Dgm138Udp | Port::Dgm138Tcp => nbdgm_wire::datagram::DGM_PORT,
            Port::Ssn139Tcp => nbdgm_rap::nbss::SESSION_PORT,
            Port::Smb445Tcp => 445,
        }
    }

    pub fn is_udp(self) -> bool {
        matches!(self, Port::Ns137Udp | Port::Dgm138Udp)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Port::Ns137Udp => "137/udp",
            Port::Dgm138Udp => "138/udp",
            Port::Dgm138Tcp => "138/tcp",
            Port::Ssn139Tcp => "139/tcp",
            Port::Smb445Tcp => "445/tcp",
        }
    }

    /// Parse a `--ports` list: comma-separated `137`, `137/udp`, `138` (both 138/udp and
    /// 138/tcp), `138/udp`, `138/tcp`, `139`, `139/tcp`, `445`, `445/tcp`, or `all`.
    /// The result is in report order without duplicates.
    pub fn parse_list(s: &str) -> Result<Vec<Port>, PortListError> {
        let mut want = Vec::new();
        if s.len() > 200 {
            return Err(PortListError::TooLong);
        }
        for item in s.split(',') {
            let item = item.trim().to_ascii_lowercase();
            let ports: &[Port] = match item.as_str() {
                "all" => &Port::ALL,
                "137" | "137/udp" => &[Port::Ns137Udp],
                "138" => &[Port::Dgm138Udp, Port::Dgm138Tcp],
                "138/udp" => &[Port::Dgm138Udp],
                "138/tcp" => &[Port::Dgm138Tcp],
                "139" | "139/tcp" => &[Port::Ssn139Tcp],
                "445" | "445/tcp" => &[Port::Smb445Tcp],
                "" => return Err(PortListError::EmptyEntry),
                other => return Err(PortListError::Unknown(other.to_owned())),
            };
            want.extend_from_slice(ports);
        }
        Ok(Port::ALL
            .iter()
            .copied()
            .filter(|p| want.contains(p))
            .collect())
    }
}

/// Why a `--ports` list does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortListError {
    #[error("port list too long")]
    TooLong,
    #[error("empty entry in the port list")]
    EmptyEntry,
    #[error("{0:?}: not one of 137, 138/udp, 138/tcp, 139, 445 (or 138, all)")]
    Unknown(String),
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PortState {
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::LikelyOpen => "likely-open",
            PortState::OpenFiltered => "open|filtered",
            PortState::Filtered => "filtered",
            PortState::Closed => "closed",
            PortState::HostDown => "host-down",
            PortState::Error => "error",
            PortState::Unknown => "unknown",
        }
    }

    /// `open` or `likely-open`: the service is reachable.
    pub fn is_exposed(self) -> bool {
        matches!(self, PortState::Open | PortState::LikelyOpen)
    }
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
