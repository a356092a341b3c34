//! SMB mailslot write carried as datagram user data: the SMB header and an
//! SMB_COM_TRANSACTION request with three setup words (MS-MAIL §2.2.1, §3.2.5.1;
//! DIGEST §5). Offsets inside the transaction count from the first SMB header byte.
//! Integers are little-endian.

use crate::error::{Error, Result};
use crate::reader::{latin1, to_latin1, Reader};

pub const SMB_MAGIC: [u8; 4] = [0xFF, b'S', b'M', b'B'];
pub const SMB_COM_TRANSACTION: u8 = 0x25;
pub const WORD_COUNT: u8 = 17;
pub const SETUP_COUNT: u8 = 3;
/// Setup[0] for a mailslot write.
pub const OPCODE_WRITE: u16 = 1;
/// Setup[2] for second-class (unreliable, broadcastable) mailslots.
pub const CLASS_SECOND: u16 = 2;
/// Offset of the mailslot name: 32-byte header + WordCount + 17 words + ByteCount.
pub const NAME_OFFSET: usize = 69;
/// Windows' cap on the SMB part of a mailslot datagram (MS-MAIL §2.1).
pub const MAX_SMB_LEN: usize = 512;

pub const BROWSE: &str = "\\MAILSLOT\\BROWSE";
pub const LANMAN: &str = "\\MAILSLOT\\LANMAN";
pub const NETLOGON: &str = "\\MAILSLOT\\NET\\NETLOGON";
pub const NTLOGON: &str = "\\MAILSLOT\\NET\\NTLOGON";
pub const MESSNGR: &str = "\\MAILSLOT\\MESSNGR";

/// The 32-byte SMB header fields other than the magic and the command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SmbHeader {
    pub status: u32,
    pub flags: u8,
    pub flags2: u16,
    pub pid_high: u16,
    pub security_features: [u8; 8],
    pub reserved: u16,
    pub tid: u16,
    pub pid_low: u16,
    pub uid: u16,
    pub mid: u16,
}

/// A mailslot write. The length fields (DataCount, DataOffset, ByteCount,
/// TotalDataCount) are computed on emit unless the `*_override` fields hold the value a
/// sender actually put there (parsing fills them only when they differ).
/// `B` holds the byte fields: `Vec<u8>` when owned, `&[u8]` for the zero-copy view
/// that [`MailslotWrite::parse_ref`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailslotWrite<B = Vec<u8>> {
    pub header: SmbHeader,
    pub total_parameter_count: u16,
    pub max_parameter_count: u16,
    pub max_data_count: u16,
    pub max_setup_count: u8,
    pub reserved1: u8,
    pub transaction_flags: u16,
    pub timeout: u32,
    pub reserved2: u16,
    pub parameter_count: u16,
    pub parameter_offset: u16,
    pub reserved3: u8,
    /// Setup[0]: 1 = write mailslot.
    pub opcode: u16,
    /// Setup[1]: 0–9.
    pub priority: u16,
    /// Setup[2]: 1 first class, 2 second class.
    pub class: u16,
    /// `\MAILSLOT\...` as sent (compare case-insensitively).
    pub name: String,
    /// Bytes between the name's NUL and DataOffset (alignment padding).
    pub padding: B,
    pub data: B,
    /// Bytes after the data, inside the datagram.
    pub trailing: B,
    pub total_data_count_override: Option<u16>,
    pub byte_count_override: Option<u16>,
}

impl MailslotWrite {
    /// Parse the user data of a datagram (starting at the SMB header).
    pub fn parse(buf: &[u8]) -> Result<MailslotWrite> {
        Ok(MailslotWrite::parse_ref(buf)?.map(<[u8]>::to_vec))
    }

    /// A second-class mailslot write laid out as Windows and Samba browsers send it:
    /// no padding, DataOffset = 70 + strlen(name), timeout 1000 ms, priority 0.
    pub fn new(name: &str, data: Vec<u8>) -> Self {
        MailslotWrite {
            header: SmbHeader::default(),
            total_parameter_count: 0,
            max_parameter_count: 0,
            max_data_count: 0,
            max_setup_count: 0,
            reserved1: 0,
            transaction_flags: 0,
            timeout: 1000,
            reserved2: 0,
            parameter_count: 0,
            parameter_offset: 0,
            reserved3: 0,
            opcode: OPCODE_WRITE,
            priority: 0,
            class: CLASS_SECOND,
            name: name.to_owned(),
            padding: Vec::new(),
            data,
            trailing: Vec::new(),
            total_data_count_override: None,
            byte_count_override: None,
        }
    }

