//! Capture timestamps.

use std::fmt;

/// A capture timestamp: seconds since the Unix epoch (UTC) and nanoseconds.
///
/// Ordering is chronological. `nanos` is always below 1 000 000 000.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z (negative before it).
    pub secs: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
}

const NANOS_PER_SEC: u64 = 1_000_000_000;

impl Timestamp {
    /// Builds a timestamp, carrying `nanos` beyond one second into `secs`.
    pub fn new(secs: i64, nanos: u32) -> Timestamp {
        let carry = i64::from(nanos / 1_000_000_000);
        Timestamp {
            secs: secs.saturating_add(carry),
            nanos: nanos % 1_000_000_000,
        }
    }

    /// Seconds since the epoch as a floating-point number (loses precision below
    /// about a microsecond for present-day dates).
    pub fn as_f64(&self) -> f64 {
        self.secs as f64 + f64::from(self.nanos) / 1e9
    }

    /// Total nanoseconds since the epoch.
    pub fn as_nanos(&self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }

    /// RFC 3339 UTC with microseconds, e.g. `2020-09-18T14:59:59.123456Z`
    /// (sub-microsecond digits are truncated). The returned value implements
    /// `Display`, so it formats without an intermediate `String`.
    pub fn rfc3339_micros(&self) -> Rfc3339Micros {
        Rfc3339Micros(*self)
    }

    /// [`Timestamp::rfc3339_micros`] as a `String`.
    pub fn to_rfc3339_micros(&self) -> String {
        // Hand-formatted: this runs once per decoded packet.
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return self.rfc3339_micros().to_string();
        }
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        let put = |b: &mut [u8; 27], at: usize, width: usize, mut v: u64| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(&mut b, 0, 4, y as u64);
        put(&mut b, 5, 2, u64::from(m));
        put(&mut b, 8, 2, u64::from(d));
        put(&mut b, 11, 2, (sod / 3600) as u64);
        put(&mut b, 14, 2, ((sod / 60) % 60) as u64);
        put(&mut b, 17, 2, (sod % 60) as u64);
        put(&mut b, 20, 6, u64::from(self.nanos / 1000));
        String::from_utf8_lossy(&b).into_owned()
    }

    /// Seconds since the epoch with six decimals, e.g. `1600441199.123456`
    /// (exact decimal formatting, no floating-point rounding; truncated to the
    /// microsecond). The returned value implements `Display`.
    pub fn epoch_micros(&self) -> EpochMicros {
        EpochMicros(*self)
    }

    /// [`Timestamp::epoch_micros`] as a `String`.
    pub fn to_epoch_micros(&self) -> String {
        self.epoch_micros().to_string()
    }

    /// Nanoseconds from `earlier` to `self` (negative if `self` is earlier).
    pub(crate) fn nanos_since(&self, earlier: &Timestamp) -> i128 {
        self.as_nanos() - earlier.as_nanos()
    }

    /// From a 64-bit count of `units_per_sec` units plus an offset in seconds (pcapng).
    pub(crate) fn from_units(ts: u64, conv: TsConv, offset_secs: i64) -> Timestamp {
        let secs = ts / conv.units_per_sec;
        let frac = ts % conv.units_per_sec;
        let nanos = if conv.ns_per_unit != 0 {
            frac.saturating_mul(conv.ns_per_unit)
        } else {
            ((u128::from(frac) * u128::from(NANOS_PER_SEC)) / u128::from(conv.units_per_sec)) as u64
        };
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        Timestamp {
            secs: secs.saturating_add(offset_secs),
            nanos: u32::try_from(nanos).unwrap_or(999_999_999).min(999_999_999),
        }
    }

    /// From a pcap record header: seconds plus micro- or nanoseconds (values of the
    /// fraction at or above one second are carried).
    pub(crate) fn from_pcap(secs: u32, frac: u32, nanosecond: bool) -> Timestamp {
        let (carry, nanos) = if nanosecond {
            (frac / 1_000_000_000, frac % 1_000_000_000)
        } else {
            (frac / 1_000_000, (frac % 1_000_000) * 1000)
        };
        Timestamp {
            secs: i64::from(secs) + i64::from(carry),
            nanos,
        }
    }
}

/// Conversion of pcapng timestamp units to nanoseconds (from `if_tsresol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TsConv {
    /// Units per second (never 0).
    pub units_per_sec: u64,
    /// Nanoseconds per unit when that is an integer, else 0.
    pub ns_per_unit: u64,
}

impl TsConv {
    /// Microseconds, the pcapng default.
    pub const MICROS: TsConv = TsConv {
        units_per_sec: 1_000_000,
        ns_per_unit: 1000,
    };

