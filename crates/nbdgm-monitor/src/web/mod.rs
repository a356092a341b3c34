//! The monitor's HTTP listener (issue 15 §2): the dashboard `/` with its live fragment
//! `/fragment/overview`, the per-port history `/port`, status badges `/badge/{check}.svg`,
//! embedded assets `/assets/...`, `/api/state`, `/api/latest` and `/api/changes` (JSON), `/metrics`
//! (OpenMetrics) and `/healthz`. HTML comes from askama templates (`templates/`,
//! auto-escaped) under a strict Content-Security-Policy. Served by [`serve`]: capped
//! connections, timeouts, `Host` check.
//!
//! - [`page`]: the overview's view model (summary, groups, chips, filters, changes)
//! - [`timeline`]: the per-port page (24 h / 7 d bars, share closed, changes)
//! - [`badge`]: the SVG badge
//! - [`stamp`]: absolute and relative times

pub mod badge;
pub mod page;
pub mod stamp;
pub mod timeline;

use crate::metrics::Metrics;
use crate::store::{Query as StoreQuery, Store};
use crate::MonitorConfig;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::sync::{Arc, Mutex, RwLock};

/// The running configuration as the web pages see it (replaced on reload).
pub type SharedConfig = Arc<RwLock<Arc<MonitorConfig>>>;

/// What the handlers need.
#[derive(Clone)]
pub struct WebState {
    pub store: Arc<Mutex<Store>>,
    pub metrics: Arc<Metrics>,
    /// Checks and maintenance windows shown on the dashboard.
    pub config: SharedConfig,
}

impl WebState {
    fn config(&self) -> Arc<MonitorConfig> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Content-Security-Policy of every page: no inline script or style, nothing from elsewhere.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                       script-src 'self'; connect-src 'self'; base-uri 'none'; \
                       form-action 'self'; frame-ancestors 'none'";

const CSS: &str = include_str!("../../assets/app.css");
const JS: &str = include_str!("../../assets/app.js");

/// The routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/fragment/overview", get(fragment))
        .route("/port", get(port_page))
        .route("/badge/:file", get(badge_svg))
        .route(
            "/assets/app.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .route("/api/state", get(api_state))
        .route("/api/latest", get(api_latest))
        .route("/api/changes", get(api_changes))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

/// Serve `app` until `shutdown`: at most 64 connections and 8 per client address,
/// idle and slow connections timed out, accept errors backed off, and a `Host` other
/// than the listening address, `localhost` or `allowed_hosts` answered with 421.
pub fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    allowed_hosts: &[String],
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let hosts = match listener.local_addr() {
        Ok(a) => nbdgm_http::HostCheck::new(a, allowed_hosts),
        // Unknown address: names only.
        Err(_) => nbdgm_http::HostCheck::new(([0, 0, 0, 0], 0).into(), allowed_hosts),
    };
    let limiter = nbdgm_http::ConnLimiter::new(nbdgm_http::Limits::default());
    nbdgm_http::serve(listener, app, limiter, hosts, "monitor http", shutdown)
}

/// HTML-escape text.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

async fn with_store<T: Send + 'static>(
    st: &WebState,
    f: impl FnOnce(&mut Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    let store = st.store.clone();
    let r = tokio::task::spawn_blocking(move || {
        let mut s = store.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    })
    .await;
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()),
    }
}

#[derive(Deserialize, Default)]
struct ChangesParams {
    limit: Option<usize>,
    check: Option<String>,
    target: Option<String>,
    port: Option<String>,
    since: Option<String>,
}

