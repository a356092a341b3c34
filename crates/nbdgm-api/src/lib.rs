//! Wire types of the local API: JSON lines exchanged between `nbdgm serve` and its
//! clients (protocol version [`PROTOCOL_VERSION`], described in `docs/api.md`).
//!
//! Names travel in the project's string form `NAME<xx>` (optionally `.scope`), as
//! printed and parsed by [`nbdgm_wire::Name`]; byte strings travel as lower-case hex.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

pub mod wins;
pub use wins::{
    WinsAddArgs, WinsChangeResult, WinsDeleteArgs, WinsEntry, WinsInterface, WinsListArgs,
    WinsListResult, WinsMember, WINS_PAGE, WINS_PAGE_BYTES, WINS_PAGE_MAX,
};

/// Version of this protocol, reported by `hello`.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest request line the daemon accepts, newline excluded; a longer one is
/// answered with `bad_request` and the connection is closed.
pub const MAX_LINE: usize = 64 * 1024;
/// Longest line the daemon sends (response or event), newline excluded: room for
/// the hex of the largest datagram (65,535 bytes of data). Longer results are
/// replaced by an `internal` error; longer events are dropped and counted.
pub const MAX_SERVER_LINE: usize = 256 * 1024;
/// Servers per interface in one `browse` response by default (a server is about 250
/// bytes of JSON).
pub const BROWSE_PAGE: usize = 200;
/// Largest `limit` of `browse`.
pub const BROWSE_PAGE_MAX: usize = 500;
/// Bytes of JSON the interfaces of one `browse` response take at most (servers are
/// added while they fit, at least one per interface): a page of entries as large as a
/// hostile host can announce them stays under [`MAX_SERVER_LINE`], so a page may hold
/// fewer servers than its `limit`.
pub const BROWSE_PAGE_BYTES: usize = 192 * 1024;

/// A request line: `{"id": n, "op": "...", ...arguments}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the client; echoed in the response.
    pub id: u64,
    /// The operation and its arguments (flattened into the same object).
    #[serde(flatten)]
    pub op: Op,
}

/// Every operation with its arguments; the JSON tag is `op`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Say who we are; learn the server version and interfaces. The request may also
    /// hold `"encoding"` ([`EventEncoding`]), read by the daemon's API layer: how
    /// this connection's `datagram` events carry their data from then on.
    Hello {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
    /// Register a unique or group name on every interface.
    Register(RegisterArgs),
    /// Release a name registered earlier.
    Release { name: String },
    /// Start receiving datagram events (handled by the API layer itself).
    Subscribe(Subscription),
    /// Stop a subscription (handled by the API layer itself).
    Unsubscribe { subscription: u64 },
    /// Send a datagram.
    Send(SendArgs),
    /// Resolve a name by broadcast, or by unicast to `server`.
    Lookup {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server: Option<IpAddr>,
    },
    /// Node status (NBSTAT) of a host.
    Status {
        address: IpAddr,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// The local name table per interface.
    Names,
    /// The name cache.
    Cache,
    /// The daemon's counters.
    Stats,
    /// The browse list of every interface (optionally one workgroup's servers only),
    /// servers paged by `offset` and `limit` (default [`BROWSE_PAGE`], at most
    /// [`BROWSE_PAGE_MAX`]) so a response stays under [`MAX_SERVER_LINE`].
    Browse {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workgroup: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        /// Only what each browser heard on its own subnet: no entry synced from another
        /// browser (what a NetServerEnum2 with SV_TYPE_LOCAL_LIST_ONLY gets).
        #[serde(default, skip_serializing_if = "is_false")]
        local: bool,
    },
    /// The NBNS role's name table, paged ([`wins::WinsListArgs`]).
    WinsList(WinsListArgs),
    /// Add a name to the NBNS role's table (administrators only).
    WinsAdd(WinsAddArgs),
    /// Delete a name, or one address of it, from the NBNS role's table
    /// (administrators only).
    WinsDelete(WinsDeleteArgs),
}

impl Op {
    /// The `op` string of this operation.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Hello { .. } => "hello",
            Op::Register(_) => "register",
            Op::Release { .. } => "release",
            Op::Subscribe(_) => "subscribe",
            Op::Unsubscribe { .. } => "unsubscribe",
            Op::Send(_) => "send",
            Op::Lookup { .. } => "lookup",
            Op::Status { .. } => "status",
            Op::Names => "names",
            Op::Cache => "cache",
            Op::Stats => "stats",
            Op::Browse { .. } => "browse",
            Op::WinsList(_) => "wins_list",
            Op::WinsAdd(_) => "wins_add",
            Op::WinsDelete(_) => "wins_delete",
        }
    }
}

