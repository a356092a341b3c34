//! The stable signature table. Ids never change meaning; a changed detection logic bumps
//! `rev`. Every signature is documented in `docs/watch.md` (what it means, its evidence,
//! known false positives, tuning). Ids are in Suricata's local-use range (gid 1,
//! sid 1 000 000–1 999 999) so that they never collide with published rule sets.

use crate::alert::Severity;

/// Suricata's generator id for rule alerts.
pub const GID: u32 = 1;

/// One detection.
#[derive(Debug, PartialEq, Eq)]
pub struct Signature {
    /// Stable signature id (`alert.signature_id` in EVE).
    pub id: u32,
    /// Revision of the detection logic.
    pub rev: u32,
    /// Short stable slug, e.g. `nbns-answer-not-owner`.
    pub slug: &'static str,
    /// One-line text (`alert.signature`).
    pub msg: &'static str,
    /// `alert.category`.
    pub category: &'static str,
    /// Default severity; a detector may raise or lower it with evidence.
    pub severity: Severity,
}

const POISON: &str = "Name Poisoning";
const BROWSER: &str = "Browser Protocol Threat";
const HYGIENE: &str = "NetBIOS Datagram Hygiene";
const HONEY: &str = "Honey Query Answered";

macro_rules! sig {
    ($name:ident, $id:expr, $slug:expr, $cat:expr, $sev:ident, $msg:expr) => {
        #[doc = $msg]
        pub const $name: Signature = Signature {
            id: $id,
            rev: 1,
            slug: $slug,
            msg: $msg,
            category: $cat,
            severity: Severity::$sev,
        };
    };
}

// Name poisoning (NBNS, LLMNR, mDNS).
sig!(
    ANSWER_NOT_OWNER,
    1_138_101,
    "answer-not-owner",
    POISON,
    Medium,
    "NBDGM positive name answer from a host that does not own the name"
);
sig!(
    ANSWER_UNREGISTERED,
    1_138_102,
    "answer-unregistered-name",
    POISON,
    Low,
    "NBDGM positive name answer for a name never registered on the wire"
);
sig!(
    ANSWER_ADDRESS_MISMATCH,
    1_138_103,
    "answer-address-mismatch",
    POISON,
    Low,
    "NBDGM broadcast name answer carries an address other than its sender's"
);
sig!(
    MULTIPLE_RESPONDERS,
    1_138_104,
    "multiple-responders",
    POISON,
    Medium,
    "NBDGM one name query answered by two or more hosts"
);
sig!(
    UNSOLICITED_ANSWER,
    1_138_105,
    "unsolicited-answer",
    POISON,
    Low,
    "NBDGM name answer whose transaction id no seen query used"
);
sig!(
    MANY_NAMES_RESPONDER,
    1_138_106,
    "many-names-responder",
    POISON,
    Medium,
    "NBDGM one host answers for many unrelated names"
);
sig!(
    CROSS_PROTOCOL_RESPONDER,
    1_138_107,
    "cross-protocol-responder",
    POISON,
    Medium,
    "NBDGM one host answers for the same name over NBNS, LLMNR and mDNS"
);
sig!(
    POISONER,
    1_138_108,
    "poisoner",
    POISON,
    High,
    "NBDGM Responder-style name poisoner (confidence raised step by step)"
);
sig!(
    WPAD_ANSWERED,
    1_138_109,
    "wpad-answered",
    POISON,
    Medium,
    "NBDGM WPAD name answered"
);
sig!(
    ISATAP_ANSWERED,
    1_138_110,
    "isatap-answered",
    POISON,
    Medium,
    "NBDGM ISATAP name answered"
);

