//! The monitor's HTTP listener: `/` (a server-rendered page: current state per check,
//! target and port, colour-coded, and a timeline of changes; every value HTML-escaped),
//! `/api/state` and `/api/changes` (JSON), `/metrics` (OpenMetrics) and `/healthz`.
//! Served by [`serve`]: capped connections, timeouts, `Host` check.

use crate::metrics::Metrics;
use crate::store::{ChangeRow, CurrentRow, Query as StoreQuery, Store};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::sync::{Arc, Mutex};

/// What the handlers need.
#[derive(Clone)]
pub struct WebState {
    pub store: Arc<Mutex<Store>>,
    pub metrics: Arc<Metrics>,
}

/// The routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/api/state", get(api_state))
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

async fn index(State(st): State<WebState>) -> Response {
    let r = with_store(&st, |s| {
        let cur = s.current(None)?;
        let ch = s.changes(&StoreQuery {
            limit: 200,
            ..StoreQuery::default()
        })?;
        Ok((cur, ch))
    })
    .await;
    match r {
        Ok((cur, ch)) => Html(render(&cur, &ch)).into_response(),
        Err(r) => r,
    }
}

fn class_of(row: &CurrentRow) -> &'static str {
    match row.value.as_str() {
        _ if row.bad => "bad",
        "ambiguous" => "ambiguous",
        _ => "ok",
    }
}

/// The page.
pub fn render(current: &[CurrentRow], changes: &[ChangeRow]) -> String {
    let mut h = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"30\">\
         <title>nbdgm monitor</title><style>\
         body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}\
         td,th{border:1px solid #999;padding:2px 6px;text-align:left}\
         .ok{background:#c8f0c8}.bad{background:#f6b3b3}.ambiguous{background:#f8e3a0}\
         li.bad{color:#a00}</style></head><body>\n<h1>nbdgm monitor</h1>\n",
    );
    h.push_str(
        "<h2>Current state</h2>\n<table id=\"state\"><thead><tr><th>check</th><th>target</th>\
         <th>port</th><th>state</th><th>expected</th><th>since</th><th>last probe</th></tr>\
         </thead><tbody>\n",
    );
    if current.is_empty() {
        h.push_str("<tr><td colspan=\"7\">no confirmed state yet</td></tr>\n");
    }
    for r in current {
        h.push_str(&format!(
            "<tr class=\"{cls}\" data-state=\"{v}\"><td>{c}</td><td>{t}</td><td>{p}</td>\
             <td class=\"state\">{v}</td><td>{e}</td><td>{s}</td><td>{l}</td></tr>\n",
            cls = class_of(r),
            c = escape(&r.check),
            t = escape(&r.target),
            p = escape(&r.port),
            v = escape(&r.value),
            e = escape(&r.expected),
            s = escape(&r.since),
            l = escape(&format!(
                "{} {}",
                r.last_state.as_deref().unwrap_or("-"),
                r.last_seen.as_deref().unwrap_or("")
            )),
        ));
    }
    h.push_str("</tbody></table>\n<h2>Timeline</h2>\n<ol id=\"timeline\">\n");
    for c in changes {
        h.push_str(&format!(
            "<li class=\"{cls}\"><time>{ts}</time> {ck} {t} {p}: {o} &rarr; {n}{k}{m}</li>\n",
            cls = if c.bad { "bad" } else { "ok" },
            ts = escape(&c.ts),
            ck = escape(&c.check),
            t = escape(&c.target),
            p = escape(&c.port),
            o = escape(c.old.as_deref().unwrap_or("(none)")),
            n = escape(&c.new),
            k = c
                .kind
                .as_deref()
                .map(|k| format!(" <b>{}</b>", escape(k)))
                .unwrap_or_default(),
            m = if c.in_maintenance {
                " (maintenance)"
            } else {
                ""
            },
        ));
    }
    h.push_str("</ol>\n</body></html>\n");
    h
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
        let row = CurrentRow {
            check: "<script>".into(),
            target: "198.51.100.1".into(),
            port: "137/udp".into(),
            value: "open".into(),
            seq: 1,
            since: "t".into(),
            expected: "closed".into(),
            bad: true,
            last_state: None,
            last_seen: None,
        };
        let page = render(&[row], &[]);
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("class=\"bad\""));
    }
}