/// Every `op` string this protocol version knows.
pub const OPS: &[&str] = &[
    "hello",
    "register",
    "release",
    "subscribe",
    "unsubscribe",
    "send",
    "lookup",
    "status",
    "names",
    "cache",
    "stats",
    "browse",
    "wins_list",
    "wins_add",
    "wins_delete",
];

/// Arguments of `register`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterArgs {
    /// `NAME<xx>` or `NAME<xx>.scope`.
    pub name: String,
    /// Group name rather than unique.
    #[serde(default)]
    pub group: bool,
    /// Keep the name after this client disconnects.
    #[serde(default, skip_serializing_if = "is_false")]
    pub persistent: bool,
}

/// Arguments of `subscribe`; all filters that are set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Only datagrams whose destination name is this `NAME<xx>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only datagrams carrying a mailslot write to this mailslot (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailslot: Option<String>,
    /// Also datagrams not addressed to our names or `*` (promiscuous monitor).
    #[serde(default, skip_serializing_if = "is_false")]
    pub all: bool,
}

/// How a datagram is sent (RFC 1002 §4.4.1 MSG_TYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    /// DIRECT_UNIQUE to the owner of a unique name.
    Unique,
    /// DIRECT_GROUP to the members of a group name.
    Group,
    /// BROADCAST_DATAGRAM.
    Broadcast,
}

/// Arguments of `send`. Exactly one of `data_hex` and `data_text` should be set
/// (none means an empty payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendArgs {
    /// Source name; the daemon's node name `<00>` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub destination: String,
    pub mode: SendMode,
    /// Wrap the data in an SMB mailslot write to this mailslot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailslot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_text: Option<String>,
    /// Address of the interface to send from; the first one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<IpAddr>,
    /// Send to this host instead of resolving the destination name (`unique`:
    /// DIRECT_UNIQUE, `group`: DIRECT_GROUP unicast to it; not with `broadcast`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// UDP port at `address`; the daemon's datagram port when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl SendArgs {
    /// A send of `data` from the node name to `destination`.
    pub fn new(destination: impl Into<String>, mode: SendMode, data: &[u8]) -> Self {
        SendArgs {
            source: None,
            destination: destination.into(),
            mode,
            mailslot: None,
            data_hex: Some(nbdgm_wire::hex::encode(data)),
            data_text: None,
            interface: None,
            address: None,
            port: None,
        }
    }

    /// The payload bytes: `data_hex` decoded, or `data_text` as UTF-8.
    pub fn data(&self) -> Result<Vec<u8>, DataError> {
        match (&self.data_hex, &self.data_text) {
            (Some(_), Some(_)) => Err(DataError::Both),
            (Some(h), None) => nbdgm_wire::hex::decode(h).ok_or(DataError::BadHex),
            (None, Some(t)) => Ok(t.as_bytes().to_vec()),
            (None, None) => Ok(Vec::new()),
        }
    }
}

/// Why the payload of a [`SendArgs`] is unusable (the message is the `bad_request`
/// answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("give data_hex or data_text, not both")]
    Both,
    #[error("data_hex is not valid hex")]
    BadHex,
}

