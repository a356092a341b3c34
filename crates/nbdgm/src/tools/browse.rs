//! `nbdgm browse`: the browse list (MS-BRWS §3.3.1: servers and workgroups) without SMB1
//! RAP. Through the daemon it shows what the daemon's browser keeps; without one it
//! listens passively on UDP 138 for `--timeout` (optionally after sending an
//! AnnouncementRequest, MS-BRWS §2.2.2) and builds the list from what it hears.

use super::{at_most, parse_seconds, print_json, NetArgs, OutFormat, ToolError, Via};
use crate::exit;
use clap::Args;
use nbdgm_browser::{Browser, BrowserConfig};
use nbdgm_client::proto::{BrowseInterface, BrowseResult};
use nbdgm_node::{SendMode, SendRequest};
use nbdgm_wire::browser::{AnnouncementRequest, BrowserFrame};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::text::{escape, Escaped};
use nbdgm_wire::Name;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm browse                              # the daemon's list, every workgroup\n  \
    nbdgm browse --workgroup TESTGROUP --format json\n  \
    sudo nbdgm browse --standalone --timeout 65s  # no daemon: listen to announcements for 65 s\n  \
    sudo nbdgm browse --standalone --solicit --workgroup TESTGROUP --timeout 35s\n\n\
Servers announce themselves every 1 to 12 minutes, so a passive listen needs time;\n\
--solicit asks the workgroup (AnnouncementRequest): the master browser answers at once,\n\
other servers within 30 s. Standalone it binds UDP 138 (root or CAP_NET_BIND_SERVICE,\n\
or --port). With --daemon, --interface shows that interface's list only.\n\
Exit codes: 0 servers listed, 1 the list is empty, 2 usage or network error.")]
pub struct BrowseArgs {
    /// Only this workgroup's servers (and, with --solicit, the workgroup to ask).
    #[arg(long, short)]
    pub workgroup: Option<String>,
    #[command(flatten)]
    pub timeout: BrowseTimeout,
    /// Standalone: send an AnnouncementRequest to WORKGROUP<1E> first (needs --workgroup).
    #[arg(long, requires = "workgroup")]
    pub solicit: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

super::timeout_args!(
    BrowseTimeout,
    wait,
    parse_seconds,
    "SECONDS",
    "Standalone: how long to listen, e.g. 15s, 2m [default: 15s].",
    default = Duration::from_secs(15)
);

pub fn run(args: &BrowseArgs) -> u8 {
    super::exit_status("browse", browse(args))
}

fn browse(args: &BrowseArgs) -> Result<u8, ToolError> {
    let wait = at_most("--timeout", args.timeout.get(), Duration::from_secs(86_400))?;
    let mut given = args.net.standalone.given();
    if args.solicit {
        given.push("--solicit");
    }
    let result = match args.net.daemon.choose(&given, &["--interface"])? {
        Via::Daemon(mut client) => {
            let mut r = client.browse(args.workgroup.as_deref())?;
            if args.net.standalone.interface.is_some() {
                let addr = std::net::IpAddr::V4(args.net.standalone.interface()?.addr);
                r.interfaces.retain(|i| i.interface == addr);
            }
            r
        }
        Via::Standalone => standalone(args, wait)?,
    };
    let servers: usize = result.interfaces.iter().map(|i| i.servers.len()).sum();
    match args.net.format {
        OutFormat::Text => print_text(&result),
        f => print_json(&result, f),
    }
    Ok(if servers > 0 {
        exit::OK
    } else {
        exit::FINDINGS
    })
}

fn standalone(args: &BrowseArgs, wait: Duration) -> Result<BrowseResult, ToolError> {
    let mut config = args.net.standalone.node_config()?;
    let interface = config.interface;
    let bind = args.net.standalone.bind();
    let me = super::host_netbios_name();
    let workgroup = args
        .workgroup
        .clone()
        .unwrap_or_else(|| "WORKGROUP".into())
        .to_ascii_uppercase();
    // A listener only: no announcements, no elections.
    let mut bc = BrowserConfig::new(&me, &workgroup);
    bc.announce = false;
    bc.potential_browser = false;
    config.allow_unregistered_source = true;
    config.deliver_not_for_us = true;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let start = Instant::now();
        let browser = Browser::new(bc, start, u64::from(std::process::id()))
            .map_err(|e| ToolError::Usage(e.to_string()))?;
        // The runtime's driver feeds the browser the frames the node delivers.
        let mut node = nbdgm_runtime::Standalone::open(config, bind)?
            .with_browser(browser)
            .with_gate(nbdgm_daemon::standalone_gate::default_gate());
        if args.solicit {
            let frame = BrowserFrame::AnnouncementRequest(AnnouncementRequest {
                response_name: me.clone(),
                ..Default::default()
            });
            let encode = |e: &dyn std::fmt::Display| ToolError::Encode(e.to_string());
            let data = MailslotWrite::new(BROWSE, frame.to_bytes().map_err(|e| encode(&e))?)
                .to_bytes()
                .map_err(|e| encode(&e))?;
            let name = |n: &str, s: u8| Name::new(n, s).map_err(|e| ToolError::bad("name", n, e));
            node.node()
                .send(
                    start,
                    SendRequest {
                        source: name(&me, 0)?,
                        destination: name(&workgroup, 0x1E)?,
                        mode: SendMode::Group,
                        data,
                    },
                )
                .map_err(|e| encode(&e))?;
        }
        let deadline = start + wait;
        node.run(Some(deadline), |_| true).await?;
        let Some(list) = node.browser().map(|b| b.list(Instant::now())) else {
            return Ok(BrowseResult { interfaces: vec![] });
        };
        Ok(BrowseResult {
            interfaces: vec![nbdgm_runtime::browse_list::to_proto(
                interface.addr,
                interface.addr,
                list,
                args.workgroup.as_deref(),
                None,
            )],
        })
    })
}

