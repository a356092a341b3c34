//! RequestElection (0x08) and its Criteria word, MS-BRWS §2.2.3 (DIGEST §6.5).

use super::fields::bit_names;

/// The RequestElection Criteria word: OS byte (31..24), browser version (23..8), role (7..0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct ElectionCriteria(pub u32);

impl ElectionCriteria {
    /// OS byte bits (Wireshark names; MS-BRWS: 0x10 clients, 0x20 servers acting as PDC).
    /// Samba puts its numeric "os level" (default 20 = 0x14) here instead.
    pub const OS_WFW: u8 = 0x01;
    pub const OS_NT_WORKSTATION: u8 = 0x10;
    pub const OS_NT_SERVER: u8 = 0x20;
    /// The browser version the criteria carry (0x00010F00 in the word).
    pub const BROWSER_VERSION: u16 = 0x010F;
    pub const ROLE_PDC: u8 = 0x80;
    pub const ROLE_WINS_CLIENT: u8 = 0x20;
    pub const ROLE_PREFERRED_MASTER: u8 = 0x08;
    pub const ROLE_RUNNING_MASTER: u8 = 0x04;
    /// MS-BRWS "DC"; Samba MAINTAIN_LIST, Wireshark "standby".
    pub const ROLE_DOMAIN_CONTROLLER: u8 = 0x02;
    pub const ROLE_RUNNING_BACKUP: u8 = 0x01;

    pub fn new(os: u8, browser_version: u16, role: u8) -> Self {
        ElectionCriteria(
            (u32::from(os) << 24) | (u32::from(browser_version) << 8) | u32::from(role),
        )
    }

    pub fn os(self) -> u8 {
        (self.0 >> 24) as u8
    }

    pub fn browser_version(self) -> u16 {
        (self.0 >> 8) as u16
    }

    pub fn role(self) -> u8 {
        self.0 as u8
    }

    pub fn os_names(self) -> Vec<&'static str> {
        election_os_names(self.os())
    }

    pub fn role_names(self) -> Vec<&'static str> {
        election_role_names(self.role())
    }
}

/// Names of the defined bits of the criteria OS byte (undefined bits are not named).
pub fn election_os_names(os: u8) -> Vec<&'static str> {
    bit_names(
        os,
        &[
            (ElectionCriteria::OS_WFW, "WFW"),
            (ElectionCriteria::OS_NT_WORKSTATION, "NT_WORKSTATION"),
            (ElectionCriteria::OS_NT_SERVER, "NT_SERVER"),
        ],
    )
}

/// Names of the defined role flags of the criteria (0x10 and 0x40 are not defined).
pub fn election_role_names(role: u8) -> Vec<&'static str> {
    bit_names(
        role,
        &[
            (ElectionCriteria::ROLE_RUNNING_BACKUP, "RUNNING_BACKUP"),
            (
                ElectionCriteria::ROLE_DOMAIN_CONTROLLER,
                "DOMAIN_CONTROLLER",
            ),
            (ElectionCriteria::ROLE_RUNNING_MASTER, "RUNNING_MASTER"),
            (ElectionCriteria::ROLE_PREFERRED_MASTER, "PREFERRED_MASTER"),
            (ElectionCriteria::ROLE_WINS_CLIENT, "WINS_CLIENT"),
            (ElectionCriteria::ROLE_PDC, "PDC"),
        ],
    )
}

/// RequestElection (0x08), MS-BRWS §2.2.3.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RequestElection {
    /// 1; 0 together with criteria 0 forces an election.
    pub election_version: u8,
    /// See [`ElectionCriteria`].
    pub criteria: u32,
    /// Milliseconds in practice (Samba, Wireshark); MS-BRWS says seconds (DIGEST §8 item 9).
    pub uptime_ms: u32,
    /// Sent as 0, ignored.
    pub unused: u32,
    pub server_name: String,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

impl Default for RequestElection {
    fn default() -> Self {
        RequestElection {
            election_version: 1,
            criteria: 0,
            uptime_ms: 0,
            unused: 0,
            server_name: String::new(),
            trailing: Vec::new(),
        }
    }
}
