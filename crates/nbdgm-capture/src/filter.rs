//! Which UDP datagrams the reader returns, by port.

use std::fmt;

/// A set of UDP ports. A datagram matches when its source or its destination port is
/// in the set; [`PortFilter::all`] matches every datagram.
///
/// The check is one bit test per port, done on the UDP header before the payload is
/// measured, checksummed or copied.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PortFilter {
    /// One bit per port; `None` matches all ports.
    bits: Option<Box<[u64]>>,
}

const WORDS: usize = 65_536 / 64;

impl PortFilter {
    /// Matches every UDP datagram.
    pub fn all() -> PortFilter {
        PortFilter { bits: None }
    }

    /// Matches datagrams from or to any of `ports` (an empty list matches nothing).
    pub fn ports<I: IntoIterator<Item = u16>>(ports: I) -> PortFilter {
        let mut bits = vec![0u64; WORDS].into_boxed_slice();
        for p in ports {
            if let Some(w) = bits.get_mut(usize::from(p) / 64) {
                *w |= 1u64 << (p % 64);
            }
        }
        PortFilter { bits: Some(bits) }
    }

    /// The NetBIOS name (137) and datagram (138) service ports.
    pub fn netbios() -> PortFilter {
        PortFilter::ports([137, 138])
    }

    /// Whether this filter matches every datagram.
    pub fn is_all(&self) -> bool {
        self.bits.is_none()
    }

    /// Whether `port` is in the set (always true for [`PortFilter::all`]).
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        match &self.bits {
            None => true,
            Some(bits) => bits
                .get(usize::from(port) / 64)
                .is_some_and(|w| w & (1u64 << (port % 64)) != 0),
        }
    }

    /// Whether a datagram with these ports matches.
    #[inline]
    pub fn matches(&self, src_port: u16, dst_port: u16) -> bool {
        self.contains(src_port) || self.contains(dst_port)
    }
}

impl fmt::Debug for PortFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.bits {
            None => f.write_str("PortFilter::all()"),
            Some(_) => {
                let ports: Vec<u16> = (0..=u16::MAX).filter(|p| self.contains(*p)).collect();
                write!(f, "PortFilter::ports({ports:?})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets() {
        let all = PortFilter::all();
        assert!(all.matches(1, 2) && all.is_all());
        let nb = PortFilter::netbios();
        assert!(nb.matches(137, 50_000));
        assert!(nb.matches(50_000, 138));
        assert!(!nb.matches(139, 53));
        let edge = PortFilter::ports([0, 65_535]);
        assert!(edge.contains(0) && edge.contains(65_535) && !edge.contains(1));
        assert!(!PortFilter::ports([]).matches(137, 138));
        assert_eq!(format!("{nb:?}"), "PortFilter::ports([137, 138])");
        assert_eq!(PortFilter::default(), PortFilter::all());
    }
}
