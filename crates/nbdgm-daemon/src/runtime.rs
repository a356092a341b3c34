//! `nbdgm serve`: bind, drop privileges, run one worker per interface and the local
//! API, reload on SIGHUP, release the names on SIGTERM/SIGINT.

use crate::api::{self, ApiMsg, Hub};
use crate::config::{self, Config, Overrides};
use crate::dispatch::{Dispatcher, Identity, WorkerHandle};
use crate::worker::{AppsConfig, Command, Door, Worker};
use crate::{privilege, sockets};
use anyhow::{bail, Context, Result};
use ipnet::Ipv4Net;
use nbdgm_node::{Name, Node, NodeConfig};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

/// Commands queued per worker before the API answers `busy`.
const WORKER_QUEUE: usize = 1024;
/// API requests queued before connections wait.
const API_QUEUE: usize = 1024;

/// Where the configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub config_path: Option<PathBuf>,
    pub overrides: Overrides,
}

/// Read the file (if any), apply the overrides and validate.
pub fn load(opts: &ServeOptions) -> Result<Config, config::ConfigError> {
    let mut cfg = match &opts.config_path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    cfg.apply(&opts.overrides)?;
    cfg.validate()?;
    Ok(cfg)
}

/// The mailslot applications' settings for one interface.
pub(crate) fn apps_config(cfg: &Config, iface: &config::Interface) -> AppsConfig {
    let roles = &cfg.node.role;
    let settings = (roles.nbns || roles.nbdd).then(|| crate::roles::RoleSettings {
        nbns: roles.nbns.then(|| {
            cfg.nbns_server.engine(
                cfg.ports.name,
                cfg.ports.name,
                &cfg.node.scope,
                cfg.limits.reply_amplification as usize,
            )
        }),
        nbdd: roles.nbdd.then(|| {
            let mut own = vec![iface.net.addr()];
            own.extend(iface.announce_address);
            cfg.nbdd_server.engine(
                cfg.ports.datagram,
                &cfg.node.scope,
                own,
                cfg.datagram.max_length,
            )
        }),
        member_server: cfg
            .nbdd_server
            .nbns
            .or_else(|| cfg.nbns.servers.first().copied()),
        nbns_static: (cfg.nbns_server.statics.iter())
            .filter_map(|s| s.entry(&cfg.node.scope).ok())
            .collect(),
        nbns_state: crate::nbns_state::state_path(
            cfg.nbns_server.state_file.as_deref(),
            iface.net.addr(),
        )
        .map(|path| crate::nbns_state::StateSettings {
            path,
            interval: Duration::from_secs(cfg.nbns_server.state_save_interval_s),
            max_bytes: cfg.nbns_server.state_max_bytes,
        }),
    });
    AppsConfig {
        roles: settings,
        messenger: cfg.messenger.clone(),
        browser: browser_config(cfg),
        sync_http_port: cfg.browser.sync_http_port,
    }
}

/// The browser's settings. On interfaces found automatically (no `[[interface]]`) the
/// browser only listens unless `[browser] auto_interfaces` says otherwise: no
/// announcement, election or browse role on a network nobody named (issue 17 §5).
fn browser_config(cfg: &Config) -> Option<nbdgm_browser::BrowserConfig> {
    cfg.browser.active().then(|| {
        let mut b =
            cfg.browser
                .engine_config(&cfg.node_name(), &cfg.node.workgroup, cfg.ports.datagram);
        if cfg.interfaces.is_empty() && !cfg.browser.auto_interfaces {
            b.announce = false;
            b.potential_browser = false;
            b.preferred_master = false;
            b.lm_announce = nbdgm_browser::LmAnnounce::No;
            b.remote_announce.clear();
            b.allow_reset = false;
        }
        b
    })
}

/// Log (info) the interfaces discovery leaves out and why, when none is configured.
fn log_skipped_interfaces(cfg: &Config) {
    if !cfg.interfaces.is_empty() {
        return;
    }
    // An error here is reported by `resolve_interfaces`.
    if let Ok(d) = nbdgm_runtime::interfaces::discover_interfaces() {
        for (i, reason) in d.skipped {
            info!(
                interface = %nbdgm_wire::text::escape(&i.name),
                address = %i.addr,
                %reason,
                "not served: a container or virtual interface found automatically; \
                 name its address in an [[interface]] to serve it"
            );
        }
    }
}

