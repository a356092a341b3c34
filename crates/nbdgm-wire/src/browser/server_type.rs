//! The ServerType word of the announcements: SV_TYPE bits (MS-BRWS §2.2.1, MS-RAP
//! §2.5.5.2.1; DIGEST §6.3).

/// SV_TYPE bits (MS-RAP §2.5.5.2.1) with their names; 0x08000000 is not defined.
pub(super) const SERVER_TYPE_BITS: [(u32, &str); 32] = [
    (0x0000_0001, "WORKSTATION"),
    (0x0000_0002, "SERVER"),
    (0x0000_0004, "SQLSERVER"),
    (0x0000_0008, "DOMAIN_CTRL"),
    (0x0000_0010, "DOMAIN_BAKCTRL"),
    (0x0000_0020, "TIME_SOURCE"),
    (0x0000_0040, "AFP"),
    (0x0000_0080, "NOVELL"),
    (0x0000_0100, "DOMAIN_MEMBER"),
    (0x0000_0200, "PRINTQ_SERVER"),
    (0x0000_0400, "DIALIN_SERVER"),
    (0x0000_0800, "SERVER_UNIX"),
    (0x0000_1000, "NT"),
    (0x0000_2000, "WFW"),
    (0x0000_4000, "SERVER_MFPN"),
    (0x0000_8000, "SERVER_NT"),
    (0x0001_0000, "POTENTIAL_BROWSER"),
    (0x0002_0000, "BACKUP_BROWSER"),
    (0x0004_0000, "MASTER_BROWSER"),
    (0x0008_0000, "DOMAIN_MASTER"),
    (0x0010_0000, "SERVER_OSF"),
    (0x0020_0000, "SERVER_VMS"),
    (0x0040_0000, "WINDOWS"),
    (0x0080_0000, "DFS"),
    (0x0100_0000, "CLUSTER_NT"),
    (0x0200_0000, "TERMINALSERVER"),
    (0x0400_0000, "CLUSTER_VS_NT"),
    (0x0800_0000, "UNDEFINED_0x08000000"),
    (0x1000_0000, "DCE"),
    (0x2000_0000, "ALTERNATE_XPORT"),
    (0x4000_0000, "LOCAL_LIST_ONLY"),
    (0x8000_0000, "DOMAIN_ENUM"),
];

/// The name of every set SV_TYPE bit, lowest bit first (DIGEST §6.3).
pub fn server_type_names(bits: u32) -> Vec<&'static str> {
    SERVER_TYPE_BITS
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|&(_, name)| name)
        .collect()
}

/// A ServerType word with the SV_TYPE constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ServerType(pub u32);

impl ServerType {
    pub const WORKSTATION: u32 = 0x0000_0001;
    pub const SERVER: u32 = 0x0000_0002;
    pub const SQLSERVER: u32 = 0x0000_0004;
    pub const DOMAIN_CTRL: u32 = 0x0000_0008;
    pub const DOMAIN_BAKCTRL: u32 = 0x0000_0010;
    pub const TIME_SOURCE: u32 = 0x0000_0020;
    pub const AFP: u32 = 0x0000_0040;
    pub const NOVELL: u32 = 0x0000_0080;
    pub const DOMAIN_MEMBER: u32 = 0x0000_0100;
    pub const PRINTQ_SERVER: u32 = 0x0000_0200;
    pub const DIALIN_SERVER: u32 = 0x0000_0400;
    pub const SERVER_UNIX: u32 = 0x0000_0800;
    pub const NT: u32 = 0x0000_1000;
    pub const WFW: u32 = 0x0000_2000;
    pub const SERVER_MFPN: u32 = 0x0000_4000;
    pub const SERVER_NT: u32 = 0x0000_8000;
    pub const POTENTIAL_BROWSER: u32 = 0x0001_0000;
    pub const BACKUP_BROWSER: u32 = 0x0002_0000;
    pub const MASTER_BROWSER: u32 = 0x0004_0000;
    pub const DOMAIN_MASTER: u32 = 0x0008_0000;
    pub const SERVER_OSF: u32 = 0x0010_0000;
    pub const SERVER_VMS: u32 = 0x0020_0000;
    pub const WINDOWS: u32 = 0x0040_0000;
    pub const DFS: u32 = 0x0080_0000;
    pub const CLUSTER_NT: u32 = 0x0100_0000;
    pub const TERMINALSERVER: u32 = 0x0200_0000;
    pub const CLUSTER_VS_NT: u32 = 0x0400_0000;
    pub const DCE: u32 = 0x1000_0000;
    pub const ALTERNATE_XPORT: u32 = 0x2000_0000;
    /// A request flag only: never put it in an announcement (Samba masks it).
    pub const LOCAL_LIST_ONLY: u32 = 0x4000_0000;
    pub const DOMAIN_ENUM: u32 = 0x8000_0000;
    pub const ALL: u32 = 0xFFFF_FFFF;

    /// True if every bit of `bits` is set.
    pub fn contains(self, bits: u32) -> bool {
        self.0 & bits == bits
    }

    pub fn names(self) -> Vec<&'static str> {
        server_type_names(self.0)
    }
}