/// A response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id; `null` when the request line had no usable id.
    pub id: Option<u64>,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Response {
    /// A success carrying `result` (serialized; an unserializable value gives `internal`).
    pub fn ok<T: Serialize>(id: u64, result: &T) -> Response {
        match serde_json::to_value(result) {
            Ok(v) => Response {
                id: Some(id),
                ok: true,
                result: Some(v),
                error: None,
            },
            Err(e) => Response::err(Some(id), ErrorCode::Internal, e.to_string()),
        }
    }

    /// A failure.
    pub fn err(id: Option<u64>, code: ErrorCode, message: impl Into<String>) -> Response {
        Response {
            id,
            ok: false,
            result: None,
            error: Some(ErrorBody {
                code,
                message: message.into(),
            }),
        }
    }
}

/// The `error` object of a failed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// Error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed line, unknown field value, bad name or hex.
    BadRequest,
    /// No such name, subscription or host.
    NotFound,
    /// Name conflict (another node owns the name).
    Conflict,
    /// No answer in time.
    Timeout,
    /// Peer credentials not allowed, or operation not permitted.
    Denied,
    /// Too many clients, or the daemon is overloaded.
    Busy,
    /// A bug or an unexpected failure inside the daemon.
    Internal,
    /// Unknown `op`, or a feature this daemon does not have.
    Unsupported,
    /// A code this client version does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The JSON string of this code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Denied => "denied",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unsolicited event line (no `id`); the JSON tag is `event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Datagram(DatagramEvent),
    Name(NameEvent),
    /// Events were dropped because this client's queue was full.
    Overflow {
        dropped: u64,
    },
}

/// A datagram received by the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatagramEvent {
    /// Address of the interface it arrived on.
    pub interface: IpAddr,
    /// UDP source address.
    pub from: SocketAddr,
    /// The local address and port it arrived at (the interface's, or its broadcast
    /// address); absent from older daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<SocketAddr>,
    /// SOURCE_IP:SOURCE_PORT from the datagram header.
    pub header_source: SocketAddr,
    /// `direct_unique`, `direct_group` or `broadcast`; any other value is an error.
    pub msg_type: DatagramType,
    pub source: String,
    pub destination: String,
    /// Sent to a broadcast address.
    pub broadcast: bool,
    /// Addressed to one of our names or to `*`.
    pub for_us: bool,
    /// Fragments it was reassembled from (1 when not fragmented).
    pub fragments: u32,
    /// The mailslot name when the data is an SMB mailslot write.
    pub mailslot: Option<String>,
    /// The whole user data (for a mailslot write: from the SMB header on), hex: the
    /// default encoding. Empty (absent on the wire) when the client chose
    /// [`EventEncoding::Base64`]; [`DatagramEvent::data`] decodes either.
    #[serde(default)]
    pub data_hex: String,
    /// The same data in standard base64 with padding (RFC 4648 §4), sent instead of
    /// `data_hex` to a client that said `hello` with `"encoding": "base64"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_b64: Option<String>,
}

impl DatagramEvent {
    /// The data bytes, from `data_b64` when present, else from `data_hex`.
    pub fn data(&self) -> Result<Vec<u8>, EventDataError> {
        use base64::Engine as _;
        match &self.data_b64 {
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| EventDataError::BadBase64),
            None => nbdgm_wire::hex::decode(&self.data_hex).ok_or(EventDataError::BadHex),
        }
    }
}

/// Why a [`DatagramEvent`]'s data does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventDataError {
    #[error("data_hex is not valid hex")]
    BadHex,
    #[error("data_b64 is not valid base64")]
    BadBase64,
}

/// How `datagram` events carry their data, chosen by the client in `hello`
/// (`"encoding"`); JSON lines with hex unless asked otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventEncoding {
    /// `data_hex`: two lower-case hex digits per octet (the default).
    #[default]
    Hex,
    /// `data_b64`: standard base64 with padding, 4 characters per 3 octets.
    Base64,
}

