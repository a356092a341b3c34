//! Times on the dashboard: an RFC 3339 `datetime` (seconds), an absolute UTC title and a
//! relative text ("3 min ago") that the page's script keeps current. Never nanoseconds.

use chrono::{DateTime, SecondsFormat, Utc};

/// A time as the templates show it: `<time datetime="{iso}" title="{abs}">{rel}</time>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub iso: String,
    pub abs: String,
    pub rel: String,
}

impl Stamp {
    pub fn new(t: DateTime<Utc>, now: DateTime<Utc>) -> Stamp {
        Stamp {
            iso: t.to_rfc3339_opts(SecondsFormat::Secs, true),
            abs: t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            rel: relative(now - t),
        }
    }

    /// A stored timestamp (`None` when it does not parse).
    pub fn parse(s: &str, now: DateTime<Utc>) -> Option<Stamp> {
        crate::store::parse_ts(s).map(|t| Stamp::new(t, now))
    }
}

/// "just now", "42 s ago", "3 min ago", "5 h ago", "2 d ago"; "in 3 min" ahead.
pub fn relative(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    let (ahead, a) = (s < 0, s.unsigned_abs());
    if a < 10 {
        return "just now".into();
    }
    let (n, unit) = match a {
        0..=59 => (a, "s"),
        60..=3599 => (a / 60, "min"),
        3600..=86_399 => (a / 3600, "h"),
        _ => (a / 86_400, "d"),
    };
    if ahead {
        format!("in {n} {unit}")
    } else {
        format!("{n} {unit} ago")
    }
}

/// A duration in words: "3 d 4 h", "5 h 2 min", "12 min", "40 s".
pub fn span(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn formats() {
        let now = Utc::now();
        let s = Stamp::new(now - Duration::seconds(185), now);
        assert_eq!(s.rel, "3 min ago");
        assert!(!s.iso.contains('.'), "{}", s.iso);
        assert!(s.abs.ends_with(" UTC"));
        assert_eq!(relative(Duration::seconds(-7200)), "in 2 h");
        assert_eq!(relative(Duration::seconds(3)), "just now");
        assert_eq!(span(Duration::seconds(90_000)), "1 d 1 h");
        let p = Stamp::parse("2026-01-02T03:04:05.123456789Z", now).unwrap();
        assert_eq!(p.iso, "2026-01-02T03:04:05Z");
        assert_eq!(p.abs, "2026-01-02 03:04:05 UTC");
    }
}
