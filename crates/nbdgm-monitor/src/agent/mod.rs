//! Vantage points: probe agents (`nbdgm monitor agent`) that take their checks from the
//! central monitor and push results over HTTPS with a per-agent token; the central stores
//! them as the check `CHECK@LOCATION`.
//!
//! - [`proto`]: the messages and their validation
//! - [`server`]: the central's agent API (`[agents]`, `[[agent]]`)
//! - [`client`]: the agent: fetch checks, probe, push, buffer while the central is away
//! - [`buffer`]: the agent's bounded queue of unsent cycles

pub mod buffer;
pub mod client;
pub mod proto;
pub mod server;

use crate::config::AgentsConfig;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The ring crypto provider (the one rustls is built with here).
pub fn crypto() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls server configuration from a PEM certificate chain and a PEM private key.
pub fn server_tls(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("agents.tls_cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("agents.tls_cert {}: no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("agents.tls_key {}: {e}", key.display()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(crypto())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("agents TLS: {e}"))?;
    Ok(cfg)
}

/// The running agent API listener.
pub struct Listener {
    pub api: Arc<server::AgentApi>,
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Listener {
    /// Bind `[agents] listen` and serve the agent API (TLS unless allow_plaintext).
    pub async fn start(cfg: &AgentsConfig) -> anyhow::Result<Listener> {
        let tls = match &cfg.tls {
            Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(server_tls(
                cert, key,
            )?))),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| anyhow::anyhow!("agents.listen {}: {e}", cfg.listen))?;
        let addr = listener.local_addr()?;
        let api = Arc::new(server::AgentApi::default());
        let app = server::router(api.clone());
        let (tx, mut rx) = watch::channel(false);
        let shutdown = async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        let limiter = nbdgm_http::ConnLimiter::new(nbdgm_http::Limits::default());
        let hosts = nbdgm_http::HostCheck::any();
        let task = match tls {
            Some(acc) => {
                tracing::info!(%addr, "agent API listener (HTTPS)");
                tokio::spawn(nbdgm_http::serve_tls(
                    listener,
                    app,
                    limiter,
                    hosts,
                    "agent api",
                    acc,
                    shutdown,
                ))
            }
            None => {
                tracing::warn!(%addr, "agent API listener WITHOUT TLS (allow_plaintext): tokens and results travel in clear");
                tokio::spawn(nbdgm_http::serve(
                    listener,
                    app,
                    limiter,
                    hosts,
                    "agent api",
                    shutdown,
                ))
            }
        };
        Ok(Listener {
            api,
            addr,
            stop: tx,
            task,
        })
    }

    /// Stop serving (bounded wait).
    pub async fn stop(self) {
        self.api.clear_generation();
        let _ = self.stop.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}