/// The engine's settings for one interface; `host`: the addresses of every interface
/// served (the others make a multi-homed registration with the NBNS, MS-NBTE §3.1.4.1).
pub(crate) fn node_config(
    cfg: &Config,
    iface: &config::Interface,
    host: &[Ipv4Addr],
) -> NodeConfig {
    let mut n = NodeConfig::new(nbdgm_node::Interface {
        addr: iface.net.addr(),
        prefix: iface.net.prefix_len(),
        broadcast: Some(iface.broadcast),
    });
    n.name_port = cfg.ports.name;
    n.datagram_port = cfg.ports.datagram;
    n.node_type = match cfg.node.node_type {
        config::NodeType::B => nbdgm_node::NodeType::B,
        config::NodeType::P => nbdgm_node::NodeType::P,
        config::NodeType::M => nbdgm_node::NodeType::M,
        config::NodeType::H => nbdgm_node::NodeType::H,
    };
    n.scope = cfg.node.scope.clone();
    n.bcast_retry_interval = Duration::from_millis(cfg.name_service.retry_interval_ms);
    n.bcast_retry_count = cfg.name_service.retry_count;
    n.conflict_timer = Duration::from_millis(cfg.name_service.conflict_timer_ms);
    n.registration_ttl = cfg.name_service.ttl;
    n.max_datagram_length = cfg.datagram.max_length;
    n.fragment_timeout = Duration::from_millis(cfg.datagram.fragment_timeout_ms);
    n.reassembly = nbdgm_node::ReassemblyLimits {
        max_pending: cfg.reassembly.max_pending,
        max_bytes_per_source: cfg.reassembly.max_bytes_per_source,
        max_total_bytes: cfg.reassembly.max_total_bytes,
        max_datagram_bytes: cfg.reassembly.max_datagram_bytes,
    };
    n.cache.max_entries = cfg.name_service.cache_entries;
    n.cache.ttl = Duration::from_secs(cfg.name_service.cache_ttl_s);
    n.node_status = cfg.name_service.node_status;
    n.datagram_error_on_unknown = cfg.datagram.error_on_unknown_name;
    n.deliver_not_for_us = true; // the hub filters by subscription
    n.source_ip_policy = cfg.datagram.source_ip_mismatch;
    n.announce_address = iface.announce_address;
    n.nbns = cfg.nbns.servers.clone();
    n.nbns_port = cfg.nbns.port;
    n.refresh_min = Duration::from_secs(cfg.nbns.refresh_min_s);
    n.nbdd = crate::roles::nbdd_target(&cfg.nbdd, &cfg.nbns, cfg.ports.datagram)
        .filter(|_| cfg.nbdd.address.is_some() || n.node_type != nbdgm_node::NodeType::H);
    n.nbdd_query = cfg.nbdd.query;
    n.nbdd_refused_unicast = cfg.nbdd.refused_unicast;
    n.nbdd_refused_unicast_max_members = cfg.nbdd.refused_unicast_max_members;
    n.nbdd_refused_unicast_per_s = cfg.nbdd.refused_unicast_per_s;
    let me = iface.announce_address.unwrap_or(iface.net.addr());
    n.multihomed = host
        .iter()
        .copied()
        .filter(|a| *a != me && *a != iface.net.addr())
        .take(nbdgm_node::config::MAX_MULTIHOMED)
        .collect();
    n.reply_limit_factor = cfg.limits.reply_amplification as usize;
    n.max_names = cfg.limits.max_names;
    n
}

/// `auto` access lists: our own subnets, plus the name servers and the NBDD we use
/// (they may sit behind a router and must be able to answer).
fn auto_allowed(cfg: &Config, own: &[Ipv4Net]) -> Vec<Ipv4Net> {
    let mut v = own.to_vec();
    let hosts = cfg
        .nbns
        .servers
        .iter()
        .chain(cfg.nbdd.address.iter())
        .chain(cfg.nbdd_server.nbns.iter());
    for ip in hosts {
        if let Ok(n) = Ipv4Net::new(*ip, 32) {
            if !v.iter().any(|o| o.contains(ip)) {
                v.push(n);
            }
        }
    }
    v
}

