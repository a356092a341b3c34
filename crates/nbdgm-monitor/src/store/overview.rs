//! Dashboard queries (issue 15 §2): the history of one key as segments of confirmed
//! values over a window (from the `changes` table, bounded), its share of time closed and
//! not violating.

use super::{parse_ts, t, ts, ChangeRow, Query, Result, Store};
use crate::engine::Key;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Most changes read for one key's history.
pub const MAX_HISTORY_CHANGES: usize = 2_000;

/// A stretch of time during which a key had one confirmed value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub value: String,
    pub bad: bool,
    /// The change that started it was confirmed during a maintenance window.
    pub maintenance: bool,
}

/// The confirmed history of one key over `[from, until)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyHistory {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Oldest first; time before the first known value is not covered.
    pub segments: Vec<Segment>,
    /// The changes inside the window, newest first.
    pub changes: Vec<ChangeRow>,
    /// More than [`MAX_HISTORY_CHANGES`] changes: the oldest part is missing.
    pub truncated: bool,
}

impl KeyHistory {
    /// The same history restricted to `[from, self.until)`.
    pub fn clip(&self, from: DateTime<Utc>) -> KeyHistory {
        let from = from.max(self.from);
        let segments = self
            .segments
            .iter()
            .filter(|s| s.until > from)
            .map(|s| Segment {
                from: s.from.max(from),
                ..s.clone()
            })
            .collect();
        let changes = self
            .changes
            .iter()
            .filter(|c| parse_ts(&c.ts).is_some_and(|t| t >= from))
            .cloned()
            .collect();
        KeyHistory {
            from,
            until: self.until,
            segments,
            changes,
            truncated: self.truncated,
        }
    }

    /// Share (0..=1) of the known time for which `f` holds; `None` when nothing is known.
    pub fn share(&self, f: impl Fn(&Segment) -> bool) -> Option<f64> {
        let mut known = 0i64;
        let mut yes = 0i64;
        for s in &self.segments {
            let d = (s.until - s.from).num_milliseconds().max(0);
            known += d;
            if f(s) {
                yes += d;
            }
        }
        (known > 0).then(|| yes as f64 / known as f64)
    }

    /// Share of the known time the confirmed value was `closed`.
    pub fn share_closed(&self) -> Option<f64> {
        self.share(|s| s.value == "closed")
    }

    /// Share of the known time the key was not violating its expectation.
    pub fn share_ok(&self) -> Option<f64> {
        self.share(|s| !s.bad)
    }
}

impl Store {
    /// The confirmed history of `key` over `[from, until)`: the value before `from`
    /// (one row) and at most [`MAX_HISTORY_CHANGES`] changes inside the window.
    pub fn key_history(
        &mut self,
        key: &Key,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<KeyHistory> {
        let k = [t(&key.check), t(&key.target), t(&key.port), t(ts(from))];
        let before = self.db.query(
            "SELECT new_value, bad, in_maintenance FROM changes WHERE check_name = $1 \
             AND target = $2 AND port = $3 AND ts < $4 ORDER BY ts DESC, id DESC LIMIT 1",
            &k,
        )?;
        let changes = self.changes(&Query {
            check: Some(key.check.clone()),
            target: Some(key.target.clone()),
            port: Some(key.port.clone()),
            since: Some(from),
            until: Some(until),
            limit: MAX_HISTORY_CHANGES,
        })?;
        let mut changes = changes;
        changes.sort_by(|a, b| b.ts.cmp(&a.ts).then(b.id.cmp(&a.id)));
        let truncated = changes.len() >= MAX_HISTORY_CHANGES;
        let mut open: Option<Segment> = match before.first() {
            Some(r) if !truncated => Some(Segment {
                from,
                until,
                value: r[0].text(),
                bad: r[1].int() != 0,
                maintenance: r[2].int() != 0,
            }),
            _ => None,
        };
        let mut asc: Vec<(DateTime<Utc>, &ChangeRow)> = changes
            .iter()
            .filter_map(|c| parse_ts(&c.ts).map(|t| (t, c)))
            .collect();
        asc.sort_by_key(|(t, c)| (*t, c.id));
        let mut segments = Vec::with_capacity(asc.len() + 1);
        for (at, c) in asc {
            if let Some(mut s) = open.take() {
                s.until = at;
                if s.until > s.from {
                    segments.push(s);
                }
            }
            open = Some(Segment {
                from: at,
                until,
                value: c.new.clone(),
                bad: c.bad,
                maintenance: c.in_maintenance,
            });
        }
        segments.extend(open.filter(|s| s.until > s.from));
        Ok(KeyHistory {
            from,
            until,
            segments,
            changes,
            truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewChange;
    use chrono::Duration;

    fn change(s: &mut Store, key: &Key, old: Option<&str>, new: &str, at: DateTime<Utc>) {
        s.commit_change(&NewChange {
            key,
            old,
            new,
            kind: None,
            expected: "closed",
            bad: new == "open",
            in_maintenance: false,
            at,
        })
        .unwrap();
    }

    #[test]
    fn segments_and_shares() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open_sqlite(&dir.path().join("s.db"), "t").unwrap();
        let key = Key {
            check: "c".into(),
            target: "198.51.100.1".into(),
            port: "138/udp".into(),
        };
        let now = Utc::now();
        change(&mut s, &key, None, "closed", now - Duration::days(10));
        change(
            &mut s,
            &key,
            Some("closed"),
            "open",
            now - Duration::hours(30),
        );
        change(
            &mut s,
            &key,
            Some("open"),
            "closed",
            now - Duration::hours(6),
        );
        let h = s.key_history(&key, now - Duration::days(7), now).unwrap();
        assert_eq!(h.changes.len(), 2);
        let v: Vec<&str> = h.segments.iter().map(|s| s.value.as_str()).collect();
        assert_eq!(v, ["closed", "open", "closed"]);
        assert_eq!(h.segments[0].from, now - Duration::days(7));
        let closed = h.share_closed().unwrap();
        // 24 h open out of 168 h.
        assert!((closed - 144.0 / 168.0).abs() < 0.001, "{closed}");
        let day = h.clip(now - Duration::hours(24));
        assert_eq!(day.changes.len(), 1);
        let open = 1.0 - day.share_ok().unwrap();
        assert!((open - 18.0 / 24.0).abs() < 0.001, "{open}");
        // No history before the first change: that time is not counted.
        let other = Key {
            port: "137/udp".into(),
            ..key.clone()
        };
        change(&mut s, &other, None, "closed", now - Duration::hours(1));
        let h = s.key_history(&other, now - Duration::days(7), now).unwrap();
        assert_eq!(h.segments.len(), 1);
        assert_eq!(h.share_closed(), Some(1.0));
        assert!(s
            .key_history(
                &Key {
                    port: "x".into(),
                    ..key
                },
                now - Duration::days(1),
                now
            )
            .unwrap()
            .share_closed()
            .is_none());
    }
}
