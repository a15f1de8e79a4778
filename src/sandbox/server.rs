//! The HTTP server: accept loop, one task per connection, and the request
//! pipeline (route, faults, handler, stats).
//!
//! Connections are served with hyper directly rather than through a router
//! because drop-after-commit needs to close the very connection a request
//! came on after its handler committed, without writing a byte: each
//! connection task owns a [`Notify`] the pipeline fires, and on it the task
//! drops the connection instead of letting hyper write the response.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::faults::{Decision, FaultConfig, Faults};
use super::http::{api_error, ic_error, kota_problem, noyo_error, Call, Reply};
use super::routes::{self, Api, Resolved};
use super::stats::Stats;
use super::world::World;
use super::{control, ic, kota, noyo, store, SandboxConfig, SandboxError};

/// Largest request body accepted; bigger ones get 413.
const MAX_BODY: usize = 1 << 20;
/// How long shutdown waits for in-flight requests before abandoning them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings fixed at start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// 409 or 422 for a duplicate IC group name.
    pub ic_duplicate_status: u16,
    /// Accepted Noyo client id.
    pub noyo_client_id: String,
    /// Accepted Noyo client secret.
    pub noyo_client_secret: String,
    /// Noyo token lifetime.
    pub noyo_token_ttl: Duration,
    /// Time per Noyo connection status.
    pub noyo_status_step: Duration,
}

/// State shared by every connection task.
pub struct App {
    /// Remote objects; one lock makes each request atomic.
    pub world: Mutex<World>,
    /// Fault plan and generator.
    pub faults: Mutex<Faults>,
    /// Request counters.
    pub stats: Mutex<Stats>,
    /// Live Noyo bearer tokens and their expiry (not persisted: a restarted
    /// Noyo forgets them and clients fetch new ones).
    pub tokens: Mutex<HashMap<String, Instant>>,
    /// Fixed settings.
    pub settings: Settings,
    /// The faults configured at start, restored by reset.
    pub startup_faults: FaultConfig,
}

/// Locks a mutex, ignoring poisoning: a panicking request must not take the
/// whole sandbox down with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl App {
    /// Opens the data file (if any) and builds the state.
    pub fn new(config: &SandboxConfig) -> Result<App, SandboxError> {
        config.faults.check().map_err(SandboxError::Config)?;
        let world = match &config.data {
            None => World::new(None),
            Some(path) => {
                let (store, rows) = store::open(path)?;
                let mut world = World::new(Some(store));
                world.load(rows).map_err(|message| SandboxError::Store {
                    path: path.clone(),
                    message,
                })?;
                world
            }
        };
        Ok(App {
            world: Mutex::new(world),
            faults: Mutex::new(Faults::new(config.faults.clone())),
            stats: Mutex::new(Stats::default()),
            tokens: Mutex::new(HashMap::new()),
            settings: Settings {
                ic_duplicate_status: config.ic_duplicate_status,
                noyo_client_id: config.noyo_client_id.clone(),
                noyo_client_secret: config.noyo_client_secret.clone(),
                noyo_token_ttl: config.noyo_token_ttl,
                noyo_status_step: config.noyo_status_step,
            },
            startup_faults: config.faults.clone(),
        })
    }

    /// Detaches the store and waits until it has committed everything.
    pub async fn close_store(&self) {
        let store = lock(&self.world).persist.store.take();
        if let Some(store) = store {
            if tokio::task::spawn_blocking(move || store.close())
                .await
                .is_err()
            {
                tracing::error!("sandbox store flush failed");
            }
        }
    }
}

