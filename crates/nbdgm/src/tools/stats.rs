//! `nbdgm stats`: the daemon's counters (received, delivered, dropped by reason,
//! reassembly, rate-limited), from its local API.

use super::{print_json, OutFormat};
use crate::exit;
use clap::Args;
use nbdgm_client::Client;
use nbdgm_wire::text::Escaped;
use serde_json::Value;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm stats\n  \
    nbdgm stats --format json | jq '.interfaces[0].node.dropped'\n\n\
Exit codes: 0 ok, 2 no daemon or an error.")]
pub struct StatsArgs {
    /// Also the name table and the name cache.
    #[arg(long)]
    pub names: bool,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
    /// The daemon's API socket [default: $NBDGM_API_SOCKET or /run/nbdgm/api.sock].
    #[arg(long, value_name = "PATH")]
    pub api_socket: Option<std::path::PathBuf>,
}

pub fn run(args: &StatsArgs) -> u8 {
    let path = args
        .api_socket
        .clone()
        .unwrap_or_else(nbdgm_client::default_socket_path);
    let mut client = match Client::connect(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nbdgm stats: no daemon at {}: {e}", path.display());
            return exit::USAGE;
        }
    };
    let mut v = match client.stats() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("nbdgm stats: {}", Escaped(&e.to_string()));
            return exit::USAGE;
        }
    };
    if args.names {
        if let (Ok(n), Ok(c)) = (client.names(), client.cache()) {
            v["names"] = serde_json::to_value(n).unwrap_or_default();
            v["cache"] = serde_json::to_value(c).unwrap_or_default();
        }
    }
    match args.format {
        OutFormat::Text => {
            let mut lines = Vec::new();
            flatten("", &v, &mut lines);
            for (k, val) in lines {
                // Keys and values can hold names heard on the network: escaped.
                println!("{:<60} {}", Escaped(&k), Escaped(&val));
            }
        }
        f => print_json(&v, f),
    }
    exit::OK
}

/// `a.b[0].c  value` lines; zero counters are kept (a zero is information).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_nested_counters() {
        let v = serde_json::json!({"a": {"b": 1, "c": [2, {"d": "x"}]}});
        let mut out = Vec::new();
        flatten("", &v, &mut out);
        assert_eq!(
            out,
            vec![
                ("a.b".to_string(), "1".to_string()),
                ("a.c[0]".to_string(), "2".to_string()),
                ("a.c[1].d".to_string(), "x".to_string()),
            ]
        );
    }
}
