//! `nbdgm monitor agent`: a probe agent (vantage point) that takes its checks from a
//! central `nbdgm monitor run` and pushes its results there over HTTPS with its token
//! (`nbdgm_monitor::agent::client`). The token is read from a file, never from the
//! command line.

use crate::exit;
use clap::Args;
use nbdgm_monitor::agent::{buffer, client};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nbdgm monitor agent --central https://monitor.example:8443 \\\n      \
    --token-file /etc/nbdgm/agent.token --location dmz --ca-file /etc/nbdgm/central-ca.pem\n  \
    nbdgm monitor agent --central https://198.51.100.2:8443 --token-file t --location outside \\\n      \
    --ca-file ca.pem --buffer-cycles 1000 --buffer-bytes 16777216 --state-dir /var/lib/nbdgm/agent\n\n\
The central monitor lists the agent in an [[agent]] table (name, location, token_file or\n\
token_sha256) and assigns checks with `agents = [\"NAME\"]`; results appear there as the\n\
check CHECK@LOCATION. While the central is unreachable the agent keeps probing and buffers\n\
(bounded; the oldest cycles are dropped first). Reference: docs/monitor.md, \"Vantage points\".")]
pub struct AgentArgs {
    /// The central monitor's agent API: https://HOST:PORT (its [agents] listen).
    #[arg(long, value_name = "URL")]
    pub central: String,
    /// File holding this agent's token (first line).
    #[arg(long, value_name = "FILE")]
    pub token_file: PathBuf,
    /// This agent's location, as configured on the central (checked against it).
    #[arg(long, value_name = "NAME")]
    pub location: String,
    /// PEM CA certificate(s) for the central's certificate [default: the webpki roots].
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Accept an http:// central (token and results in clear): trusted networks only.
    #[arg(long)]
    pub allow_plaintext: bool,
    /// Most unsent cycles kept while the central is away.
    #[arg(long, value_name = "N", default_value_t = buffer::DEFAULT_CYCLES)]
    pub buffer_cycles: usize,
    /// Most bytes (JSON) of unsent cycles kept.
    #[arg(long, value_name = "BYTES", default_value_t = buffer::DEFAULT_BYTES)]
    pub buffer_bytes: usize,
    /// Keep the last checks and, on stop, the unsent cycles here.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Seconds between two fetches of the checks.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, hide = true)]
    pub refresh_secs: u64,
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = super::monitor::Format::Text)]
    pub log_format: super::monitor::Format,
    /// Testing: read port states from FILE instead of probing (see ScriptedProber).
    #[arg(long, hide = true, value_name = "FILE")]
    pub fake_states: Option<PathBuf>,
}

pub fn run(a: &AgentArgs) -> u8 {
    match agent(a) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("nbdgm monitor agent: {e}");
            exit::USAGE
        }
    }
}

fn agent(a: &AgentArgs) -> anyhow::Result<()> {
    if !nbdgm_monitor::config::agents::valid_name(&a.location) {
        anyhow::bail!("--location: 1-64 characters of A-Z a-z 0-9 - _ .");
    }
    if !(1..=3600).contains(&a.refresh_secs) {
        anyhow::bail!("--refresh-secs: 1-3600");
    }
    let token = nbdgm_monitor::config::agents::read_token(&a.token_file)
        .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", a.token_file.display()))?;
    if let Ok(m) = std::fs::metadata(&a.token_file) {
        use std::os::unix::fs::PermissionsExt;
        if m.permissions().mode() & 0o007 != 0 {
            eprintln!(
                "nbdgm monitor agent: warning: --token-file {} is readable by every user \
                 (chmod o-rwx)",
                a.token_file.display()
            );
        }
    }
    let opts = client::AgentOptions {
        central: a.central.clone(),
        token,
        location: a.location.clone(),
        ca_file: a.ca_file.clone(),
        allow_plaintext: a.allow_plaintext,
        buffer_cycles: a.buffer_cycles,
        buffer_bytes: a.buffer_bytes,
        state_dir: a.state_dir.clone(),
        refresh: Duration::from_secs(a.refresh_secs),
    };
    // Refuse a bad URL (plaintext without --allow-plaintext) before anything starts.
    client::Client::new(
        &opts.central,
        "x",
        opts.ca_file.as_deref(),
        opts.allow_plaintext,
    )
    .map_err(anyhow::Error::msg)?;
    let format = match a.log_format {
        super::monitor::Format::Json => nbdgm_runtime::LogFormat::Json,
        super::monitor::Format::Text => nbdgm_runtime::LogFormat::Text,
    };
    nbdgm_runtime::init_logging(format, "info");
    nbdgm_monitor::alert::quiet_library_logs();
    let prober: Arc<dyn nbdgm_monitor::Prober> = match &a.fake_states {
        Some(p) => Arc::new(nbdgm_monitor::ScriptedProber { path: p.clone() }),
        None => Arc::new(nbdgm_monitor::RealProber::new()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(client::run_agent(opts, prober, rx));
        tokio::pin!(task);
        let r = tokio::select! {
            r = &mut task => r,
            _ = term.recv() => { let _ = tx.send(true); (&mut task).await }
            _ = int.recv() => { let _ = tx.send(true); (&mut task).await }
        };
        r.map_err(|e| anyhow::anyhow!("agent task: {e}"))?
    })
}