    /// From the `if_tsresol` option byte; `None` if it is out of range.
    pub fn from_tsresol(tsresol: u8) -> Option<TsConv> {
        let units_per_sec = if tsresol & 0x80 == 0 {
            10u64.checked_pow(u32::from(tsresol))?
        } else {
            1u64.checked_shl(u32::from(tsresol & 0x7f))?
        };
        let ns_per_unit = if units_per_sec <= NANOS_PER_SEC
            && (NANOS_PER_SEC / units_per_sec) * units_per_sec == NANOS_PER_SEC
        {
            NANOS_PER_SEC / units_per_sec
        } else {
            0
        };
        Some(TsConv {
            units_per_sec,
            ns_per_unit,
        })
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

/// RFC 3339 formatting of a [`Timestamp`]; see [`Timestamp::rfc3339_micros`].
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339Micros(Timestamp);

impl fmt::Display for Rfc3339Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        let days = t.secs.div_euclid(86_400);
        let sod = t.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            y,
            m,
            d,
            sod / 3600,
            (sod / 60) % 60,
            sod % 60,
            t.nanos / 1000
        )
    }
}

/// Epoch-seconds formatting of a [`Timestamp`]; see [`Timestamp::epoch_micros`].
#[derive(Debug, Clone, Copy)]
pub struct EpochMicros(Timestamp);

impl fmt::Display for EpochMicros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        let micros = t.nanos / 1000;
        if t.secs < 0 && micros > 0 {
            // secs + micros/1e6 is negative: print its magnitude.
            let whole = -(t.secs + 1);
            write!(f, "-{}.{:06}", whole, 1_000_000 - micros)
        } else {
            write!(f, "{}.{:06}", t.secs, micros)
        }
    }
}

impl fmt::Display for Timestamp {
    /// Formats as RFC 3339 UTC with microseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.rfc3339_micros().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_rfc3339_matches_display() {
        for (secs, nanos) in [
            (0, 0),
            (1_080_055_050, 461_235_999),
            (1_600_441_199, 123_456_000),
            (951_782_400, 1_000),           // 2000-02-29
            (253_402_300_799, 999_999_999), // 9999-12-31T23:59:59
            (-1, 500_000_000),
        ] {
            let t = super::Timestamp::new(secs, nanos);
            assert_eq!(
                t.to_rfc3339_micros(),
                t.rfc3339_micros().to_string(),
                "{secs}"
            );
        }
    }

    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(
            Timestamp::new(0, 0).to_rfc3339_micros(),
            "1970-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::new(1_600_441_199, 123_456_789).to_rfc3339_micros(),
            "2020-09-18T14:59:59.123456Z"
        );
        // Leap day.
        assert_eq!(
            Timestamp::new(951_782_400, 0).to_rfc3339_micros(),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::new(-1, 500_000_000).to_rfc3339_micros(),
            "1969-12-31T23:59:59.500000Z"
        );
        assert_eq!(
            Timestamp::new(4_102_444_800, 0).to_rfc3339_micros(),
            "2100-01-01T00:00:00.000000Z"
        );
        // Extremes do not panic.
        let _ = Timestamp::new(i64::MAX, 999_999_999).to_rfc3339_micros();
        let _ = Timestamp::new(i64::MIN, 0).to_rfc3339_micros();
    }

    #[test]
    fn epoch() {
        assert_eq!(
            Timestamp::new(1_600_441_199, 123_456_789).to_epoch_micros(),
            "1600441199.123456"
        );
        assert_eq!(Timestamp::new(5, 0).to_epoch_micros(), "5.000000");
        assert_eq!(
            Timestamp::new(-2, 500_000_000).to_epoch_micros(),
            "-1.500000"
        );
        assert_eq!(Timestamp::new(-1, 0).to_epoch_micros(), "-1.000000");
        assert!((Timestamp::new(10, 250_000_000).as_f64() - 10.25).abs() < 1e-9);
    }

    #[test]
    fn new_carries() {
        assert_eq!(
            Timestamp::new(1, 2_500_000_000),
            Timestamp::new(3, 500_000_000)
        );
    }

    #[test]
    fn pcap_fraction() {
        assert_eq!(
            Timestamp::from_pcap(10, 1_500_000, false),
            Timestamp::new(11, 500_000_000)
        );
        assert_eq!(Timestamp::from_pcap(10, 7, true), Timestamp::new(10, 7));
    }

    #[test]
    fn tsresol() {
        let us = TsConv::from_tsresol(6).unwrap();
        assert_eq!(us, TsConv::MICROS);
        let ns = TsConv::from_tsresol(9).unwrap();
        assert_eq!(
            Timestamp::from_units(1_000_000_123, ns, 0),
            Timestamp::new(1, 123)
        );
        let ps = TsConv::from_tsresol(12).unwrap();
        assert_eq!(ps.ns_per_unit, 0);
        assert_eq!(
            Timestamp::from_units(2_000_000_001_000, ps, 0),
            Timestamp::new(2, 1)
        );
        let bin = TsConv::from_tsresol(0x80 | 10).unwrap();
        assert_eq!(bin.units_per_sec, 1024);
        assert_eq!(
            Timestamp::from_units(1024 + 512, bin, 100),
            Timestamp::new(101, 500_000_000)
        );
        assert!(TsConv::from_tsresol(20).is_none());
        assert!(TsConv::from_tsresol(0x80 | 64).is_none());
        assert_eq!(
            Timestamp::from_units(u64::MAX, TsConv::from_tsresol(0).unwrap(), i64::MAX).secs,
            i64::MAX
        );
    }
}
