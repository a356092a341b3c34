//! `nbdgm serve`: the datagram node daemon (RFC 1001 §15, §17; RFC 1002 §5.1.1, §5.3),
//! configured by TOML (`docs/configuration.md`) with command-line overrides.

use crate::exit;
use clap::{Args, ValueEnum};
use nbdgm_daemon::config::Overrides;
use nbdgm_daemon::runtime::{self, ServeOptions};
use std::path::PathBuf;

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    sudo nbdgm serve --config /etc/nbdgm/nbdgm.toml\n  \
    nbdgm serve --check-config --config dist/nbdgm.toml\n  \
    sudo nbdgm serve --interface 198.51.100.10/24 --name FILESRV --workgroup OFFICE --log-format json\n\n\
Signals: SIGHUP reloads the configuration (names and subscribers are kept);\n\
SIGTERM/SIGINT release the names and exit.\n\
Exit codes: 0 clean exit (or a valid configuration with --check-config), 2 configuration,\n\
bind or permission error.")]
pub struct ServeArgs {
    /// The configuration file (TOML; example: dist/nbdgm.toml).
    #[arg(long, short = 'c', value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Validate the configuration, print a summary and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Serve this interface, IP/PREFIX (repeatable; replaces the file's list).
    #[arg(long, value_name = "IP/PREFIX")]
    pub interface: Vec<String>,
    /// NetBIOS name of this node.
    #[arg(long)]
    pub name: Option<String>,
    /// Another name of this node (repeatable).
    #[arg(long)]
    pub alias: Vec<String>,
    #[arg(long)]
    pub workgroup: Option<String>,
    /// NetBIOS scope (RFC 1001 §9).
    #[arg(long)]
    pub scope: Option<String>,
    /// b, p, m or h (p and m need [nbns] servers).
    #[arg(long)]
    pub node_type: Option<String>,
    /// Path of the local API socket.
    #[arg(long, value_name = "PATH")]
    pub api_socket: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

impl ServeArgs {
    fn options(&self) -> ServeOptions {
        ServeOptions {
            config_path: self.config.clone(),
            overrides: Overrides {
                interfaces: self.interface.clone(),
                name: self.name.clone(),
                aliases: self.alias.clone(),
                workgroup: self.workgroup.clone(),
                scope: self.scope.clone(),
                node_type: self.node_type.clone(),
                api_socket: self.api_socket.clone(),
                log_format: self.log_format.map(|f| match f {
                    LogFormatArg::Text => "text".to_string(),
                    LogFormatArg::Json => "json".to_string(),
                }),
            },
        }
    }
}

pub fn run(args: &ServeArgs) -> u8 {
    let opts = args.options();
    let cfg = match runtime::load(&opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nbdgm serve: {e}");
            return exit::USAGE;
        }
    };
    if args.check_config {
        let file = opts
            .config_path
            .clone()
            .unwrap_or_else(|| PathBuf::from("(defaults)"));
        let mut summary = cfg.summary(&file);
        if let Some(w) = nbdgm_daemon::privilege::root_warning_now(cfg.privileges.user.as_deref()) {
            summary.warnings.push(w.to_owned());
        }
        match serde_json::to_string_pretty(&summary) {
            Ok(s) => println!("configuration OK\n{s}"),
            Err(_) => println!("configuration OK"),
        }
        return exit::OK;
    }
    runtime::init_logging(cfg.log.format, &cfg.log.level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nbdgm serve: cannot start the runtime: {e}");
            return exit::USAGE;
        }
    };
    match rt.block_on(runtime::serve(opts, cfg)) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("nbdgm serve: {e:#}");
            exit::USAGE
        }
    }
}
