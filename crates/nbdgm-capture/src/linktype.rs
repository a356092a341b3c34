//! Link-layer header types (the `LINKTYPE_*` values of the pcap and pcapng formats).

/// BSD loopback: 4-byte protocol family in the capturing host's byte order.
pub const LINKTYPE_NULL: u32 = 0;
/// IEEE 802.3 Ethernet.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Raw IP as written by some systems under DLT value 12.
pub const LINKTYPE_DLT_RAW12: u32 = 12;
/// Raw IP as written by BSD/OS and OpenBSD under DLT value 14.
pub const LINKTYPE_DLT_RAW14: u32 = 14;
/// Raw IPv4 or IPv6 (version taken from the first nibble).
pub const LINKTYPE_RAW: u32 = 101;
/// OpenBSD loopback: 4-byte protocol family in network byte order.
pub const LINKTYPE_LOOP: u32 = 108;
/// Linux "cooked" capture, version 1.
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// Raw IPv4.
pub const LINKTYPE_IPV4: u32 = 228;
/// Raw IPv6.
pub const LINKTYPE_IPV6: u32 = 229;
/// Linux "cooked" capture, version 2.
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// Whether this crate extracts UDP from frames of `linktype`.
pub fn linktype_supported(linktype: u32) -> bool {
    matches!(
        linktype,
        LINKTYPE_NULL
            | LINKTYPE_ETHERNET
            | LINKTYPE_DLT_RAW12
            | LINKTYPE_DLT_RAW14
            | LINKTYPE_RAW
            | LINKTYPE_LOOP
            | LINKTYPE_LINUX_SLL
            | LINKTYPE_IPV4
            | LINKTYPE_IPV6
            | LINKTYPE_LINUX_SLL2
    )
}

/// The tcpdump.org name of a link-layer type, without the `LINKTYPE_` prefix
/// (`"ETHERNET"`, `"LINUX_SLL"`, ...), or `"UNKNOWN"`.
pub fn linktype_name(linktype: u32) -> &'static str {
    match linktype {
        0 => "NULL",
        1 => "ETHERNET",
        3 => "AX25",
        6 => "IEEE802_5",
        7 => "ARCNET_BSD",
        8 => "SLIP",
        9 => "PPP",
        10 => "FDDI",
        12 | 14 => "RAW",
        50 => "PPP_HDLC",
        51 => "PPP_ETHER",
        100 => "ATM_RFC1483",
        101 => "RAW",
        104 => "C_HDLC",
        105 => "IEEE802_11",
        107 => "FRELAY",
        108 => "LOOP",
        113 => "LINUX_SLL",
        114 => "LTALK",
        117 => "PFLOG",
        119 => "IEEE802_11_PRISM",
        122 => "IP_OVER_FC",
        123 => "SUNATM",
        127 => "IEEE802_11_RADIOTAP",
        129 => "ARCNET_LINUX",
        147..=162 => "USER",
        163 => "IEEE802_11_AVS",
        189 => "USB_LINUX",
        192 => "PPI",
        195 => "IEEE802_15_4_WITHFCS",
        220 => "USB_LINUX_MMAPPED",
        227 => "CAN_SOCKETCAN",
        228 => "IPV4",
        229 => "IPV6",
        230 => "IEEE802_15_4_NOFCS",
        231 => "DBUS",
        239 => "NFLOG",
        249 => "USBPCAP",
        251 => "BLUETOOTH_LE_LL",
        252 => "WIRESHARK_UPPER_PDU",
        253 => "NETLINK",
        276 => "LINUX_SLL2",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(linktype_name(LINKTYPE_ETHERNET), "ETHERNET");
        assert_eq!(linktype_name(LINKTYPE_LINUX_SLL2), "LINUX_SLL2");
        assert_eq!(linktype_name(12), "RAW");
        assert_eq!(linktype_name(65_000), "UNKNOWN");
        assert!(linktype_supported(LINKTYPE_LOOP));
        assert!(!linktype_supported(105));
    }
}
