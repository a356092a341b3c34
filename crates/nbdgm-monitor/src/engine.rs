//! Confirmation and edge logic, free of I/O: each (check, target, port) key keeps its
//! confirmed value and a pending candidate; a new value counts only after `confirmations`
//! equal consecutive observations, and only such a confirmed change (an edge) may alert.
//! Reminders re-alert while the key stays bad; a change confirmed during a maintenance
//! window is stored but alerted only if it is still bad when the window ends.
//!
//! Keys: a port (`137/udp`: values `open`, `closed`, `ambiguous`), the host (`host`:
//! `up`, `down`) and the name table fingerprint (`service`: names and MAC).

use chrono::{DateTime, Utc};
use nbdgm_probe::probe::{HostInfo, PortState};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

use crate::config::Expect;

/// Port name of the host key.
pub const HOST_KEY: &str = "host";
/// Port name of the name-table key.
pub const SERVICE_KEY: &str = "service";

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertKind {
    PortNewOpen,
    PortNowClosed,
    PortStateAmbiguous,
    ServiceChanged,
    HostDown,
    /// A detection of another tool (`nbdgm watch`), see [`crate::external`].
    Detection,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::PortNewOpen => "PORT_NEW_OPEN",
            AlertKind::PortNowClosed => "PORT_NOW_CLOSED",
            AlertKind::PortStateAmbiguous => "PORT_STATE_AMBIGUOUS",
            AlertKind::ServiceChanged => "SERVICE_CHANGED",
            AlertKind::HostDown => "HOST_DOWN",
            AlertKind::Detection => "DETECTION",
        }
    }

    pub fn parse(s: &str) -> Option<AlertKind> {
        [
            AlertKind::PortNewOpen,
            AlertKind::PortNowClosed,
            AlertKind::PortStateAmbiguous,
            AlertKind::ServiceChanged,
            AlertKind::HostDown,
            AlertKind::Detection,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The kind of a key, which decides what is bad and which alert a change raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Port(Expect),
    Host,
    Service,
}

impl KeyKind {
    pub fn of(port: &str, expect: Expect) -> KeyKind {
        match port {
            HOST_KEY => KeyKind::Host,
            SERVICE_KEY => KeyKind::Service,
            _ => KeyKind::Port(expect),
        }
    }
}

/// A probe state as a key value; `None` for states that say nothing about the port
/// (host down, error): those are not observations of the port.
pub fn classify(state: PortState, ambiguous_as_open: bool) -> Option<&'static str> {
    match state {
        PortState::Open => Some("open"),
        PortState::LikelyOpen | PortState::OpenFiltered => Some(if ambiguous_as_open {
            "open"
        } else {
            "ambiguous"
        }),
        PortState::Filtered | PortState::Closed => Some("closed"),
        PortState::HostDown | PortState::Error | PortState::Unknown => None,
    }
}

/// The value of the service key: sorted names and the MAC.
pub fn fingerprint(info: &HostInfo) -> String {
    let mut names: Vec<String> = info
        .names
        .iter()
        .map(|n| format!("{}{}", n.name, if n.group { "/g" } else { "" }))
        .collect();
    names.sort();
    names.dedup();
    let mut s = names.join(",");
    if let Some(mac) = &info.mac {
        s.push_str(" mac=");
        s.push_str(mac);
    }
    s.chars().take(2000).collect()
}

/// Is a value bad for its key?
pub fn is_bad(kind: KeyKind, value: &str) -> bool {
    match kind {
        KeyKind::Port(Expect::Open) => value != "open",
        KeyKind::Port(Expect::Closed) => value != "closed",
        KeyKind::Host => value == "down",
        KeyKind::Service => false,
    }
}

/// The alert a confirmed change from `old` to `new` raises. A first value (baseline)
/// alerts only when it is bad.
pub fn alert_kind(kind: KeyKind, old: Option<&str>, new: &str) -> Option<AlertKind> {
    match kind {
        KeyKind::Port(_) => {
            if old.is_none() && !is_bad(kind, new) {
                return None;
            }
            match new {
                "open" => Some(AlertKind::PortNewOpen),
                "closed" => Some(AlertKind::PortNowClosed),
                "ambiguous" => Some(AlertKind::PortStateAmbiguous),
                _ => None,
            }
        }
        KeyKind::Host => (new == "down").then_some(AlertKind::HostDown),
        KeyKind::Service => old.map(|_| AlertKind::ServiceChanged),
    }
}