/// Accepts connections until shutdown, then waits (bounded) for the
/// connection tasks, which finish their in-flight request and close.
pub async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // One task per connection; it ends when the client
                    // closes, a drop fault fires, or shutdown drains it.
                    conns.spawn(serve_conn(stream, app.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off
                    // instead of spinning.
                    tracing::warn!(error = %e, "sandbox accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("sandbox shutdown: abandoning connections still busy");
        conns.abort_all();
    }
}

async fn serve_conn(stream: TcpStream, app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let drop_now = Arc::new(Notify::new());
    let signal = drop_now.clone();
    let service = service_fn(move |req| handle(app.clone(), signal.clone(), req));
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut draining = false;
    if *shutdown.borrow_and_update() {
        conn.as_mut().graceful_shutdown();
        draining = true;
    }
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            // Dropping `conn` closes the socket; the pending response is
            // never written.
            _ = drop_now.notified() => break,
            _ = shutdown.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

fn method_name(m: &hyper::Method) -> &'static str {
    match *m {
        hyper::Method::GET => "GET",
        hyper::Method::POST => "POST",
        hyper::Method::PUT => "PUT",
        hyper::Method::DELETE => "DELETE",
        hyper::Method::PATCH => "PATCH",
        hyper::Method::HEAD => "HEAD",
        hyper::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

async fn handle(
    app: Arc<App>,
    drop_now: Arc<Notify>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let method = method_name(&parts.method);
    let path = parts.uri.path().to_string();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let api = Api::of_path(&path);
            return Ok(to_response(api_error(
                api,
                413,
                "payload_too_large",
                "Request body too large or unreadable.",
            )));
        }
    };
    let (route, params) = match routes::resolve(method, &path) {
        Resolved::Found(route, params) => (route, params),
        Resolved::WrongMethod(api) => {
            return Ok(unmatched(&app, api, method, 405, "Method not allowed."));
        }
        Resolved::NotFound(api) => {
            return Ok(unmatched(&app, api, method, 404, "No such route."));
        }
    };
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let call = Call {
        route,
        params: &params,
        query: &query,
        headers: &parts.headers,
        body: &body,
    };
    if route.api == Api::Control {
        return Ok(to_response(control::handle(&app, &call)));
    }
    if route.is_write() {
        lock(&app.stats).write_requests += 1;
    }
    let decision = lock(&app.faults).decide(route);
    let reply = match decision {
        Decision::RateLimited(secs) => {
            lock(&app.stats).faults.rate_limited_429 += 1;
            fault_reply(route.api, 429, "rate_limited", "Too many requests.")
                .with_header("retry-after", secs.to_string())
        }
        Decision::Fail(status) => {
            lock(&app.stats).faults.errors_5xx += 1;
            let (code, msg) = if status == 503 {
                ("service_unavailable", "Service temporarily unavailable.")
            } else {
                ("internal_error", "Internal server error.")
            };
            fault_reply(route.api, status, code, msg)
        }
        Decision::Proceed {
            latency,
            drop_after_commit,
        } => {
            if !latency.is_zero() {
                lock(&app.stats).faults.latency += 1;
                tokio::time::sleep(latency).await;
            }
            let reply = dispatch(&app, &call);
            if drop_after_commit && reply.is_success() {
                {
                    let mut stats = lock(&app.stats);
                    stats.faults.dropped_after_commit += 1;
                    stats.record(method, route.template, reply.status);
                }
                drop_now.notify_one();
                // The connection task drops this future with the connection.
                std::future::pending::<()>().await;
            }
            reply
        }
    };
    lock(&app.stats).record(method, route.template, reply.status);
    Ok(to_response(reply))
}

fn dispatch(app: &App, call: &Call) -> Reply {
    match call.route.api {
        Api::Kota => kota::handle(app, call),
        Api::Noyo => noyo::handle(app, call),
        Api::Ic => ic::handle(app, call),
        Api::Control => control::handle(app, call),
    }
}

fn fault_reply(api: Api, status: u16, kota_code: &str, message: &str) -> Reply {
    match api {
        Api::Kota => kota_problem(status, kota_code, message),
        Api::Ic => ic_error(status, message),
        Api::Noyo | Api::Control => noyo_error(status, message),
    }
}

fn unmatched(
    app: &App,
    api: Option<Api>,
    method: &'static str,
    status: u16,
    msg: &str,
) -> Response<Full<Bytes>> {
    if api != Some(Api::Control) {
        lock(&app.stats).record(method, "<unmatched>", status);
    }
    let code = if status == 404 {
        "not_found"
    } else {
        "method_not_allowed"
    };
    to_response(api_error(api, status, code, msg))
}

fn to_response(reply: Reply) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type);
    for (name, value) in &reply.headers {
        builder = builder.header(*name, value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|_| {
            let mut r = Response::new(Full::new(Bytes::from_static(b"{}")));
            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
}