// Browser protocol (MS-BRWS).
sig!(
    MASTER_CHANGE,
    1_138_201,
    "master-change",
    BROWSER,
    Low,
    "NBDGM new local master browser for a workgroup"
);
sig!(
    ELECTION_STORM,
    1_138_202,
    "election-storm",
    BROWSER,
    Medium,
    "NBDGM browser election storm in a workgroup"
);
sig!(
    ELECTION_OVERCLAIM,
    1_138_203,
    "election-overclaim",
    BROWSER,
    Medium,
    "NBDGM election criteria claim more than the sender announces"
);
sig!(
    RESET_STATE,
    1_138_204,
    "reset-state-request",
    BROWSER,
    High,
    "NBDGM browser ResetStateRequest from a host that is not a master browser"
);
sig!(
    BECOME_BACKUP_ROGUE,
    1_138_205,
    "become-backup-rogue",
    BROWSER,
    Medium,
    "NBDGM BecomeBackup from a host that is not a master browser"
);
sig!(
    BACKUP_LIST_ROGUE,
    1_138_206,
    "backup-list-rogue",
    BROWSER,
    Medium,
    "NBDGM GetBackupListResponse from a host that is not a master browser"
);
sig!(
    ANNOUNCEMENT_FLOOD,
    1_138_207,
    "announcement-flood",
    BROWSER,
    Medium,
    "NBDGM browser announcement flood"
);
sig!(
    OVERLONG_BROWSER_FIELD,
    1_138_208,
    "overlong-browser-field",
    BROWSER,
    High,
    "NBDGM browser frame with an over-long name, comment or election field (MS11-019 shape)"
);

// Datagram hygiene (RFC 1002 §4.4, NETLOGON).
sig!(
    SOURCE_IP_MISMATCH,
    1_138_301,
    "source-ip-mismatch",
    HYGIENE,
    Medium,
    "NBDGM datagram SOURCE_IP differs from the UDP source without an NBDD"
);
sig!(
    OFF_SUBNET,
    1_138_302,
    "off-subnet",
    HYGIENE,
    Low,
    "NBDGM NetBIOS traffic from outside the local subnets"
);
sig!(
    DIRECT_UNIQUE_UNKNOWN,
    1_138_303,
    "direct-unique-unknown-name",
    HYGIENE,
    Low,
    "NBDGM DIRECT_UNIQUE datagram to a name nobody owns"
);
sig!(
    ROGUE_LOGON_RESPONSE,
    1_138_304,
    "rogue-logon-response",
    HYGIENE,
    High,
    "NBDGM NETLOGON logon response from a host that never registered a domain controller name"
);
sig!(
    MALFORMED,
    1_138_305,
    "malformed",
    HYGIENE,
    Low,
    "NBDGM malformed NetBIOS, LLMNR or mDNS packet"
);

// Honey queries.
sig!(
    HONEY_ANSWERED,
    1_138_401,
    "honey-answered",
    HONEY,
    High,
    "NBDGM answer to a honey query for a name that exists nowhere"
);

/// Every signature, in id order.
pub const ALL: &[&Signature] = &[
    &ANSWER_NOT_OWNER,
    &ANSWER_UNREGISTERED,
    &ANSWER_ADDRESS_MISMATCH,
    &MULTIPLE_RESPONDERS,
    &UNSOLICITED_ANSWER,
    &MANY_NAMES_RESPONDER,
    &CROSS_PROTOCOL_RESPONDER,
    &POISONER,
    &WPAD_ANSWERED,
    &ISATAP_ANSWERED,
    &MASTER_CHANGE,
    &ELECTION_STORM,
    &ELECTION_OVERCLAIM,
    &RESET_STATE,
    &BECOME_BACKUP_ROGUE,
    &BACKUP_LIST_ROGUE,
    &ANNOUNCEMENT_FLOOD,
    &OVERLONG_BROWSER_FIELD,
    &SOURCE_IP_MISMATCH,
    &OFF_SUBNET,
    &DIRECT_UNIQUE_UNKNOWN,
    &ROGUE_LOGON_RESPONSE,
    &MALFORMED,
    &HONEY_ANSWERED,
];

/// The signature with this id or slug.
pub fn find(key: &str) -> Option<&'static Signature> {
    let id: Option<u32> = key.parse().ok();
    ALL.iter()
        .copied()
        .find(|s| Some(s.id) == id || s.slug == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_slugs_are_unique_and_sorted() {
        for w in ALL.windows(2) {
            assert!(w[0].id < w[1].id, "{} !< {}", w[0].id, w[1].id);
        }
        let mut slugs: Vec<_> = ALL.iter().map(|s| s.slug).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), ALL.len());
        assert_eq!(find("1138204").map(|s| s.slug), Some("reset-state-request"));
        assert_eq!(find("poisoner").map(|s| s.id), Some(1_138_108));
        assert!(find("nope").is_none());
    }
}