impl EventEncoding {
    /// Every encoding, as `hello` names them.
    pub const ALL: [EventEncoding; 2] = [EventEncoding::Hex, EventEncoding::Base64];

    /// The name used in `hello`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventEncoding::Hex => "hex",
            EventEncoding::Base64 => "base64",
        }
    }

    /// The encoding named `s` (exact, lower case), if known.
    pub fn from_name(s: &str) -> Option<EventEncoding> {
        EventEncoding::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Append `data` to `out` in this encoding (no quotes).
    pub fn push_data(self, out: &mut Vec<u8>, data: &[u8]) {
        match self {
            EventEncoding::Hex => {
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                out.reserve(data.len() * 2);
                for &x in data {
                    out.extend_from_slice(&[
                        DIGITS[usize::from(x >> 4)],
                        DIGITS[usize::from(x & 0xF)],
                    ]);
                }
            }
            EventEncoding::Base64 => {
                use base64::Engine as _;
                let start = out.len();
                out.resize(start + data.len().div_ceil(3) * 4, 0);
                let n = base64::engine::general_purpose::STANDARD
                    .encode_slice(data, &mut out[start..])
                    .unwrap_or(0);
                out.truncate(start + n);
            }
        }
    }

    /// The event field that carries the data in this encoding.
    pub fn data_field(self) -> &'static str {
        match self {
            EventEncoding::Hex => "data_hex",
            EventEncoding::Base64 => "data_b64",
        }
    }
}

/// State of a local name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameState {
    Registering,
    Registered,
    Conflict,
    Released,
}

/// A change of a local name's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameEvent {
    pub interface: IpAddr,
    pub name: String,
    pub state: NameState,
    /// Who caused it (the conflicting or challenging node's address), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// One line from the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMsg {
    Response(Response),
    Event(Event),
}

/// Parse one line sent by the daemon (an object with `event` is an event).
pub fn parse_server_line(line: &[u8]) -> Result<ServerMsg, serde_json::Error> {
    let v: serde_json::Value = serde_json::from_slice(line)?;
    if v.get("event").is_some() {
        Ok(ServerMsg::Event(serde_json::from_value(v)?))
    } else {
        Ok(ServerMsg::Response(serde_json::from_value(v)?))
    }
}

/// MSG_TYPE of a delivered datagram (RFC 1002 §4.4.1: the three data types), as the
/// API spells it. A value other than these three does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatagramType {
    DirectUnique,
    DirectGroup,
    Broadcast,
}

impl DatagramType {
    /// `direct_unique`, `direct_group` or `broadcast` (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            DatagramType::DirectUnique => "direct_unique",
            DatagramType::DirectGroup => "direct_group",
            DatagramType::Broadcast => "broadcast",
        }
    }

    /// The data MSG_TYPEs; `None` for those never delivered (errors, NBDD queries).
    pub fn from_wire(t: nbdgm_wire::datagram::MsgType) -> Option<DatagramType> {
        use nbdgm_wire::datagram::MsgType as M;
        match t {
            M::DirectUnique => Some(DatagramType::DirectUnique),
            M::DirectGroup => Some(DatagramType::DirectGroup),
            M::Broadcast => Some(DatagramType::Broadcast),
            _ => None,
        }
    }
}

impl From<DatagramType> for nbdgm_wire::datagram::MsgType {
    fn from(t: DatagramType) -> Self {
        match t {
            DatagramType::DirectUnique => Self::DirectUnique,
            DatagramType::DirectGroup => Self::DirectGroup,
            DatagramType::Broadcast => Self::Broadcast,
        }
    }
}

impl PartialEq<&str> for DatagramType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The event string of a MSG_TYPE: `direct_unique`, `direct_group`, `broadcast`, ….
pub fn msg_type_str(t: nbdgm_wire::datagram::MsgType) -> &'static str {
    use nbdgm_wire::datagram::MsgType as M;
    match t {
        M::DirectUnique => "direct_unique",
        M::DirectGroup => "direct_group",
        M::Broadcast => "broadcast",
        M::Error => "error",
        M::QueryRequest => "query_request",
        M::PositiveQueryResponse => "positive_query_response",
        M::NegativeQueryResponse => "negative_query_response",
    }
}