fn json<T: serde::Serialize>(v: &T) -> Response {
    match serde_json::to_string(v) {
        Ok(s) => ([(header::CONTENT_TYPE, "application/json")], s).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn api_state(State(st): State<WebState>) -> Response {
    match with_store(&st, |s| s.current(None)).await {
        Ok(rows) => json(&rows),
        Err(r) => r,
    }
}

/// Every key's latest probe state with its evidence and verdict (`Store::latest`, the rows
/// of `nbdgm monitor status --format json`); `?check=` narrows to one check.
async fn api_latest(State(st): State<WebState>, Query(p): Query<LatestParams>) -> Response {
    match with_store(&st, move |s| s.latest(p.check.as_deref())).await {
        Ok(rows) => json(&rows),
        Err(r) => r,
    }
}

#[derive(Deserialize, Default)]
struct LatestParams {
    check: Option<String>,
}

async fn api_changes(State(st): State<WebState>, Query(p): Query<ChangesParams>) -> Response {
    let since = match p.since.as_deref().map(crate::parse_time) {
        Some(Err(e)) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        Some(Ok(t)) => Some(t),
        None => None,
    };
    let q = StoreQuery {
        check: p.check,
        target: p.target,
        port: p.port,
        since,
        until: None,
        limit: p.limit.unwrap_or(200).min(10_000),
    };
    match with_store(&st, move |s| s.changes(&q)).await {
        Ok(rows) => json(&rows),
        Err(r) => r,
    }
}

async fn metrics(State(st): State<WebState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
        .into_response()
}

/// A short version tag of the embedded assets, for cache-busting URLs.
pub fn asset_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        // FNV-1a of both assets.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in CSS.bytes().chain(JS.bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{:08x}", h as u32)
    })
}

fn asset(body: &'static str, ctype: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// An HTML response with the security headers; a template error is a 500.
fn html(r: askama::Result<String>) -> Response {
    match r {
        Ok(body) => {
            let mut resp = body.into_response();
            let h = resp.headers_mut();
            let v = |s: &'static str| HeaderValue::from_static(s);
            h.insert(header::CONTENT_TYPE, v("text/html; charset=utf-8"));
            h.insert(header::CONTENT_SECURITY_POLICY, v(CSP));
            h.insert(header::X_CONTENT_TYPE_OPTIONS, v("nosniff"));
            h.insert(header::REFERRER_POLICY, v("no-referrer"));
            h.insert(header::CACHE_CONTROL, v("no-store"));
            resp
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("template: {e}\n"),
        )
            .into_response(),
    }
}

async fn load_overview(st: &WebState, filter: page::Filter) -> Result<page::Overview, Response> {
    let (latest, changes) = with_store(st, |s| {
        let latest = s.latest(None)?;
        let changes = s.changes(&StoreQuery {
            limit: page::CHANGES_READ,
            ..StoreQuery::default()
        })?;
        Ok((latest, changes))
    })
    .await?;
    let cfg = st.config();
    Ok(page::Overview::build(
        &latest,
        &changes,
        &cfg,
        filter,
        chrono::Utc::now(),
    ))
}

async fn index(State(st): State<WebState>, Query(f): Query<page::Filter>) -> Response {
    match load_overview(&st, f).await {
        Ok(o) => html(page::DashboardPage::new(o).render()),
        Err(r) => r,
    }
}

async fn fragment(State(st): State<WebState>, Query(f): Query<page::Filter>) -> Response {
    match load_overview(&st, f).await {
        Ok(o) => html(page::OverviewFragment { o }.render()),
        Err(r) => r,
    }
}

async fn port_page(State(st): State<WebState>, Query(p): Query<timeline::PortParams>) -> Response {
    let (Some(check), Some(target), Some(port)) = (p.check, p.target, p.port) else {
        return (
            StatusCode::BAD_REQUEST,
            "check, target and port are required\n",
        )
            .into_response();
    };
    let cfg = st.config();
    let now = chrono::Utc::now();
    let (c, t, pt) = (check.clone(), target.clone(), port.clone());
    let r = with_store(&st, move |s| timeline::load(s, &c, &t, &pt, now)).await;
    match r {
        Ok(views) if views.is_empty() => {
            (StatusCode::NOT_FOUND, "no such check, target and port\n").into_response()
        }
        Ok(views) => html(timeline::PortPage::new(check, target, port, views, &cfg, now).render()),
        Err(r) => r,
    }
}

async fn badge_svg(State(st): State<WebState>, Path(file): Path<String>) -> Response {
    let Some(check) = file.strip_suffix(".svg").map(str::to_owned) else {
        return (StatusCode::NOT_FOUND, "badges end in .svg\n").into_response();
    };
    let known = st.config().check(&check).is_some();
    let c = check.clone();
    let rows = match with_store(&st, move |s| s.latest(None)).await {
        Ok(rows) => rows,
        Err(r) => return r,
    };
    match badge::Badge::of(&c, &rows, known) {
        None => (StatusCode::NOT_FOUND, "no such check\n").into_response(),
        Some(b) => match b.render() {
            Ok(svg) => (
                [
                    (header::CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-cache, max-age=0"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                svg,
            )
                .into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