    /// Pad so the data starts on a 4-byte boundary, as MS-MAIL §2.2.1 asks.
    pub fn aligned(mut self) -> Self {
        let end = NAME_OFFSET + self.name_len() + 1;
        self.padding = vec![0; (4 - end % 4) % 4];
        self
    }
}

impl<B: AsRef<[u8]>> MailslotWrite<B> {
    /// The same write with its byte storage converted by `f`.
    pub fn map<C>(self, f: impl Fn(B) -> C) -> MailslotWrite<C> {
        MailslotWrite {
            header: self.header,
            total_parameter_count: self.total_parameter_count,
            max_parameter_count: self.max_parameter_count,
            max_data_count: self.max_data_count,
            max_setup_count: self.max_setup_count,
            reserved1: self.reserved1,
            transaction_flags: self.transaction_flags,
            timeout: self.timeout,
            reserved2: self.reserved2,
            parameter_count: self.parameter_count,
            parameter_offset: self.parameter_offset,
            reserved3: self.reserved3,
            opcode: self.opcode,
            priority: self.priority,
            class: self.class,
            name: self.name,
            padding: f(self.padding),
            data: f(self.data),
            trailing: f(self.trailing),
            total_data_count_override: self.total_data_count_override,
            byte_count_override: self.byte_count_override,
        }
    }

    /// True when `name` equals this write's mailslot name, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// Bytes the name takes on the wire: one per character (Latin-1), not UTF-8 bytes.
    fn name_len(&self) -> usize {
        if self.name.is_ascii() {
            self.name.len()
        } else {
            self.name.chars().count()
        }
    }

    /// DataOffset as emitted.
    pub fn data_offset(&self) -> usize {
        NAME_OFFSET + self.name_len() + 1 + self.padding.as_ref().len()
    }

    fn byte_count(&self) -> usize {
        self.name_len() + 1 + self.padding.as_ref().len() + self.data.as_ref().len()
    }

