//! Maintenance windows: weekly (`days` + `start`/`end` in local time or UTC, an end before
//! the start wraps past midnight) or absolute (RFC 3339 `from`/`until`). During a window
//! results and state changes are stored but no alert is sent.

use chrono::{DateTime, Datelike, Local, NaiveTime, Timelike, Utc, Weekday};

/// One window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    Weekly {
        /// Bit 0 = Monday ... bit 6 = Sunday: the day the window starts.
        days: u8,
        /// Minutes after midnight.
        start: u16,
        end: u16,
        utc: bool,
    },
    Absolute {
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    },
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Why a maintenance day list or time of day does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("{0:?} is not a weekday (mon..sun)")]
    NotAWeekday(String),
    #[error("no days")]
    NoDays,
    #[error("{0:?} is not a time of day HH:MM")]
    NotATime(String),
}

fn day_index(s: &str) -> Result<u8, WindowError> {
    let l = s.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| l.starts_with(d) && l.len() >= 3)
        .map(|i| i as u8)
        .ok_or_else(|| WindowError::NotAWeekday(s.to_owned()))
}

/// Days such as `["mon-fri", "sun"]` as a bit set.
pub fn parse_days(list: &[String]) -> Result<u8, WindowError> {
    let mut bits = 0u8;
    for item in list {
        for part in item.split(',') {
            if let Some((a, b)) = part.split_once('-') {
                let (a, b) = (day_index(a)?, day_index(b)?);
                let mut d = a;
                loop {
                    bits |= 1 << d;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            } else {
                bits |= 1 << day_index(part)?;
            }
        }
    }
    if bits == 0 {
        return Err(WindowError::NoDays);
    }
    Ok(bits)
}

/// `HH:MM` (24 h; `24:00` is the end of the day) as minutes after midnight.
pub fn parse_hm(s: &str) -> Result<u16, WindowError> {
    let err = || WindowError::NotATime(s.to_owned());
    let (h, m) = s.trim().split_once(':').ok_or_else(err)?;
    let h: u16 = h.parse().map_err(|_| err())?;
    let m: u16 = m.parse().map_err(|_| err())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(err());
    }
    Ok(h * 60 + m)
}

impl Window {
    /// Is `now` inside the window?
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        match self {
            Window::Absolute { from, until } => *from <= now && now < *until,
            Window::Weekly {
                days,
                start,
                end,
                utc,
            } => {
                let (wd, t) = if *utc {
                    (now.weekday(), now.time())
                } else {
                    let l = now.with_timezone(&Local);
                    (l.weekday(), l.time())
                };
                weekly(*days, *start, *end, wd, t)
            }
        }
    }
}

fn weekly(days: u8, start: u16, end: u16, wd: Weekday, t: NaiveTime) -> bool {
    let minute = (t.hour() * 60 + t.minute()) as u16;
    let today = wd.num_days_from_monday() as u8;
    let yesterday = (today + 6) % 7;
    let on = |d: u8| days & (1 << d) != 0;
    if start < end {
        on(today) && start <= minute && minute < end
    } else if start > end {
        // Wraps past midnight: the part after start today, or before end on the next day.
        (on(today) && minute >= start) || (on(yesterday) && minute < end)
    } else {
        // start == end: the whole day.
        on(today)
    }
}

/// Is any window active?
pub fn active(windows: &[Window], now: DateTime<Utc>) -> bool {
    windows.iter().any(|w| w.contains(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn days_and_times() {
        assert_eq!(parse_days(&["mon-fri".into()]).unwrap(), 0b0011111);
        assert_eq!(parse_days(&["sat,sun".into()]).unwrap(), 0b1100000);
        assert_eq!(parse_days(&["fri-mon".into()]).unwrap(), 0b1110001);
        assert!(parse_days(&["funday".into()]).is_err());
        assert_eq!(parse_hm("22:30").unwrap(), 1350);
        assert!(parse_hm("25:00").is_err());
        assert!(parse_hm("10").is_err());
    }

    #[test]
    fn weekly_windows() {
        // 2025-01-06 is a Monday.
        let w = Window::Weekly {
            days: parse_days(&["mon".into()]).unwrap(),
            start: parse_hm("22:00").unwrap(),
            end: parse_hm("02:00").unwrap(),
            utc: true,
        };
        assert!(!w.contains(at("2025-01-06T21:59:00Z")));
        assert!(w.contains(at("2025-01-06T22:00:00Z")));
        assert!(w.contains(at("2025-01-07T01:59:00Z")));
        assert!(!w.contains(at("2025-01-07T02:00:00Z")));
        assert!(!w.contains(at("2025-01-07T22:30:00Z")));
        let day = Window::Weekly {
            days: 1,
            start: 60,
            end: 120,
            utc: true,
        };
        assert!(day.contains(Utc.with_ymd_and_hms(2025, 1, 6, 1, 30, 0).unwrap()));
        assert!(!day.contains(Utc.with_ymd_and_hms(2025, 1, 7, 1, 30, 0).unwrap()));
    }

    #[test]
    fn absolute_windows() {
        let w = Window::Absolute {
            from: at("2025-01-01T00:00:00Z"),
            until: at("2025-01-02T00:00:00Z"),
        };
        assert!(w.contains(at("2025-01-01T12:00:00Z")));
        assert!(!w.contains(at("2025-01-02T00:00:00Z")));
        assert!(active(&[w], at("2025-01-01T00:00:00Z")));
    }
}
