//! `nbdgm wins`: list, add and delete names of the daemon's NBNS role (the name
//! database of RFC 1001 §15.1.1; local API `wins_list`, `wins_add`, `wins_delete`).

use super::{print_json, OutFormat};
use crate::exit;
use clap::{Args, Subcommand};
use nbdgm_client::proto::{Op, WinsAddArgs, WinsDeleteArgs, WinsListArgs, WinsListResult};
use nbdgm_client::Client;
use nbdgm_wire::text::Escaped;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm wins list\n  \
    nbdgm wins list --format json | jq '.interfaces[0].entries[].name'\n  \
    nbdgm wins add 'FILESRV<20>' 198.51.100.5 --ttl 3600\n  \
    nbdgm wins add 'DOMAIN<1c>' 198.51.100.2 198.51.100.3 --group --static\n  \
    nbdgm wins delete 'FILESRV<20>'\n  \
    nbdgm wins delete 'DOMAIN<1c>' --address 198.51.100.3\n\n\
Adding and deleting need root or the daemon's user; names from the configuration\n\
([[nbns_server.static]]) change only with the configuration.\n\n\
Exit codes: 0 ok, 2 no daemon, refused or an error.")]
pub struct WinsArgs {
    #[command(subcommand)]
    pub cmd: WinsCmd,
    #[arg(long, value_enum, default_value_t = OutFormat::Text, global = true)]
    pub format: OutFormat,
    /// One interface only (its address) [default: every interface with the NBNS role].
    #[arg(long, value_name = "IP", global = true)]
    pub interface: Option<IpAddr>,
    /// The daemon's API socket [default: $NBDGM_API_SOCKET or /run/nbdgm/api.sock].
    #[arg(long, value_name = "PATH", global = true)]
    pub api_socket: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum WinsCmd {
    /// Print the NBNS table (every page).
    List,
    /// Add a name: dynamic (one address, expires after --ttl) or --static (never expires,
    /// defended against registrations, saved in the state file).
    Add {
        /// `NAME<xx>`, e.g. `FILESRV<20>`.
        name: String,
        /// Its address(es); several only for --static or --group --static.
        #[arg(required = true)]
        addresses: Vec<Ipv4Addr>,
        #[arg(long)]
        group: bool,
        #[arg(long = "static")]
        is_static: bool,
        /// Seconds (dynamic entries) [default: the role's default_ttl_s].
        #[arg(long)]
        ttl: Option<u32>,
    },
    /// Delete a name, or one of its addresses.
    Delete {
        name: String,
        #[arg(long, value_name = "IP")]
        address: Option<Ipv4Addr>,
    },
}

fn fail(e: impl std::fmt::Display) -> u8 {
    eprintln!("nbdgm wins: {}", Escaped(&e.to_string()));
    exit::USAGE
}

pub fn run(args: &WinsArgs) -> u8 {
    let path = args
        .api_socket
        .clone()
        .unwrap_or_else(nbdgm_client::default_socket_path);
    let mut client = match Client::connect(&path) {
        Ok(c) => c,
        Err(e) => return fail(format_args!("no daemon at {}: {e}", path.display())),
    };
    match &args.cmd {
        WinsCmd::List => list(&mut client, args),
        WinsCmd::Add {
            name,
            addresses,
            group,
            is_static,
            ttl,
        } => {
            let op = Op::WinsAdd(WinsAddArgs {
                name: name.clone(),
                group: *group,
                addresses: addresses.clone(),
                is_static: *is_static,
                ttl: *ttl,
                interface: args.interface,
            });
            change(&mut client, op, args.format, "added")
        }
        WinsCmd::Delete { name, address } => {
            let op = Op::WinsDelete(WinsDeleteArgs {
                name: name.clone(),
                address: *address,
                interface: args.interface,
            });
            change(&mut client, op, args.format, "deleted")
        }
    }
}

fn change(client: &mut Client, op: Op, format: OutFormat, what: &str) -> u8 {
    let r: nbdgm_client::proto::WinsChangeResult = match client.call(op) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    match format {
        OutFormat::Text => {
            let on: Vec<String> = r.interfaces.iter().map(|i| i.to_string()).collect();
            println!("{} {what} on {}", Escaped(&r.name), on.join(", "));
        }
        f => print_json(&r, f),
    }
    exit::OK
}

/// Every page of every interface, then printed.
fn list(client: &mut Client, args: &WinsArgs) -> u8 {
    let mut all = WinsListResult {
        interfaces: Vec::new(),
    };
    let mut offset = 0;
    // Bounded: at most 10,000 pages (the table is capped far below).
    for _ in 0..10_000 {
        let page: WinsListResult = match client.call(Op::WinsList(WinsListArgs {
            interface: args.interface,
            offset: Some(offset),
            limit: None,
        })) {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
        let next = page.interfaces.iter().filter_map(|i| i.next_offset).max();
        for i in page.interfaces {
            match all
                .interfaces
                .iter_mut()
                .find(|a| a.interface == i.interface)
            {
                Some(a) => a.entries.extend(i.entries),
                None => all.interfaces.push(i),
            }
        }
        match next {
            Some(n) if n > offset => offset = n,
            _ => break,
        }
    }
    for i in &mut all.interfaces {
        i.next_offset = None;
    }
    match args.format {
        OutFormat::Text => print_text(&all),
        f => print_json(&all, f),
    }
    exit::OK
}

fn print_text(r: &WinsListResult) {
    for i in &r.interfaces {
        println!("interface {} ({} names)", i.interface, i.total);
        for e in &i.entries {
            let kind = if e.group { "group" } else { "unique" };
            let life = |ttl: u32, left: u64| {
                if e.is_static {
                    "static".to_owned()
                } else {
                    format!("ttl {ttl} s, {left} s left")
                }
            };
            for m in &e.members {
                // Names are heard on the network: escaped.
                println!(
                    "  {:<24} {:<6} {:<15} {} {}",
                    Escaped(&e.name),
                    kind,
                    m.ip,
                    Escaped(&m.ont),
                    life(m.ttl, m.expires_in_s)
                );
            }
        }
    }
}