/// One key's state.
#[derive(Debug, Clone, Default)]
pub struct KeyState {
    /// The confirmed value.
    pub value: Option<String>,
    /// Change sequence number of the confirmed value (from the store).
    pub seq: i64,
    /// When the confirmed value was confirmed.
    pub since: Option<DateTime<Utc>>,
    pending: Option<(String, u32)>,
    last_reminder: i64,
    suppressed: bool,
}

/// The part of a key's state that is not in the store's `current` row: the pending
/// candidate and its count, the last reminder number, a change not alerted in maintenance.
/// Instances that split the targets ([`crate::fleet`]) keep it in the `pending` table, so
/// a key probed by another instance next cycle keeps counting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Volatile {
    pub pending: Option<(String, u32)>,
    pub last_reminder: i64,
    pub suppressed: bool,
}

/// What an observation leads to.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Nothing,
    /// A confirmed change to commit to the store (then [`KeyState::apply`]).
    Change {
        old: Option<String>,
        new: String,
        kind: Option<AlertKind>,
    },
    /// Re-alert the current bad value (`reminder` ≥ 1), or (`reminder` = 0) alert a change
    /// that was confirmed during maintenance and is still bad.
    Alert {
        seq: i64,
        reminder: i64,
        kind: AlertKind,
    },
}

/// Settings of the edge logic.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub confirmations: u32,
    pub remind_every: Option<Duration>,
}

impl KeyState {
    /// A key loaded from the store.
    pub fn confirmed(value: String, seq: i64, since: DateTime<Utc>) -> KeyState {
        KeyState {
            value: Some(value),
            seq,
            since: Some(since),
            ..KeyState::default()
        }
    }

    /// The state beyond the confirmed value.
    pub fn volatile(&self) -> Volatile {
        Volatile {
            pending: self.pending.clone(),
            last_reminder: self.last_reminder,
            suppressed: self.suppressed,
        }
    }

    /// Restore the state beyond the confirmed value.
    pub fn set_volatile(&mut self, v: Volatile) {
        self.pending = v.pending;
        self.last_reminder = v.last_reminder;
        self.suppressed = v.suppressed;
    }

    /// Take one observation.
    pub fn observe(
        &mut self,
        kind: KeyKind,
        value: &str,
        rules: Rules,
        now: DateTime<Utc>,
        maintenance: bool,
    ) -> Step {
        if self.value.as_deref() == Some(value) {
            self.pending = None;
            if !is_bad(kind, value) {
                self.suppressed = false;
                return Step::Nothing;
            }
            if maintenance {
                return Step::Nothing;
            }
            let current_kind = alert_kind(kind, Some(""), value);
            if self.suppressed {
                self.suppressed = false;
                if let Some(k) = current_kind {
                    return Step::Alert {
                        seq: self.seq,
                        reminder: 0,
                        kind: k,
                    };
                }
            }
            if let (Some(every), Some(since), Some(k)) =
                (rules.remind_every, self.since, current_kind)
            {
                let elapsed = (now - since).num_milliseconds().max(0) as u128;
                let n = (elapsed / every.as_millis().max(1)) as i64;
                if n >= 1 && n > self.last_reminder {
                    self.last_reminder = n;
                    return Step::Alert {
                        seq: self.seq,
                        reminder: n,
                        kind: k,
                    };
                }
            }
            return Step::Nothing;
        }
        let count = match &mut self.pending {
            Some((v, n)) if v == value => {
                *n = n.saturating_add(1);
                *n
            }
            _ => {
                self.pending = Some((value.to_owned(), 1));
                1
            }
        };
        if count < rules.confirmations {
            return Step::Nothing;
        }
        Step::Change {
            old: self.value.clone(),
            new: value.to_owned(),
            kind: alert_kind(kind, self.value.as_deref(), value),
        }
    }

    /// Record a committed change. `suppressed`: it was not alerted (maintenance).
    pub fn apply(&mut self, value: String, seq: i64, since: DateTime<Utc>, suppressed: bool) {
        self.value = Some(value);
        self.seq = seq;
        self.since = Some(since);
        self.pending = None;
        self.last_reminder = 0;
        self.suppressed = suppressed;
    }
}

/// Key of the state table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub check: String,
    pub target: String,
    pub port: String,
}

/// Every key of one check.
#[derive(Debug, Default)]
pub struct Engine {
    pub keys: HashMap<Key, KeyState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    const R: Rules = Rules {
        confirmations: 2,
        remind_every: None,
    };
    const P: KeyKind = KeyKind::Port(Expect::Closed);

