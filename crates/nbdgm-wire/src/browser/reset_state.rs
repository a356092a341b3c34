//! ResetStateRequest (0x0E), MS-BRWS §2.2.9.

use super::fields::bit_names;

/// ResetStateRequest Type bits (MS-BRWS §2.2.9; Samba treats them as flags).
pub const RESET_STATE_STOP_MASTER: u8 = 0x01;
pub const RESET_STATE_CLEAR_ALL: u8 = 0x02;
pub const RESET_STATE_STOP: u8 = 0x04;

/// Names of the defined ResetStateRequest Type bits.
pub fn reset_type_names(t: u8) -> Vec<&'static str> {
    bit_names(
        t,
        &[
            (RESET_STATE_STOP_MASTER, "STOP_MASTER"),
            (RESET_STATE_CLEAR_ALL, "CLEAR_ALL"),
            (RESET_STATE_STOP, "STOP"),
        ],
    )
}

/// ResetStateRequest (0x0E), MS-BRWS §2.2.9.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ResetStateRequest {
    /// `RESET_STATE_*` bits; see [`reset_type_names`].
    pub reset_type: u8,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}