fn door(cfg: &Config, own: &[Ipv4Net]) -> Door {
    let auto = auto_allowed(cfg, own);
    Door {
        name_acl: Arc::new(cfg.access.name_service.acl(&auto)),
        datagram_acl: Arc::new(cfg.access.datagram.acl(&auto)),
        rx_limit: (
            cfg.limits.rx_per_source.rate,
            cfg.limits.rx_per_source.burst,
        ),
        reply_limit: (
            cfg.limits.replies_per_source.rate,
            cfg.limits.replies_per_source.burst,
        ),
        max_sources: cfg.limits.max_sources,
        reply_amplification: cfg.limits.reply_amplification as usize,
        drop_log_per_s: cfg.limits.drop_log_per_s,
        rx_moderation: Duration::from_micros(cfg.limits.rx_moderation_us.into()),
    }
}

fn identity(cfg: &Config) -> Result<Identity> {
    let node_name = Name::new(&cfg.node_name(), 0)
        .and_then(|n| n.with_scope(&cfg.node.scope))
        .map_err(|e| anyhow::anyhow!("node name: {e}"))?;
    // Names the API may not touch: the configured ones and, with a browser, its own.
    let mut reserved: Vec<Name> = cfg.names().into_iter().map(|(n, _)| n).collect();
    if cfg.browser.active() {
        let wg = &cfg.node.workgroup;
        let browser = [Name::new(wg, 0x1d), Name::new(wg, 0x1e)];
        reserved.extend(
            browser
                .into_iter()
                .flatten()
                .chain(std::iter::once(Name::msbrowse()))
                .filter_map(|n| n.with_scope(&cfg.node.scope).ok()),
        );
    }
    Ok(Identity {
        node_name,
        scope: cfg.node.scope.clone(),
        reserved,
    })
}