    /// Feed values; return the changes' alert kinds (commits everything).
    fn run(st: &mut KeyState, values: &[&str], rules: Rules, maint: bool) -> Vec<Step> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let step = st.observe(P, v, rules, t(i as i64), maint);
            if let Step::Change { new, kind, .. } = &step {
                let seq = st.seq + 1;
                st.apply(new.clone(), seq, t(i as i64), maint && kind.is_some());
            }
            if step != Step::Nothing {
                out.push(step);
            }
        }
        out
    }

    #[test]
    fn baseline_good_is_silent_and_bad_alerts() {
        let mut st = KeyState::default();
        let steps = run(&mut st, &["closed", "closed", "closed"], R, false);
        assert_eq!(
            steps,
            [Step::Change {
                old: None,
                new: "closed".into(),
                kind: None
            }]
        );
        let mut st = KeyState::default();
        let steps = run(&mut st, &["open", "open"], R, false);
        assert!(matches!(
            steps[0],
            Step::Change {
                kind: Some(AlertKind::PortNewOpen),
                ..
            }
        ));
    }

    #[test]
    fn flapping_never_confirms() {
        let mut st = KeyState::confirmed("closed".into(), 1, t(0));
        let steps = run(
            &mut st,
            &["open", "closed", "open", "closed", "open", "closed"],
            R,
            false,
        );
        assert!(steps.is_empty(), "{steps:?}");
        let steps = run(
            &mut st,
            &["open", "open", "open", "closed", "closed"],
            R,
            false,
        );
        let kinds: Vec<_> = steps
            .iter()
            .map(|s| match s {
                Step::Change { kind, .. } => *kind,
                _ => None,
            })
            .collect();
        assert_eq!(
            kinds,
            [Some(AlertKind::PortNewOpen), Some(AlertKind::PortNowClosed)]
        );
    }

    #[test]
    fn reminders_while_bad() {
        let rules = Rules {
            confirmations: 1,
            remind_every: Some(Duration::from_secs(2)),
        };
        let mut st = KeyState::default();
        let steps = run(
            &mut st,
            &["open", "open", "open", "open", "open", "open"],
            rules,
            false,
        );
        // t0 change; t2 reminder 1; t4 reminder 2.
        assert_eq!(steps.len(), 3, "{steps:?}");
        assert_eq!(
            steps[1],
            Step::Alert {
                seq: 1,
                reminder: 1,
                kind: AlertKind::PortNewOpen
            }
        );
        assert!(matches!(steps[2], Step::Alert { reminder: 2, .. }));
    }

    #[test]
    fn maintenance_defers_until_it_ends() {
        let mut st = KeyState::confirmed("closed".into(), 3, t(0));
        let steps = run(&mut st, &["open", "open", "open"], R, true);
        assert_eq!(steps.len(), 1);
        // Window over, still open: one late alert for seq 4, then silence.
        let s = st.observe(P, "open", R, t(10), false);
        assert_eq!(
            s,
            Step::Alert {
                seq: 4,
                reminder: 0,
                kind: AlertKind::PortNewOpen
            }
        );
        assert_eq!(st.observe(P, "open", R, t(11), false), Step::Nothing);
        // Open then closed again during a window: nothing after it.
        let mut st = KeyState::confirmed("closed".into(), 3, t(0));
        run(&mut st, &["open", "open", "closed", "closed"], R, true);
        assert_eq!(st.observe(P, "closed", R, t(10), false), Step::Nothing);
    }

    #[test]
    fn kinds() {
        assert_eq!(classify(PortState::OpenFiltered, false), Some("ambiguous"));
        assert_eq!(classify(PortState::LikelyOpen, true), Some("open"));
        assert_eq!(classify(PortState::Filtered, false), Some("closed"));
        assert_eq!(classify(PortState::HostDown, false), None);
        assert_eq!(classify(PortState::Unknown, true), None);
        assert_eq!(
            alert_kind(KeyKind::Host, Some("up"), "down"),
            Some(AlertKind::HostDown)
        );
        assert_eq!(alert_kind(KeyKind::Host, Some("down"), "up"), None);
        assert_eq!(alert_kind(KeyKind::Service, None, "A"), None);
        assert_eq!(
            alert_kind(KeyKind::Service, Some("A"), "B"),
            Some(AlertKind::ServiceChanged)
        );
        assert_eq!(
            alert_kind(KeyKind::Port(Expect::Open), None, "ambiguous"),
            Some(AlertKind::PortStateAmbiguous)
        );
        assert_eq!(alert_kind(KeyKind::Port(Expect::Open), None, "open"), None);
    }
}
