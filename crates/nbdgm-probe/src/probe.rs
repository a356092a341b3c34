//! Exposure probes of the NetBIOS ports: NODE STATUS on 137/udp (RFC 1002 §4.2.17–4.2.18,
//! DIGEST §4.3), a GetBackupListRequest mailslot write on 138/udp (MS-MAIL §2.2.1,
//! MS-BRWS §2.2.4–2.2.5, DIGEST §5–§6), TCP connects on 138 and 445, and a NetBIOS
//! SESSION REQUEST on 139/tcp (RFC 1002 §4.3.2). Every port ends in a [`PortState`] with the
//! evidence for it (the answer, the ICMP error read from the socket's error queue with
//! `IP_RECVERR`, or the silence); `docs/probe.md` has the mapping.
//!
//! Safety rails: every socket is created, connected and sent on only through [`Scope`],
//! which refuses any destination outside the probed targets; every wait, retry, read and
//! list is bounded; nothing here panics on any input.
//!
//! - [`port`]: ports, states, results; [`options`]: how to probe, within bounds
//! - [`pace`]: the rate limit; [`scope`]: the send guard
//! - [`icmp`]: the error queue; [`evidence`]: what was seen and the state it means
//! - [`udp`]: one UDP exchange with retries; [`udp_name`]: 137/udp; [`udp_datagram`]: 138/udp
//!   ([`udp_announce`]: its AnnouncementRequest when GetBackupList is unanswered)
//! - [`tcp`]: connects (138/tcp, 445/tcp); [`tcp_session`]: 139/tcp
//! - [`host`]: one host, all hosts; [`discovered`]: all hosts after host discovery
//!   ([`discover`]: the ARP sweep of on-link targets, [`arp`]: RFC 826 packets; [`neigh`]:
//!   the kernel's neighbour table, without CAP_NET_RAW); [`report`]: JSON, CSV, text; [`nagios`]: exit codes

pub mod arp;
pub mod discover;
pub mod discovered;
pub mod evidence;
pub mod host;
pub mod icmp;
pub mod nagios;
pub mod neigh;
pub mod options;
pub mod pace;
pub mod port;
pub mod report;
pub mod scope;
pub mod tcp;
pub mod tcp_session;
pub mod udp;
pub mod udp_announce;
pub mod udp_datagram;
pub mod udp_name;

pub use discovered::{
    probe_all_with, DiscoveryMode, DiscoveryOptions, DiscoveryReport, ON_LINK_TIMEOUT,
};
pub use evidence::{by_silence, clean, decide, on_live_host, Evidence, MAX_EVIDENCE_LEN};
pub use host::{probe_all, probe_host};
pub use icmp::{
    icmp_sender, unreach_code_name, IcmpError, ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED,
    SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_LOCAL,
};
pub use nagios::{
    exit_code, nagios, nagios_level, Expect, Verdict, NAGIOS_CRITICAL, NAGIOS_OK, NAGIOS_UNKNOWN,
    NAGIOS_WARNING,
};
pub use options::{
    ProbeOptions, DEFAULT_RATE, DEFAULT_WORKGROUP, MAX_CONCURRENCY, MAX_RETRIES, MAX_TIMEOUT,
    MAX_WINDOW, MIN_TIMEOUT, PROBE_NAME,
};
pub use pace::RateLimiter;
pub use port::{HostInfo, HostResult, Port, PortListError, PortResult, PortState, ServiceName};
pub use report::{csv_cell, to_csv, to_json, to_json_with_discovery, to_text, CSV_HEADER};
pub use scope::Scope;
pub use tcp::probe_tcp;
pub use tcp_session::{describe_session_answer, probe_session, session_request};
pub use udp::BuildError;
pub use udp_datagram::{backup_list_request, describe_dgm_answer, probe_dgm};
pub use udp_name::{display_name, host_info, probe_ns, MAX_NAMES};

#[cfg(test)]
mod tests;
