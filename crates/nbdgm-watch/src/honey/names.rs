//! Honey names: plausible names that exist nowhere, shaped like the names learned on
//! this LAN (NetBIOS rules, RFC 1001 §14: at most 15 bytes; we use only `A-Z 0-9 - _`),
//! and jittered intervals between honey rounds.

use nbdgm_base::random::Random;
use std::time::Duration;

const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Draws before giving up on a seed shape and using the fallback shape.
const TRIES: usize = 32;
/// Random characters in every honey name, at least.
const MIN_RANDOM: usize = 4;

/// One honey name, in the forms each protocol queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoneyName {
    /// NetBIOS name, upper case, 1 to 15 bytes of `A-Z 0-9 - _`.
    pub netbios: String,
    /// The DNS label (LLMNR name; mDNS queries `<label>.local`): lower case, `_` as `-`.
    pub label: String,
}

impl HoneyName {
    /// From a NetBIOS-legal base name.
    fn from_netbios(netbios: String) -> HoneyName {
        let label = netbios.to_ascii_lowercase().replace('_', "-");
        HoneyName { netbios, label }
    }

    /// The mDNS name, `<label>.local`.
    pub fn mdns(&self) -> String {
        format!("{}.local", self.label)
    }
}

fn pick(rng: &mut Random, set: &[u8]) -> char {
    char::from(set[(rng.next_u32() as usize) % set.len()])
}

/// The base of a canonical learned name (`NAME<xx>` → `NAME`; `host.local` or
/// `host.example` → `HOST`; NetBIOS names only with suffix 00 or 20), upper case, if it is a plausible host name: 1 to 15 bytes
/// of `A-Z 0-9 - _` not starting with a separator.
pub fn seed_base(canonical: &str) -> Option<String> {
    let base = match canonical.find('<') {
        Some(i) if canonical.ends_with("<00>") || canonical.ends_with("<20>") => &canonical[..i],
        Some(_) => return None,
        None => canonical.split('.').next().unwrap_or(""),
    };
    let base = base.trim_end().to_ascii_uppercase();
    let ok = !base.is_empty()
        && base.len() <= 15
        && base
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(base)
}

/// The fallback shape when nothing is learned: Windows' default computer name,
/// `DESKTOP-` and 7 random upper-case letters and digits.
pub fn windows_default(rng: &mut Random) -> String {
    let mut s = String::from("DESKTOP-");
    for _ in 0..7 {
        s.push(pick(rng, ALNUM));
    }
    s
}

/// A name of the shape of `base`: its leading letters and separators kept, the rest
/// redrawn class for class (letter for letter, digit for digit, separators kept). At
/// least [`MIN_RANDOM`] characters are redrawn (from the end).
pub fn reshape(base: &str, rng: &mut Random) -> String {
    let b = base.as_bytes();
    let mut keep = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    keep += b[keep..]
        .iter()
        .take_while(|&&c| c == b'-' || c == b'_')
        .count();
    if b.len() - keep < MIN_RANDOM {
        keep = b.len().saturating_sub(MIN_RANDOM);
    }
    let mut out = String::with_capacity(b.len().max(MIN_RANDOM));
    out.push_str(&base[..keep]);
    for &c in &b[keep..] {
        out.push(match c {
            b'0'..=b'9' => pick(rng, DIGITS),
            b'-' | b'_' => char::from(c),
            _ => pick(rng, LETTERS),
        });
    }
    // Short names (under MIN_RANDOM) grow to MIN_RANDOM random characters.
    while out.len() < MIN_RANDOM {
        out.push(pick(rng, LETTERS));
    }
    out
}

/// A honey name shaped like one of `learned` (canonical names, see
/// [`crate::Engine::learned_names`]), equal to none of them; the Windows default shape
/// when none is usable.
pub fn generate(learned: &[String], rng: &mut Random) -> HoneyName {
    let bases: Vec<String> = learned.iter().filter_map(|n| seed_base(n)).collect();
    let taken = |s: &str| bases.iter().any(|b| b.eq_ignore_ascii_case(s));
    let shapes: Vec<&String> = bases
        .iter()
        .filter(|b| !b.starts_with("__") && !b.eq_ignore_ascii_case("WPAD"))
        .collect();
    for _ in 0..TRIES {
        let s = if shapes.is_empty() {
            windows_default(rng)
        } else {
            let seed = shapes[(rng.next_u32() as usize) % shapes.len()];
            reshape(seed, rng)
        };
        if !taken(&s) {
            return HoneyName::from_netbios(s);
        }
    }
    loop {
        let s = windows_default(rng);
        if !taken(&s) {
            return HoneyName::from_netbios(s);
        }
    }
}

