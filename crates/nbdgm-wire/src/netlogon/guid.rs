//! GUID fields of the V5 and EX responses (MS-DTYP §2.3.4), as carried in NETLOGON
//! messages (MS-ADTS §6.3.1.7, §6.3.1.9).

use core::fmt;

use crate::error::{Error, Result};

/// A GUID in its 16 wire bytes (MS-DTYP §2.3.4: Data1..Data3 little-endian). Shown and
/// serialized as `6876eb1a-b2c6-4bca-b69c-feda682e82fd`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The null GUID (all zeros), e.g. NullGuid of the V5 response.
    pub const NULL: Guid = Guid([0; 16]);

    pub fn is_null(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9]
        )?;
        b[10..].iter().try_for_each(|x| write!(f, "{x:02x}"))
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

/// Parses the `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` form (braces allowed).
impl core::str::FromStr for Guid {
    type Err = Error;
    fn from_str(s: &str) -> Result<Guid> {
        let bad = || Error::emit("GUID", "expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
        let s = s.trim().trim_start_matches('{').trim_end_matches('}');
        let parts: Vec<&str> = s.split('-').collect();
        let [d1, d2, d3, d4, d5] = parts.as_slice() else {
            return Err(bad());
        };
        if [d1.len(), d2.len(), d3.len(), d4.len(), d5.len()] != [8, 4, 4, 4, 12] {
            return Err(bad());
        }
        let num = |h: &str| u32::from_str_radix(h, 16).map_err(|_| bad());
        let tail = crate::hex::decode(&format!("{d4}{d5}")).ok_or_else(bad)?;
        let mut g = [0u8; 16];
        g[..4].copy_from_slice(&num(d1)?.to_le_bytes());
        g[4..6].copy_from_slice(&(num(d2)? as u16).to_le_bytes());
        g[6..8].copy_from_slice(&(num(d3)? as u16).to_le_bytes());
        for (slot, b) in g[8..].iter_mut().zip(tail) {
            *slot = b;
        }
        Ok(Guid(g))
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