/// One network interface the daemon serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceInfo {
    pub address: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<IpAddr>,
    /// The OS interface name, e.g. `eth0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Result of `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloResult {
    /// Always `nbdgm`.
    pub server: String,
    pub version: String,
    pub protocol: u32,
    #[serde(default)]
    pub interfaces: Vec<InterfaceInfo>,
}

/// Result of `register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResult {
    pub name: String,
    pub group: bool,
    pub state: NameState,
}

/// Result of `subscribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeResult {
    pub subscription: u64,
}

/// Result of `send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResult {
    /// Where the (first) fragment went.
    pub to: SocketAddr,
    pub fragments: u32,
    /// User-data bytes sent (after mailslot wrapping).
    pub bytes: usize,
}

/// One address of a name (from a lookup or the cache).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameAddress {
    pub address: IpAddr,
    pub group: bool,
    /// Owner node type: `B`, `P`, `M` or `H`.
    pub node_type: String,
}

/// Result of `lookup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupResult {
    pub name: String,
    pub addresses: Vec<NameAddress>,
}

/// One row of a node status name table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusName {
    pub name: String,
    pub group: bool,
    pub node_type: String,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub conflict: bool,
    #[serde(default)]
    pub deregistering: bool,
    #[serde(default)]
    pub permanent: bool,
}

/// Result of `status` (NODE STATUS RESPONSE, RFC 1002 §4.2.18).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResult {
    pub address: IpAddr,
    pub names: Vec<StatusName>,
    /// UNIT_ID as `aa:bb:cc:dd:ee:ff`, when the statistics were present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl StatusResult {
    /// Build from a node status name table: `(name, NAME_FLAGS)` pairs and the UNIT_ID
    /// (RFC 1002 §4.2.18).
    pub fn from_names<'a>(
        address: IpAddr,
        names: impl IntoIterator<Item = (&'a nbdgm_wire::Name, u16)>,
        unit_id: Option<[u8; 6]>,
    ) -> StatusResult {
        use nbdgm_wire::nbns::{ont_name, NAME_ACT, NAME_CNF, NAME_DRG, NAME_PRM, NB_GROUP};
        StatusResult {
            address,
            names: names
                .into_iter()
                .map(|(name, flags)| StatusName {
                    name: name.to_string(),
                    group: flags & NB_GROUP != 0,
                    node_type: ont_name(flags).to_string(),
                    active: flags & NAME_ACT != 0,
                    conflict: flags & NAME_CNF != 0,
                    deregistering: flags & NAME_DRG != 0,
                    permanent: flags & NAME_PRM != 0,
                })
                .collect(),
            mac: unit_id.map(|b| {
                format!(
                    "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    b[0], b[1], b[2], b[3], b[4], b[5]
                )
            }),
        }
    }
}

/// One local name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameEntry {
    pub name: String,
    pub group: bool,
    pub state: NameState,
    #[serde(default)]
    pub persistent: bool,
    /// The API client that registered it (none for configured names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<u64>,
}

/// The name table of one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceNames {
    pub interface: IpAddr,
    pub names: Vec<NameEntry>,
}

/// Result of `names`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamesResult {
    pub interfaces: Vec<InterfaceNames>,
}

/// One name-cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub name: String,
    pub addresses: Vec<NameAddress>,
    /// Seconds until it expires.
    pub ttl: u32,
}