/// The API hub as the workers' outlet.
/// Run the daemon until SIGTERM/SIGINT.
pub async fn serve(opts: ServeOptions, cfg: Config) -> Result<()> {
    log_skipped_interfaces(&cfg);
    let interfaces = cfg.resolve_interfaces().context("interfaces")?;
    for w in cfg.interface_warnings(&interfaces) {
        warn!("{w}");
    }
    let own: Vec<Ipv4Net> = interfaces.iter().map(|i| i.net.trunc()).collect();

    // 1. Bind everything while we may still be root.
    let bound = bind_interfaces(&cfg, &interfaces)?;
    let listener = bind_api(&cfg)?;
    let rap_bound = crate::rap_server::bind(&cfg, &interfaces, &auto_allowed(&cfg, &own))?;

    // 2. Drop privileges.
    drop_privileges(&cfg)?;

    // 3. Workers.
    let hub = Arc::new(Hub::with_queue_bytes_total(cfg.api.queue_bytes_total));
    // The hub is the workers' outlet (`impl Outlet for Hub` in `worker`).
    let outlet = hub.clone();
    let names = cfg.names();
    let mut handles = Vec::new();
    let host: Vec<Ipv4Addr> = bound
        .iter()
        .map(|(i, _)| i.announce_address.unwrap_or(i.net.addr()))
        .collect();
    for (iface, socks) in bound {
        let node = Node::new(node_config(&cfg, &iface, &host), Instant::now())
            .map_err(|e| anyhow::anyhow!("interface {}: {e}", iface.net))?;
        let (tx, rx) = mpsc::channel(WORKER_QUEUE);
        handles.push(WorkerHandle {
            interface: iface.net.addr(),
            prefix: iface.net.prefix_len(),
            broadcast: iface.broadcast,
            tx,
        });
        // Each interface gets a thread of its own (a current-thread runtime), so a flood on
        // the receive path never starves the API's writer tasks on the main runtime.
        let door = door(&cfg, &own);
        let apps = apps_config(&cfg, &iface);
        let outlet = outlet.clone();
        let names = names.clone();
        let addr = iface.net.addr();
        std::thread::Builder::new()
            .name(format!("nbdgm {addr}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        return error!(interface = %addr, error = %e, "no runtime for the interface")
                    }
                };
                rt.block_on(async move {
                    match socks.into_tokio() {
                        Ok(socks) => {
                            Worker::new(node, socks, door, outlet, apps)
                                .run(names, rx)
                                .await
                        }
                        Err(e) => {
                            error!(interface = %addr, error = %e, "cannot register the sockets")
                        }
                    }
                });
            })
            .context("starting the interface thread")?;
        info!(interface = %iface.net, broadcast = %iface.broadcast,
              name_port = cfg.ports.name, datagram_port = cfg.ports.datagram, "serving");
    }

    // 4. API.
    let (api_tx, mut api_rx) = mpsc::channel::<ApiMsg>(API_QUEUE);
    let (stop_tx, stop_rx) = watch::channel(false);
    info!(socket = %cfg.api.socket.display(), "local API listening");
    let api_task = tokio::spawn(listener.run(hub.clone(), api_tx, stop_rx));
    let http_limiter = nbdgm_http::ConnLimiter::new(cfg.browser.http_limits());
    let rap = crate::rap_server::Rap::new(&cfg);
    let stats = api_stats(hub.clone(), http_limiter.clone(), rap.clone());
    let mut dispatcher = Dispatcher::new(handles.clone(), identity(&cfg)?, stats);

    // 4b. The browse list over HTTP (read-only), and over RAP on 139 if switched on.
    let http_task = serve_browse_http(&cfg, &handles, http_limiter).await?;
    let rap_tasks = crate::rap_server::spawn(rap_bound, &cfg, &handles, &rap);

    // 5. Signals.
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut current = cfg;
    loop {
        tokio::select! {
            Some(msg) = api_rx.recv() => dispatcher.handle(msg),
            _ = hup.recv() => {
                match reload(&opts, &current) {
                    Ok(new) => {
                        reconfigure(&new, &handles, &host, &own, &mut dispatcher).await;
                        current = new;
                    }
                    Err(e) => error!(error = %e, "reload failed; keeping the running configuration"),
                }
            }
            _ = term.recv() => { info!("SIGTERM: releasing names"); break; }
            _ = int.recv() => { info!("SIGINT: releasing names"); break; }
        }
    }

    // 6. Shutdown: release names on every interface, stop the API.
    shutdown_workers(&handles).await;
    if let Some(t) = http_task {
        t.abort();
    }
    rap_tasks.iter().for_each(|t| t.abort());
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), api_task).await;
    info!("stopped");
    Ok(())
}

/// Bind the sockets of every interface (while we may still be root).
fn bind_interfaces(
    cfg: &Config,
    interfaces: &[config::Interface],
) -> Result<Vec<(config::Interface, sockets::BoundSockets)>> {
    let mut bound = Vec::new();
    for i in interfaces {
        let s = sockets::bind(
            i.net.addr(),
            i.broadcast,
            cfg.ports.name,
            cfg.ports.datagram,
        )
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        bound.push((*i, s));
    }
    Ok(bound)
}

/// Create the API socket (and the TCP listener) as `[api]` and `[access.api]` say.
fn bind_api(cfg: &Config) -> Result<api::ApiListener> {
    let mut api_cfg = api::ApiConfig::new(&cfg.api.socket);
    api_cfg.mode = cfg.api.mode.0;
    api_cfg.group = cfg.api.group.clone();
    api_cfg.max_clients = cfg.api.max_clients;
    api_cfg.queue_per_client = cfg.api.queue_per_client;
    api_cfg.queue_bytes_per_client = cfg.api.queue_bytes_per_client;
    api_cfg.max_clients_per_peer = cfg.api.max_clients_per_peer;
    api_cfg.tcp = cfg.api.tcp.map(SocketAddr::V4);
    if let Some(f) = &cfg.api.tcp_token_file {
        api_cfg.tcp_token = Some(
            api::read_token_file(f)
                .with_context(|| format!("api.tcp_token_file {}", f.display()))?,
        );
    }
    let tcp_acl = Arc::new(cfg.access.api.acl());
    api_cfg.tcp_acl = Arc::new(move |ip| match ip {
        std::net::IpAddr::V4(v4) => tcp_acl.permits(v4),
        std::net::IpAddr::V6(_) => false,
    });
    api_cfg.allow_uids = cfg.access.api.allow_uids.clone();
    api_cfg.allow_gids = cfg.access.api.allow_gids.clone();
    if let Some(dir) = cfg.api.socket.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("creating the API socket's directory {}", dir.display())
            })?;
        }
    }
    api::bind(api_cfg).with_context(|| format!("API socket {}", cfg.api.socket.display()))
}