fn age(s: u64) -> String {
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

/// The SV_TYPE names, lower case, without the browser bits' prefix noise.
fn types(t: &[String]) -> String {
    if t.is_empty() {
        return "-".into();
    }
    t.iter()
        .map(|s| escape(&s.to_ascii_lowercase()).into_owned())
        .collect::<Vec<_>>()
        .join(",")
}

fn print_text(r: &BrowseResult) {
    if r.interfaces.is_empty() {
        println!("no browse list (the daemon runs no browser: [browser] listen = false)");
    }
    for i in &r.interfaces {
        print_interface(i);
    }
}

/// Every string here was announced by some host on the subnet: escaped (issue 12
/// item 4) so that no name or comment can move the cursor or rewrite the screen.
fn print_interface(i: &BrowseInterface) {
    let master = match (&i.master, &i.master_address) {
        (Some(m), Some(a)) => format!("{} ({})", Escaped(m), Escaped(&a.to_string())),
        (Some(m), None) => escape(m).into_owned(),
        _ => "unknown".into(),
    };
    println!(
        "interface {}: workgroup {}, our role {}, local master browser {}",
        Escaped(&i.interface.to_string()),
        Escaped(&i.workgroup),
        Escaped(&i.role),
        master
    );
    if !i.backups.is_empty() {
        let backups: Vec<String> = i.backups.iter().map(|b| escape(b).into_owned()).collect();
        println!("backup browsers: {}", backups.join(", "));
    }
    print_domain(i);
    println!();
    println!(
        "{:<16} {:<16} {:<15} {:>5}",
        "WORKGROUP", "MASTER", "ADDRESS", "AGE"
    );
    if i.workgroups.is_empty() {
        println!("(none heard)");
    }
    for w in &i.workgroups {
        println!(
            "{:<16} {:<16} {:<15} {:>5}{}",
            Escaped(&w.name),
            Escaped(&w.master),
            Escaped(&w.address.to_string()),
            age(w.age_s),
            via(&w.synced_from)
        );
    }
    println!();
    println!(
        "{:<16} {:<16} {:<15} {:<5} {:>5}  {:<40} COMMENT",
        "SERVER", "WORKGROUP", "ADDRESS", "OS", "AGE", "TYPE"
    );
    if i.servers.is_empty() {
        println!("(none heard)");
    }
    for s in &i.servers {
        let name = if s.local {
            format!("{} *", Escaped(&s.name))
        } else {
            escape(&s.name).into_owned()
        };
        println!(
            "{:<16} {:<16} {:<15} {:<5} {:>5}  {:<40} {}{}",
            name,
            Escaped(&s.workgroup),
            Escaped(&s.address.to_string()),
            Escaped(&s.os_version),
            age(s.age_s),
            types(&s.types),
            Escaped(&s.comment),
            via(&s.synced_from)
        );
    }
    println!();
}

/// `  (via NAME)` for an entry synced from another browser's list, else nothing.
fn via(from: &Option<String>) -> String {
    match from {
        Some(f) => format!("  (via {})", Escaped(f)),
        None => String::new(),
    }
}

/// The domain master browser and, as domain master browser, the local master browsers
/// that announce to us (MS-BRWS §3.3.6, §3.4); names escaped as above.
fn print_domain(i: &BrowseInterface) {
    for line in domain_lines(i) {
        println!("{line}");
    }
}

fn domain_lines(i: &BrowseInterface) -> Vec<String> {
    let mut out = Vec::new();
    match (&i.domain_master, &i.domain_master_address) {
        (Some(d), Some(a)) => out.push(format!(
            "domain master browser: {} ({})",
            Escaped(d),
            Escaped(&a.to_string())
        )),
        (Some(d), None) => out.push(format!("domain master browser: {}", Escaped(d))),
        _ => {}
    }
    for m in &i.local_masters {
        out.push(format!(
            "local master browser: {} ({}) workgroup {}, last heard {} ago, {} syncs, {} entries last",
            Escaped(&m.name),
            Escaped(&m.address.to_string()),
            Escaped(&m.workgroup),
            age(m.age_s),
            m.syncs,
            m.last_entries
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_client::proto::BrowseLocalMaster;

    /// Names from the network are escaped in the DMB, local master and "via" text.
    #[test]
    fn domain_lines_and_via_are_escaped() {
        let mut i: BrowseInterface = serde_json::from_value(serde_json::json!({
            "interface": "198.51.100.1", "workgroup": "WG", "role": "master",
            "servers": [], "workgroups": []
        }))
        .unwrap();
        assert!(domain_lines(&i).is_empty(), "nothing known: no lines");
        i.domain_master = Some("DMB\x1b[2J".into());
        i.domain_master_address = Some("198.51.100.7".parse().unwrap());
        i.local_masters.push(BrowseLocalMaster {
            name: "LMB\n1".into(),
            workgroup: "WG".into(),
            address: "203.0.113.2".parse().unwrap(),
            age_s: 30,
            expires_in_s: 990,
            syncs: 2,
            last_entries: 5,
        });
        let l = domain_lines(&i);
        assert_eq!(l.len(), 2);
        assert!(
            !l.iter().any(|s| s.contains('\x1b') || s.contains('\n')),
            "{l:?}"
        );
        assert!(
            l[0].starts_with("domain master browser: DMB") && l[0].ends_with("(198.51.100.7)"),
            "{l:?}"
        );
        assert!(
            l[1].contains(
                "(203.0.113.2) workgroup WG, last heard 30s ago, 2 syncs, 5 entries last"
            ),
            "{l:?}"
        );
        assert_eq!(via(&None), "");
        let v = via(&Some("DMB\x07".into()));
        assert!(v.starts_with("  (via DMB") && !v.contains('\x07'), "{v:?}");
    }
}