/// Result of `cache`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheResult {
    pub entries: Vec<CacheEntry>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip_req(op: Op) {
        let r = Request { id: 7, op };
        let s = serde_json::to_string(&r).unwrap();
        let back: Request = serde_json::from_str(&s).unwrap();
        assert_eq!(back, r, "{s}");
    }

    #[test]
    fn requests_round_trip() {
        round_trip_req(Op::Hello { client: None });
        round_trip_req(Op::Hello {
            client: Some("t".into()),
        });
        round_trip_req(Op::Register(RegisterArgs {
            name: "FOO<20>".into(),
            group: false,
            persistent: true,
        }));
        round_trip_req(Op::Release {
            name: "FOO<20>".into(),
        });
        round_trip_req(Op::Subscribe(Subscription {
            name: None,
            mailslot: Some("\\MAILSLOT\\BROWSE".into()),
            all: true,
        }));
        round_trip_req(Op::Unsubscribe { subscription: 3 });
        let mut s = SendArgs::new("TESTGROUP<1d>", SendMode::Group, b"hi");
        s.mailslot = Some("\\MAILSLOT\\BROWSE".into());
        s.interface = Some("198.51.100.10".parse().unwrap());
        round_trip_req(Op::Send(s));
        round_trip_req(Op::Lookup {
            name: "X<00>".into(),
            server: Some("198.51.100.1".parse().unwrap()),
        });
        round_trip_req(Op::Status {
            address: "198.51.100.1".parse().unwrap(),
            name: None,
        });
        round_trip_req(Op::Names);
        round_trip_req(Op::Cache);
        round_trip_req(Op::Stats);
    }

    #[test]
    fn request_wire_form() {
        let r: Request = serde_json::from_str(
            r#"{"id": 1, "op": "register", "name": "FOO<00>", "group": true}"#,
        )
        .unwrap();
        assert_eq!(
            r.op,
            Op::Register(RegisterArgs {
                name: "FOO<00>".into(),
                group: true,
                persistent: false
            })
        );
        let r: Request = serde_json::from_str(r#"{"op":"names","id":9}"#).unwrap();
        assert_eq!(
            r,
            Request {
                id: 9,
                op: Op::Names
            }
        );
        let s = serde_json::to_value(Request {
            id: 2,
            op: Op::Subscribe(Subscription::default()),
        })
        .unwrap();
        assert_eq!(s, json!({"id": 2, "op": "subscribe"}));
        assert!(serde_json::from_str::<Request>(r#"{"id":1,"op":"nope"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"names"}"#).is_err());
        for op in OPS {
            // Every listed op is known (even if its arguments are missing here).
            let e = serde_json::from_str::<Request>(&format!(r#"{{"id":1,"op":"{op}"}}"#));
            if let Err(e) = e {
                assert!(e.to_string().contains("missing field"), "{op}: {e}");
            }
        }
    }

    #[test]
    fn send_data() {
        let mut s = SendArgs::new("A<00>", SendMode::Unique, b"\x01\x02");
        assert_eq!(s.data().unwrap(), vec![1, 2]);
        s.data_text = Some("x".into());
        assert_eq!(s.data(), Err(DataError::Both));
        assert_eq!(
            DataError::Both.to_string(),
            "give data_hex or data_text, not both"
        );
        s.data_hex = None;
        assert_eq!(s.data().unwrap(), b"x");
        s.data_text = None;
        s.data_hex = Some("zz".into());
        assert_eq!(s.data(), Err(DataError::BadHex));
        assert_eq!(DataError::BadHex.to_string(), "data_hex is not valid hex");
    }

    #[test]
    fn responses_round_trip() {
        let ok = Response::ok(
            4,
            &SendResult {
                to: "198.51.100.20:138".parse().unwrap(),
                fragments: 1,
                bytes: 3,
            },
        );
        let line = serde_json::to_string(&ok).unwrap();
        assert_eq!(
            line,
            r#"{"id":4,"ok":true,"result":{"bytes":3,"fragments":1,"to":"198.51.100.20:138"}}"#
        );
        assert_eq!(
            parse_server_line(line.as_bytes()).unwrap(),
            ServerMsg::Response(ok)
        );
        let err = Response::err(None, ErrorCode::BadRequest, "bad");
        let line = serde_json::to_string(&err).unwrap();
        assert_eq!(
            line,
            r#"{"id":null,"ok":false,"error":{"code":"bad_request","message":"bad"}}"#
        );
        assert_eq!(
            parse_server_line(line.as_bytes()).unwrap(),
            ServerMsg::Response(err)
        );
        let future: Response = serde_json::from_str(
            r#"{"id":1,"ok":false,"error":{"code":"brand_new","message":"m"}}"#,
        )
        .unwrap();
        assert_eq!(future.error.unwrap().code, ErrorCode::Unknown);
    }

    #[test]
    fn datagram_types_are_typed_and_unknown_ones_refused() {
        use nbdgm_wire::datagram::MsgType as M;
        for t in [M::DirectUnique, M::DirectGroup, M::Broadcast] {
            let d = DatagramType::from_wire(t).unwrap();
            assert_eq!(serde_json::to_value(d).unwrap(), msg_type_str(t));
            assert_eq!(M::from(d), t);
            assert_eq!(d, msg_type_str(t));
        }
        assert_eq!(DatagramType::from_wire(M::Error), None);
        assert!(serde_json::from_str::<DatagramType>("\"direct_group\"").is_ok());
        // No silent fallback: an unknown type is an error.
        assert!(serde_json::from_str::<DatagramType>("\"error\"").is_err());
        assert!(serde_json::from_str::<NameState>("\"active\"").is_err());
    }

    #[test]
    fn events_round_trip() {
        let d = DatagramEvent {
            interface: "198.51.100.10".parse().unwrap(),
            from: "198.51.100.20:138".parse().unwrap(),
            to: None,
            header_source: "198.51.100.20:138".parse().unwrap(),
            msg_type: DatagramType::DirectGroup,
            source: "SAMBAA<00>".into(),
            destination: "TESTGROUP<1d>".into(),
            broadcast: true,
            for_us: true,
            fragments: 1,
            mailslot: None,
            data_hex: "0102".into(),
            data_b64: None,
        };
        let v = serde_json::to_value(Event::Datagram(d.clone())).unwrap();
        assert_eq!(v["event"], "datagram");
        assert_eq!(v["msg_type"], "direct_group");
        assert_eq!(msg_type_str(d.msg_type.into()), "direct_group");
        assert!(v["mailslot"].is_null());
        let line = serde_json::to_vec(&Event::Datagram(d.clone())).unwrap();
        assert_eq!(
            parse_server_line(&line).unwrap(),
            ServerMsg::Event(Event::Datagram(d))
        );
        for ev in [
            Event::Name(NameEvent {
                interface: "198.51.100.10".parse().unwrap(),
                name: "FOO<00>".into(),
                state: NameState::Conflict,
                by: Some("198.51.100.9".into()),
            }),
            Event::Overflow { dropped: 5 },
        ] {
            let line = serde_json::to_vec(&ev).unwrap();
            assert_eq!(parse_server_line(&line).unwrap(), ServerMsg::Event(ev));
        }
        assert_eq!(
            serde_json::to_value(Event::Overflow { dropped: 2 }).unwrap(),
            json!({"event": "overflow", "dropped": 2})
        );
    }

    #[test]
    fn results_round_trip() {
        let h = HelloResult {
            server: "nbdgm".into(),
            version: "0.1.0".into(),
            protocol: PROTOCOL_VERSION,
            interfaces: vec![InterfaceInfo {
                address: "198.51.100.10".parse().unwrap(),
                prefix_len: Some(24),
                broadcast: Some("198.51.100.255".parse().unwrap()),
                name: Some("eth0".into()),
            }],
        };
        let back: HelloResult = serde_json::from_value(serde_json::to_value(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        let st = StatusResult {
            address: "198.51.100.20".parse().unwrap(),
            names: vec![StatusName {
                name: "SAMBAA<00>".into(),
                group: false,
                node_type: "B".into(),
                active: true,
                conflict: false,
                deregistering: false,
                permanent: false,
            }],
            mac: Some("00:00:00:00:00:00".into()),
        };
        let back: StatusResult =
            serde_json::from_value(serde_json::to_value(&st).unwrap()).unwrap();
        assert_eq!(back, st);
        let n = NamesResult {
            interfaces: vec![InterfaceNames {
                interface: "198.51.100.10".parse().unwrap(),
                names: vec![NameEntry {
                    name: "NODE<00>".into(),
                    group: false,
                    state: NameState::Registered,
                    persistent: true,
                    owner: None,
                }],
            }],
        };
        let back: NamesResult = serde_json::from_value(serde_json::to_value(&n).unwrap()).unwrap();
        assert_eq!(back, n);
        let c = CacheResult {
            entries: vec![CacheEntry {
                name: "X<20>".into(),
                addresses: vec![NameAddress {
                    address: "198.51.100.20".parse().unwrap(),
                    group: false,
                    node_type: "B".into(),
                }],
                ttl: 300,
            }],
        };
        let back: CacheResult = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}

/// Result of `browse`: what each interface's browser knows (MS-BRWS §3.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowseResult {
    pub interfaces: Vec<BrowseInterface>,
}

/// The browse list of one interface (subnet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowseInterface {
    pub interface: IpAddr,
    /// Our workgroup.
    pub workgroup: String,
    /// Our browser role: `none`, `potential`, `backup` or `master`.
    pub role: String,
    /// The local master browser of our workgroup, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_address: Option<IpAddr>,
    #[serde(default)]
    pub backups: Vec<String>,
    /// Servers in the list (after the workgroup filter); `servers` is the page from
    /// `offset`.
    #[serde(default)]
    pub servers_total: usize,
    #[serde(default)]
    pub offset: usize,
    pub servers: Vec<BrowseServer>,
    pub workgroups: Vec<BrowseWorkgroup>,
    /// The domain master browser of our workgroup, when known (us included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_master: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_master_address: Option<IpAddr>,
    /// As domain master browser: the local master browsers that announced to us.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_masters: Vec<BrowseLocalMaster>,
}

/// A local master browser known to the domain master browser (MS-BRWS §3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowseLocalMaster {
    pub name: String,
    pub workgroup: String,
    pub address: IpAddr,
    /// Seconds since its last MasterAnnouncement.
    pub age_s: u64,
    /// Seconds until it is forgotten without another one.
    pub expires_in_s: u64,
    /// Successful syncs of its list, and the entries the last one gave.
    pub syncs: u64,
    pub last_entries: u64,
}

/// One server of the browse list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowseServer {
    pub name: String,
    pub workgroup: String,
    /// SV_TYPE bits.
    pub server_type: u32,
    /// The names of the set bits (`WORKSTATION`, `SERVER`, `MASTER_BROWSER`, ...).
    pub types: Vec<String>,
    /// `major.minor`.
    pub os_version: String,
    pub comment: String,
    pub periodicity_ms: u32,
    pub address: IpAddr,
    pub age_s: u64,
    pub expires_in_s: u64,
    /// Heard on `\MAILSLOT\LANMAN`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub lanman: bool,
    /// This is the daemon itself.
    #[serde(default, skip_serializing_if = "is_false")]
    pub local: bool,
    /// Not heard on this subnet: taken from the list of this browser (the domain master
    /// browser, or a local master browser for the domain master browser).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_from: Option<String>,
}

/// One workgroup (DomainAnnouncement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowseWorkgroup {
    pub name: String,
    /// Its local master browser.
    pub master: String,
    pub server_type: u32,
    pub types: Vec<String>,
    pub os_version: String,
    pub periodicity_ms: u32,
    pub address: IpAddr,
    pub age_s: u64,
    pub expires_in_s: u64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub local: bool,
    /// As [`BrowseServer::synced_from`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_from: Option<String>,
}