/// Become `[privileges] user` (and group), or warn when running as root.
fn drop_privileges(cfg: &Config) -> Result<()> {
    if let Some(user) = &cfg.privileges.user {
        privilege::drop_privileges(user, cfg.privileges.group.as_deref())
            .with_context(|| format!("dropping privileges to {user}"))?;
        info!(user, "dropped privileges");
    } else if let Some(w) = privilege::root_warning_now(None) {
        warn!("{w}");
    }
    Ok(())
}

/// The browse list over HTTP, if `[browser] http` is set.
async fn serve_browse_http(
    cfg: &Config,
    handles: &[WorkerHandle],
    http_limiter: Arc<nbdgm_http::ConnLimiter>,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    Ok(
        match cfg.browser.http_addr().map_err(|e| anyhow::anyhow!(e))? {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("browser.http {addr}"))?;
                if !addr.ip().is_loopback() {
                    warn!(%addr, "browser.http listens beyond localhost: anyone who can reach it reads the browse list");
                }
                info!(%addr, "browse list over HTTP at /api/browse");
                let app = crate::browse::http::router(Arc::new(handles.to_vec()));
                let hosts = nbdgm_http::HostCheck::new(addr, &cfg.browser.http_allowed_hosts);
                Some(tokio::spawn(nbdgm_http::serve(
                    listener,
                    app,
                    http_limiter,
                    hosts,
                    "browser.http",
                    std::future::pending(),
                )))
            }
            None => None,
        },
    )
}

/// The `api` part of `stats`: the hub's counters, the HTTP listener's and the RAP
/// responder's.
fn api_stats(
    hub: Arc<Hub>,
    http: Arc<nbdgm_http::ConnLimiter>,
    rap: Arc<crate::rap_server::Rap>,
) -> Arc<dyn Fn() -> serde_json::Value + Send + Sync> {
    Arc::new(move || {
        let mut v = serde_json::to_value(hub.stats()).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("http".into(), serde_json::json!(http.snapshot()));
            o.insert("rap".into(), serde_json::json!(rap.snapshot()));
        }
        v
    })
}

/// Apply a reloaded configuration to every worker and to the dispatcher.
async fn reconfigure(
    new: &Config,
    handles: &[WorkerHandle],
    host: &[Ipv4Addr],
    own: &[Ipv4Net],
    dispatcher: &mut Dispatcher,
) {
    for h in handles {
        let Some(iface) = new
            .resolve_interfaces()
            .ok()
            .and_then(|l| l.into_iter().find(|i| i.net.addr() == h.interface))
        else {
            warn!(interface = %h.interface, "reload: interface no longer configured; restart to remove it");
            continue;
        };
        let cmd = Command::Reconfigure {
            node: Box::new(node_config(new, &iface, host)),
            door: door(new, own),
            names: new.names(),
            apps: Box::new(apps_config(new, &iface)),
        };
        if h.tx.send(cmd).await.is_err() {
            error!(interface = %h.interface, "worker is gone");
        }
    }
    if let Ok(id) = identity(new) {
        dispatcher.set_identity(id);
    }
    info!("configuration reloaded");
}

/// Ask every worker to release its names and stop; wait up to 5 s for each.
async fn shutdown_workers(handles: &[WorkerHandle]) {
    let mut waits = Vec::new();
    for h in handles {
        let (done, wait) = oneshot::channel();
        if h.tx.send(Command::Shutdown { done }).await.is_ok() {
            waits.push(wait);
        }
    }
    for w in waits {
        let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
    }
}

