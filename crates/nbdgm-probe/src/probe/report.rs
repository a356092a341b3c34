//! The results as JSON, CSV (cells safe from spreadsheet formulas) and text (every string
//! from the network escaped).

use super::evidence::clean;
use super::HostResult;

/// The results as a pretty JSON array of [`HostResult`].
pub fn to_json(results: &[HostResult]) -> String {
    serde_json::to_string_pretty(results).unwrap_or_else(|_| "[]".into())
}

/// [`to_json`] with each host's discovery method added as `"discovery"` (`arp-raw`,
/// `neighbour-table`, `none`; `methods` in the order of `results`, a missing one is `none`).
/// [`HostResult`] ignores the field when read back.
pub fn to_json_with_discovery(results: &[HostResult], methods: &[&str]) -> String {
    let hosts: Vec<serde_json::Value> = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut v = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
            if let Some(o) = v.as_object_mut() {
                let m = methods.get(i).copied().unwrap_or("none");
                o.insert("discovery".into(), serde_json::Value::from(m));
            }
            v
        })
        .collect();
    serde_json::to_string_pretty(&hosts).unwrap_or_else(|_| "[]".into())
}

/// CSV columns, one row per host × port.
pub const CSV_HEADER: [&str; 11] = [
    "address",
    "hostname",
    "port",
    "state",
    "evidence",
    "rtt_ms",
    "attempts",
    "workgroup",
    "roles",
    "mac",
    "names",
];

/// A CSV cell that a spreadsheet will not run: a cell starting with `=`, `+`, `-`, `@`,
/// TAB or CR gets a leading `'` (OWASP, "CSV Injection").
pub fn csv_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

/// The results as CSV: a header, then one row per host × port. Every cell passes
/// [`csv_cell`] (names, workgroups and evidence come from the network).
pub fn to_csv(results: &[HostResult]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    for h in results {
        let info = h.info.clone().unwrap_or_default();
        let names: Vec<String> = info
            .names
            .iter()
            .map(|n| {
                if n.group {
                    format!("{}(g)", n.name)
                } else {
                    n.name.clone()
                }
            })
            .collect();
        for p in &h.ports {
            let row = [
                h.address.to_string(),
                h.hostname.clone().unwrap_or_default(),
                p.port.to_string(),
                p.state.to_string(),
                p.evidence.clone(),
                p.rtt_ms.map(|r| format!("{r:.3}")).unwrap_or_default(),
                p.attempts.to_string(),
                info.workgroup.clone().unwrap_or_default(),
                info.roles.join(" "),
                info.mac.clone().unwrap_or_default(),
                names.join(" "),
            ];
            w.write_record(row.iter().map(|c| csv_cell(c)))?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The results as text: a block per host with its names, roles and MAC, then a table of
/// ports. Every string from the network or a resolver is escaped
/// ([`nbdgm_wire::text::escape`]): no control character reaches the terminal.
pub fn to_text(results: &[HostResult]) -> String {
    use nbdgm_wire::text::{escape, Escaped};
    use std::fmt::Write as _;
    let mut s = String::new();
    for h in results {
        let _ = write!(s, "{}", h.address);
        if let Some(n) = &h.hostname {
            let _ = write!(s, " ({})", Escaped(&clean(n)));
        }
        let _ = writeln!(s, "  [{:.0} ms]", h.duration_ms);
        if let Some(info) = &h.info {
            let names: Vec<String> = info
                .names
                .iter()
                .map(|n| {
                    if n.group {
                        format!("{} (group)", escape(&n.name))
                    } else {
                        escape(&n.name).into_owned()
                    }
                })
                .collect();
            let _ = writeln!(s, "  names:     {}", names.join(", "));
            let _ = writeln!(
                s,
                "  workgroup: {}   roles: {}   MAC: {}",
                Escaped(info.workgroup.as_deref().unwrap_or("-")),
                if info.roles.is_empty() {
                    "-".to_string()
                } else {
                    escape(&info.roles.join(", ")).into_owned()
                },
                Escaped(info.mac.as_deref().unwrap_or("-"))
            );
        }
        let _ = writeln!(s, "  {:<8} {:<14} {:>9}  EVIDENCE", "PORT", "STATE", "RTT");
        for p in &h.ports {
            let rtt = p
                .rtt_ms
                .map(|r| format!("{r:.1} ms"))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                s,
                "  {:<8} {:<14} {:>9}  {}",
                p.port.as_str(),
                p.state.as_str(),
                rtt,
                Escaped(&p.evidence)
            );
        }
        s.push('\n');
    }
    s
}