    /// Encoded size.
    pub fn len(&self) -> usize {
        self.data_offset() + self.data.as_ref().len() + self.trailing.as_ref().len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

impl<'a> MailslotWrite<&'a [u8]> {
    /// Parse without copying: padding, data and trailing bytes borrow from `buf`.
    pub fn parse_ref(buf: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        if r.array::<4>("SMB Protocol")? != SMB_MAGIC {
            return Err(Error::invalid(
                "SMB Protocol",
                0,
                "not an SMB header (FF 'SMB')",
            ));
        }
        if r.u8("SMB Command")? != SMB_COM_TRANSACTION {
            return Err(Error::invalid(
                "SMB Command",
                4,
                "not SMB_COM_TRANSACTION (0x25)",
            ));
        }
        let header = SmbHeader {
            status: r.u32_le("Status")?,
            flags: r.u8("Flags")?,
            flags2: r.u16_le("Flags2")?,
            pid_high: r.u16_le("PIDHigh")?,
            security_features: r.array("SecurityFeatures")?,
            reserved: r.u16_le("Reserved")?,
            tid: r.u16_le("TID")?,
            pid_low: r.u16_le("PIDLow")?,
            uid: r.u16_le("UID")?,
            mid: r.u16_le("MID")?,
        };
        if r.u8("WordCount")? != WORD_COUNT {
            return Err(Error::invalid(
                "WordCount",
                32,
                "transaction WordCount is not 17",
            ));
        }
        let total_parameter_count = r.u16_le("TotalParameterCount")?;
        let total_data_count = r.u16_le("TotalDataCount")?;
        let max_parameter_count = r.u16_le("MaxParameterCount")?;
        let max_data_count = r.u16_le("MaxDataCount")?;
        let max_setup_count = r.u8("MaxSetupCount")?;
        let reserved1 = r.u8("Reserved1")?;
        let transaction_flags = r.u16_le("Flags")?;
        let timeout = r.u32_le("Timeout")?;
        let reserved2 = r.u16_le("Reserved2")?;
        let parameter_count = r.u16_le("ParameterCount")?;
        let parameter_offset = r.u16_le("ParameterOffset")?;
        let data_count = usize::from(r.u16_le("DataCount")?);
        let data_offset = usize::from(r.u16_le("DataOffset")?);
        if r.u8("SetupCount")? != SETUP_COUNT {
            return Err(Error::invalid(
                "SetupCount",
                59,
                "mailslot SetupCount is not 3",
            ));
        }
        let reserved3 = r.u8("Reserved3")?;
        let opcode = r.u16_le("MailslotOpcode")?;
        let priority = r.u16_le("Priority")?;
        let class = r.u16_le("Class")?;
        let byte_count = r.u16_le("ByteCount")?;
        let name = latin1(r.cstr("MailslotName")?);
        let name_end = r.pos();
        if data_offset < name_end {
            return Err(Error::invalid(
                "DataOffset",
                57,
                "DataOffset points into the transaction header or mailslot name",
            ));
        }
        let padding = buf.get(name_end..data_offset).ok_or(Error::Truncated {
            field: "Databytes",
            offset: name_end,
            need: data_offset - name_end,
            have: buf.len().saturating_sub(name_end),
        })?;
        let mut r = Reader::at(buf, data_offset);
        let data = r.bytes(data_count, "Databytes")?;
        let trailing = r.rest();
        let mut w = MailslotWrite {
            header,
            total_parameter_count,
            max_parameter_count,
            max_data_count,
            max_setup_count,
            reserved1,
            transaction_flags,
            timeout,
            reserved2,
            parameter_count,
            parameter_offset,
            reserved3,
            opcode,
            priority,
            class,
            name,
            padding,
            data,
            trailing,
            total_data_count_override: None,
            byte_count_override: None,
        };
        if usize::from(total_data_count) != w.data.len() {
            w.total_data_count_override = Some(total_data_count);
        }
        if usize::from(byte_count) != w.byte_count() {
            w.byte_count_override = Some(byte_count);
        }
        Ok(w)
    }
}

impl<B: AsRef<[u8]>> MailslotWrite<B> {
    /// Append the SMB header and transaction.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let name = to_latin1(&self.name, "MailslotName")?;
        if name.contains(&0) {
            return Err(Error::emit("MailslotName", "name contains a NUL"));
        }
        let data_count = u16::try_from(self.data.as_ref().len())
            .map_err(|_| Error::emit("DataCount", "data longer than 65535 bytes"))?;
        let data_offset = u16::try_from(self.data_offset())
            .map_err(|_| Error::emit("DataOffset", "offset beyond 65535"))?;
        let byte_count = match self.byte_count_override {
            Some(v) => v,
            None => u16::try_from(self.byte_count())
                .map_err(|_| Error::emit("ByteCount", "more than 65535 bytes"))?,
        };
        let h = &self.header;
        out.reserve(self.len());
        out.extend_from_slice(&SMB_MAGIC);
        out.push(SMB_COM_TRANSACTION);
        out.extend_from_slice(&h.status.to_le_bytes());
        out.push(h.flags);
        out.extend_from_slice(&h.flags2.to_le_bytes());
        out.extend_from_slice(&h.pid_high.to_le_bytes());
        out.extend_from_slice(&h.security_features);
        for v in [h.reserved, h.tid, h.pid_low, h.uid, h.mid] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(WORD_COUNT);
        for v in [
            self.total_parameter_count,
            self.total_data_count_override.unwrap_or(data_count),
            self.max_parameter_count,
            self.max_data_count,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(self.max_setup_count);
        out.push(self.reserved1);
        out.extend_from_slice(&self.transaction_flags.to_le_bytes());
        out.extend_from_slice(&self.timeout.to_le_bytes());
        for v in [
            self.reserved2,
            self.parameter_count,
            self.parameter_offset,
            data_count,
            data_offset,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(SETUP_COUNT);
        out.push(self.reserved3);
        for v in [self.opcode, self.priority, self.class, byte_count] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&name);
        out.push(0);
        out.extend_from_slice(self.padding.as_ref());
        out.extend_from_slice(self.data.as_ref());
        out.extend_from_slice(self.trailing.as_ref());
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        crate::emit_to_vec(self.len(), |v| self.emit(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    fn vector(prefix: &str) -> Vec<u8> {
        let json: serde_json::Value =
            serde_json::from_str(include_str!("../tests/data/test_vectors.json")).unwrap();
        let map = json["smb_mailslot"].as_object().unwrap();
        let (_, v) = map.iter().find(|(k, _)| k.starts_with(prefix)).unwrap();
        hex::decode(v.as_str().unwrap()).unwrap()
    }

    #[test]
    fn browser_layout_vector() {
        let bytes = vector("hostannouncement");
        let w = MailslotWrite::parse(&bytes).unwrap();
        assert_eq!(w.name, BROWSE);
        assert_eq!(w.data_offset(), 86);
        assert_eq!(w.data.len(), 33);
        assert_eq!((w.opcode, w.priority, w.class, w.timeout), (1, 0, 2, 1000));
        assert!(w.padding.is_empty() && w.trailing.is_empty());
        assert_eq!(w.byte_count_override, None);
        assert_eq!(w.to_bytes().unwrap(), bytes);
        // The builder produces the same bytes from the data alone.
        assert_eq!(
            MailslotWrite::new(BROWSE, w.data.clone())
                .to_bytes()
                .unwrap(),
            bytes
        );
    }

    #[test]
    fn ms_mail_example_with_padding() {
        let bytes = vector("MS-MAIL");
        assert_eq!(bytes.len(), 140);
        let w = MailslotWrite::parse(&bytes).unwrap();
        assert_eq!(w.name, "\\MAILSLOT\\test1\\sample_mailslot");
        assert_eq!(w.padding, vec![0, 0, 0]);
        assert_eq!(w.data_offset(), 0x68);
        assert_eq!(w.data, vec![0xCA; 36]);
        assert_eq!(w.header.flags, 0x18);
        assert_eq!(w.header.pid_low, 0xFEFF);
        assert_eq!(w.transaction_flags, 2);
        assert_eq!(w.to_bytes().unwrap(), bytes);
        let mut built = MailslotWrite::new(&w.name, vec![0xCA; 36]).aligned();
        built.header = w.header.clone();
        built.max_parameter_count = 2;
        built.transaction_flags = 2;
        built.timeout = 0;
        built.parameter_offset = 0x68;
        assert_eq!(built.to_bytes().unwrap(), bytes);
        assert!(w.is("\\mailslot\\TEST1\\sample_mailslot"));
    }

    #[test]
    fn malformed_writes() {
        let good = vector("hostannouncement");
        for n in 0..86 {
            assert!(MailslotWrite::parse(&good[..n]).is_err(), "prefix {n}");
        }
        let mut bad = good.clone();
        bad[4] = 0x72;
        assert!(matches!(
            MailslotWrite::parse(&bad),
            Err(Error::Invalid {
                field: "SMB Command",
                ..
            })
        ));
        let mut bad = good.clone();
        bad[32] = 16;
        assert!(MailslotWrite::parse(&bad).is_err());
        let mut bad = good.clone();
        bad[59] = 2;
        assert!(MailslotWrite::parse(&bad).is_err());
        // DataCount past the end.
        let mut bad = good.clone();
        bad[55] = 0xFF;
        assert!(matches!(
            MailslotWrite::parse(&bad),
            Err(Error::Truncated {
                field: "Databytes",
                ..
            })
        ));
        // DataOffset inside the name.
        let mut bad = good.clone();
        bad[57] = 70;
        assert!(matches!(
            MailslotWrite::parse(&bad),
            Err(Error::Invalid {
                field: "DataOffset",
                ..
            })
        ));
        // Name without its NUL.
        let mut bad = good[..86].to_vec();
        bad[85] = b'X';
        bad[55] = 0;
        bad[57] = 86;
        assert!(MailslotWrite::parse(&bad).is_err());
        // Not SMB at all.
        assert!(MailslotWrite::parse(b"hello world").is_err());
    }

    #[test]
    fn latin1_name_counts_one_byte_per_character() {
        // Found by fuzzing: a name byte >= 0x80 is one byte on the wire, two in UTF-8.
        let hex = concat!(
            "ff534d42250000000000000000000000000000000000000000000000000000001100000000",
            "0000000000000000000000000000000000000000470003000100000002000200ff00"
        );
        let bytes = crate::hex::decode(hex).unwrap();
        let w = MailslotWrite::parse(&bytes).unwrap();
        assert_eq!(w.name, "\u{ff}");
        assert_eq!(w.data_offset(), 0x47);
        assert_eq!(w.to_bytes().unwrap(), bytes);
        let built = MailslotWrite::new("\\MAILSLOT\\CAF\u{c9}", vec![1, 2]);
        let back = MailslotWrite::parse(&built.to_bytes().unwrap()).unwrap();
        assert_eq!(back, built);
    }

    #[test]
    fn odd_counts_round_trip() {
        let mut bytes = vector("hostannouncement");
        bytes[35] = 0x99; // TotalDataCount
        bytes[67] = 0x01; // ByteCount
        bytes.extend_from_slice(&[7, 7]);
        let w = MailslotWrite::parse(&bytes).unwrap();
        assert_eq!(w.total_data_count_override, Some(0x99));
        assert_eq!(w.byte_count_override, Some(0x01));
        assert_eq!(w.trailing, vec![7, 7]);
        assert_eq!(w.to_bytes().unwrap(), bytes);
    }
}