fn reload(opts: &ServeOptions, current: &Config) -> Result<Config> {
    let new = load(opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    if new.ports != current.ports {
        bail!("ports cannot change on reload; restart the daemon");
    }
    if new.api.socket != current.api.socket {
        warn!("reload: api.socket changed; it takes effect at restart");
    }
    Ok(new)
}

/// Logging set-up moved to `nbdgm-runtime` (the CLI tools use it too).
pub use nbdgm_runtime::init_logging;

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn auto_access_admits_our_name_servers_and_nbdd() {
        let c = Config::from_str(
            "[node]\nnode_type = \"p\"\n[nbns]\nservers = [\"203.0.113.1\", \"198.51.100.7\"]\n\
             [nbdd]\naddress = \"203.0.113.9\"\n",
        )
        .unwrap();
        let own = [Ipv4Net::from_str("198.51.100.20/24").unwrap()];
        let d = door(&c, &own);
        for ip in [
            "203.0.113.1",
            "203.0.113.9",
            "198.51.100.7",
            "198.51.100.200",
        ] {
            let ip: Ipv4Addr = ip.parse().unwrap();
            assert!(d.name_acl.permits(ip) && d.datagram_acl.permits(ip), "{ip}");
        }
        assert!(!d.name_acl.permits("203.0.113.2".parse().unwrap()));
        // An explicit list is taken as it is.
        let c = Config::from_str(
            "[nbns]\nservers = [\"203.0.113.1\"]\n[access]\nname_service = { allow = [\"10.0.0.0/8\"] }\n",
        )
        .unwrap();
        let d = door(&c, &own);
        assert!(!d.name_acl.permits("203.0.113.1".parse().unwrap()));
        assert!(d.datagram_acl.permits("203.0.113.1".parse().unwrap()));
        assert_eq!(d.rx_moderation, Duration::from_micros(50), "the default");
    }

    #[test]
    fn receive_moderation_comes_from_limits() {
        let own = [Ipv4Net::from_str("198.51.100.20/24").unwrap()];
        let c = Config::from_str("[limits]\nrx_moderation_us = 200\n").unwrap();
        assert_eq!(door(&c, &own).rx_moderation, Duration::from_micros(200));
        let c = Config::from_str("[limits]\nrx_moderation_us = 0\n").unwrap();
        assert!(door(&c, &own).rx_moderation.is_zero());
    }

    /// Issue 17 §5: no sending browser role on interfaces found automatically unless
    /// `[browser] auto_interfaces`; `[[interface]]` ones take them as configured.
    #[test]
    fn browser_roles_only_on_named_interfaces_unless_asked() {
        let roles = "[browser]\nannounce = true\nlocal_master = true\npreferred_master = true\n\
                     remote_announce = [{ address = \"203.0.113.255\" }]\n";
        let iface = "[[interface]]\naddress = \"198.51.100.10/24\"\n";
        let sends = |text: &str| {
            let b = browser_config(&Config::from_str(text).unwrap()).unwrap();
            (
                b.announce,
                b.potential_browser,
                b.preferred_master,
                !b.remote_announce.is_empty(),
            )
        };
        assert_eq!(sends(roles), (false, false, false, false));
        assert_eq!(sends(&format!("{iface}{roles}")), (true, true, true, true));
        assert_eq!(
            sends(&format!("{roles}auto_interfaces = true\n")),
            (true, true, true, true)
        );
        // Listening alone stays on everywhere.
        assert!(browser_config(&Config::default()).is_some());
        let c = Config::from_str(roles).unwrap();
        let w = c.interface_warnings(&[]);
        assert!(
            w.iter().any(|w| w.contains("browser.auto_interfaces")),
            "{w:?}"
        );
        // A NAT'd container address is pointed at announce_address.
        let c = Config::from_str("[[interface]]\naddress = \"172.17.0.2/16\"\n").unwrap();
        let served = c.resolve_interfaces().unwrap();
        let w = c.interface_warnings(&served);
        assert!(
            w.iter()
                .any(|w| w.contains("172.17.0.0/16") && w.contains("announce_address")),
            "{w:?}"
        );
        let c = Config::from_str(
            "[[interface]]\naddress = \"172.17.0.2/16\"\nannounce_address = \"198.51.100.7\"\n",
        )
        .unwrap();
        assert!(c
            .interface_warnings(&c.resolve_interfaces().unwrap())
            .is_empty());
    }
}