/// `mean` scaled by a uniform factor in `[1 - jitter, 1 + jitter]` (jitter clamped to
/// `0..=0.9`), at least 1 ms.
pub fn jittered(mean: Duration, jitter: f64, rng: &mut Random) -> Duration {
    let j = if jitter.is_finite() {
        jitter.clamp(0.0, 0.9)
    } else {
        0.0
    };
    let u = f64::from(rng.next_u32()) / f64::from(u32::MAX) * 2.0 - 1.0;
    mean.mul_f64(1.0 + j * u).max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn legal(n: &HoneyName) {
        assert!(!n.netbios.is_empty() && n.netbios.len() <= 15, "{n:?}");
        assert!(
            n.netbios
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_'),
            "{n:?}"
        );
        assert!(nbdgm_wire::name::Name::new(&n.netbios, 0x20).is_ok());
        assert!(super::super::query::mdns_query(&n.mdns(), 1).is_ok());
    }

    #[test]
    fn fallback_is_the_windows_default_shape_and_random() {
        let mut rng = Random::from_os();
        let names: HashSet<String> = (0..50).map(|_| generate(&[], &mut rng).netbios).collect();
        assert!(names.len() >= 49, "names repeat: {names:?}");
        for n in &names {
            assert_eq!(n.len(), 15);
            assert!(n.starts_with("DESKTOP-"), "{n}");
        }
    }

    #[test]
    fn names_follow_learned_shapes_and_never_equal_a_learned_name() {
        let learned: Vec<String> = [
            "DESKTOP-AB12CD3<20>",
            "WIN2K3LAB023<00>",
            "printer.local",
            "SA<20>",
            "__MSBROWSE__<01>",
            "WORKGROUP<1E>",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let bases: HashSet<String> = learned.iter().filter_map(|n| seed_base(n)).collect();
        let mut rng = Random::from_os();
        let mut seen = HashSet::new();
        for _ in 0..500 {
            let n = generate(&learned, &mut rng);
            legal(&n);
            assert!(!bases.contains(&n.netbios), "{n:?} is learned");
            seen.insert(n.netbios);
        }
        assert!(seen.len() > 450, "too few distinct names: {}", seen.len());
        assert!(seen
            .iter()
            .any(|n| n.starts_with("DESKTOP-") && n.len() == 15));
        assert!(seen.iter().any(|n| n.starts_with("WIN") && n.len() == 12));
        assert!(seen.iter().any(|n| n.starts_with("PRI") && n.len() == 7));
    }

    #[test]
    fn reshape_keeps_classes() {
        let mut rng = Random::seeded(1);
        let s = reshape("DESKTOP-AB12CD3", &mut rng);
        assert!(s.starts_with("DESKTOP-"));
        let tail = &s.as_bytes()[8..];
        assert!(
            tail[0].is_ascii_uppercase() && tail[2].is_ascii_digit() && tail[6].is_ascii_digit()
        );
        assert_eq!(reshape("AB", &mut rng).len(), 4);
    }

    #[test]
    fn generation_differs_run_to_run() {
        let learned = vec!["DESKTOP-AB12CD3<20>".to_string()];
        let a: Vec<String> = (0..5)
            .map(|_| generate(&learned, &mut Random::from_os()).netbios)
            .collect();
        let b: HashSet<&String> = a.iter().collect();
        assert!(b.len() >= 4, "{a:?}");
    }

    #[test]
    fn seed_base_rejects_odd_names() {
        assert_eq!(seed_base("HOST<20>").as_deref(), Some("HOST"));
        assert_eq!(seed_base("host.local").as_deref(), Some("HOST"));
        assert_eq!(seed_base("-X<20>"), None);
        assert_eq!(seed_base("A B<20>"), None);
        assert_eq!(seed_base("\u{1}<20>"), None);
        assert_eq!(seed_base("<20"), None);
        assert_eq!(seed_base("WORKGROUP<1E>"), None);
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let mut rng = Random::from_os();
        let mean = Duration::from_secs(60);
        let v: Vec<Duration> = (0..1000).map(|_| jittered(mean, 0.5, &mut rng)).collect();
        assert!(v
            .iter()
            .all(|d| *d >= Duration::from_secs(30) && *d <= Duration::from_secs(90)));
        assert!(v.iter().any(|d| *d < Duration::from_secs(40)));
        assert!(v.iter().any(|d| *d > Duration::from_secs(80)));
        assert_eq!(jittered(mean, 0.0, &mut rng), mean);
        assert_eq!(jittered(mean, f64::NAN, &mut rng), mean);
    }
}
