//! Running `tshark -T fields` and reading its output.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

/// Separator between fields and between occurrences of one field. tshark 4.0 prints string
/// values with every control character raw except BS, TAB, LF, FF and CR, which it escapes
/// (`\t`, ...), so TAB and FF cannot occur inside a value.
const SEP: char = '\t';
const AGG: char = '\u{0c}';

/// The fields asked for. `frame.number` must come first.
pub const FIELDS: &[&str] = &[
    "frame.number",
    // NBDGM (RFC 1002 §4.4)
    "nbdgm.type",
    "nbdgm.next",
    "nbdgm.first",
    "nbdgm.node_type",
    "nbdgm.dgram_id",
    "nbdgm.src.ip",
    "nbdgm.src.port",
    "nbdgm.dgram_len",
    "nbdgm.pkt_offset",
    "nbdgm.source_name",
    "nbdgm.destination_name",
    "nbdgm.error_code",
    // SMB transaction + mailslot (MS-MAIL §2.2.1)
    "smb.timeout",
    "smb.dc",
    "smb.data_offset",
    "mailslot.opcode",
    "mailslot.priority",
    "mailslot.class",
    "mailslot.name",
    // Browser (MS-BRWS §2.2) and LANMAN
    "browser.command",
    "browser.update_count",
    "browser.period",
    "browser.server",
    "browser.os_major",
    "browser.os_minor",
    "browser.server_type",
    "browser.proto_major",
    "browser.proto_minor",
    "browser.sig",
    "browser.comment",
    "browser.mysterious_field",
    "browser.mb_server",
    "browser.unused",
    "browser.response_computer_name",
    "browser.election.version",
    "browser.election.criteria",
    "browser.uptime",
    "browser.backup.count",
    "browser.backup.token",
    "browser.backup.server",
    "browser.browser_to_promote",
    "browser.reset_cmd",
    // NETLOGON (MS-ADTS §6.3.1)
    "smb_netlogon.command",
    "smb_netlogon.computer_name",
    "smb_netlogon.mailslot_name",
    "smb_netlogon.unicode_computer_name",
    "smb_netlogon.nt_version",
    "smb_netlogon.lmnt_token",
    "smb_netlogon.lm_token",
    "smb_netlogon.pdc_name",
    "smb_netlogon.unicode_pdc_name",
    "smb_netlogon.domain_name",
    "smb_netlogon.request_count",
    "smb_netlogon.user_name",
    "smb_netlogon.flags",
    "smb_netlogon.domain_sid_size",
    "smb_netlogon.server_name",
    // NBNS (RFC 1002 §4.2)
    "nbns.id",
    "nbns.flags",
    "nbns.flags.response",
    "nbns.flags.opcode",
    "nbns.flags.authoritative",
    "nbns.flags.truncated",
    "nbns.flags.recdesired",
    "nbns.flags.recavail",
    "nbns.flags.broadcast",
    "nbns.flags.rcode",
    "nbns.count.queries",
    "nbns.count.answers",
    "nbns.count.auth_rr",
    "nbns.count.add_rr",
    "nbns.name",
    "nbns.type",
    "nbns.class",
    "nbns.ttl",
    "nbns.nb_flags",
    "nbns.addr",
    "nbns.data",
    "nbns.number_of_names",
    "nbns.netbios_name",
    "nbns.name_flags",
    "nbns.unit_id",
    "nbns.jumpers",
    "nbns.test_result",
    "nbns.version_number",
    "nbns.period_of_statistics",
    "nbns.num_good_sends",
    "nbns.num_good_receives",
    "nbns.session_data_packet_size",
];

/// The fields tshark printed for one frame: every occurrence, in tree order.
#[derive(Debug, Default)]
pub struct TsFrame {
    pub fields: HashMap<&'static str, Vec<String>>,
}

impl TsFrame {
    pub fn all(&self, field: &str) -> &[String] {
        self.fields.get(field).map_or(&[], Vec::as_slice)
    }

    pub fn get(&self, field: &str, idx: usize) -> Option<&str> {
        self.all(field).get(idx).map(String::as_str)
    }

    pub fn has(&self, field: &str) -> bool {
        !self.all(field).is_empty()
    }
}

/// `Some(version line)` when tshark runs.
pub fn version() -> Option<String> {
    let out = Command::new("tshark").arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_owned)
}

/// What tshark made of a file.
pub struct Dissection {
    pub frames: BTreeMap<u64, TsFrame>,
    /// tshark reported the file cut short in the middle of a packet.
    pub cut_short: bool,
}

/// Dissect `path` and return the NBT fields of every frame with UDP port 137 or 138.
pub fn dissect(path: &Path) -> Result<Dissection, String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n")
        .arg("-r")
        .arg(path)
        .args(["-Y", "udp.port == 137 || udp.port == 138"])
        .args(["-T", "fields"])
        .arg("-Eseparator=/t")
        .arg(format!("-Eaggregator={AGG}"))
        .args(["-E", "occurrence=a", "-E", "quote=n", "-E", "header=n"]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run tshark: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A capture cut short in the middle of its last packet: tshark prints every complete
    // frame and then fails; the frames are still compared.
    let cut_short = stderr.contains("cut short in the middle of a packet");
    if !out.status.success() && !cut_short {
        return Err(format!("tshark failed on {}: {}", path.display(), stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut frames = BTreeMap::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split(SEP).collect();
        if cols.len() != FIELDS.len() {
            return Err(format!(
                "{}: tshark line with {} columns, expected {}: {line:?}",
                path.display(),
                cols.len(),
                FIELDS.len()
            ));
        }
        let frame: u64 = cols[0]
            .parse()
            .map_err(|_| format!("bad frame number {:?}", cols[0]))?;
        let mut f = TsFrame::default();
        for (name, col) in FIELDS.iter().zip(&cols).skip(1) {
            if !col.is_empty() {
                f.fields
                    .insert(name, col.split(AGG).map(str::to_owned).collect());
            }
        }
        frames.insert(frame, f);
    }
    Ok(Dissection { frames, cut_short })
}
