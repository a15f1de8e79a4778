//! The built-in emulator of the Kota, Noyo and Invisible Collector APIs.
//!
//! One HTTP server serves the three APIs under `/kota`, `/noyo` and `/ic`,
//! plus a control surface under `/_sandbox` (faults, stats, reset). Tests
//! start it in-process on `127.0.0.1:0` with [`start`]; the CLI runs it as its
//! own process with [`serve_until_signal`]. The behaviour it promises
//! (statuses, eligibility rules, Noyo progression, fault semantics) is
//! documented in `src/sandbox/README.md`.

mod control;
mod faults;
mod http;
mod ic;
mod kota;
mod noyo;
mod routes;
mod server;
mod stats;
mod store;
mod validate;
mod world;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{FaultConfig, FaultPlan};

/// Any Kota key starting with `pk_test_` is accepted; this is the one to use.
pub const SANDBOX_KOTA_KEY: &str = "pk_test_sandbox";
/// The Noyo client id the sandbox accepts by default.
pub const SANDBOX_NOYO_CLIENT_ID: &str = "sandbox-client";
/// The Noyo client secret the sandbox accepts by default.
pub const SANDBOX_NOYO_CLIENT_SECRET: &str = "sandbox-secret";
/// Invisible Collector accepts exactly the tokens starting with `ic_test_`.
pub const SANDBOX_IC_TOKEN: &str = "ic_test_sandbox";

/// The environment that points benefits-sync at a sandbox serving on
/// `base` (`http://IP:PORT`) with its default credentials: for tests,
/// benchmarks and anyone driving a `benefits-sync sandbox` process.
pub fn client_env(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KOTA_API_URL", format!("{base}/kota")),
        ("KOTA_API_KEY", SANDBOX_KOTA_KEY.into()),
        ("NOYO_API_URL", format!("{base}/noyo")),
        ("NOYO_TOKEN_URL", format!("{base}/noyo/auth/public/token")),
        ("NOYO_CLIENT_ID", SANDBOX_NOYO_CLIENT_ID.into()),
        ("NOYO_CLIENT_SECRET", SANDBOX_NOYO_CLIENT_SECRET.into()),
        ("IC_API_URL", format!("{base}/ic")),
        ("IC_API_TOKEN", SANDBOX_IC_TOKEN.into()),
    ]
}

/// How a sandbox is started.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Address to listen on; port 0 picks a free port (see [`Sandbox::addr`]).
    pub listen: SocketAddr,
    /// SQLite file holding the remote objects across restarts; `None` keeps
    /// them in memory only.
    pub data: Option<PathBuf>,
    /// Faults applied to every vendor route from the start; replaceable at
    /// run time with `PUT /_sandbox/faults`.
    pub faults: FaultConfig,
    /// Status Invisible Collector answers for a duplicate group name: 409
    /// (documented) or 422 (seen in the wild). Anything else is treated as 409.
    pub ic_duplicate_status: u16,
    /// Client id the Noyo token endpoint accepts.
    pub noyo_client_id: String,
    /// Client secret the Noyo token endpoint accepts.
    pub noyo_client_secret: String,
    /// Lifetime of a Noyo bearer token; tests set it low to exercise expiry.
    pub noyo_token_ttl: Duration,
    /// Time a Noyo group connection spends in each status before moving on;
    /// zero makes connections reach their final status at once.
    pub noyo_status_step: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data: None,
            faults: FaultConfig::default(),
            ic_duplicate_status: 409,
            noyo_client_id: SANDBOX_NOYO_CLIENT_ID.to_string(),
            noyo_client_secret: SANDBOX_NOYO_CLIENT_SECRET.to_string(),
            noyo_token_ttl: Duration::from_secs(3600),
            noyo_status_step: Duration::from_secs(2),
        }
    }
}

/// Why a sandbox could not start.
#[derive(thiserror::Error, Debug)]
pub enum SandboxError {
    /// The listen address could not be bound (in use, no permission...).
    #[error("sandbox cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The data file cannot be used; it is left untouched.
    #[error("sandbox data file {}: {message}", path.display())]
    Store {
        /// The data file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The configuration is invalid (a fault rate outside 0..=1...).
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
    /// Waiting for a shutdown signal failed.
    #[error("sandbox cannot install its signal handler: {0}")]
    Signal(#[source] std::io::Error),
}

/// A running sandbox. Dropping it stops accepting connections in the
/// background; call [`Sandbox::shutdown`] to also wait for in-flight requests
/// and the data file flush.
pub struct Sandbox {
    /// The bound address (the real port when `listen` asked for port 0).
    addr: SocketAddr,
    /// Sending `true` (or dropping it) tells the accept loop and every
    /// connection task to finish gracefully.
    shutdown_tx: watch::Sender<bool>,
    /// The accept loop; it ends after all connection tasks have ended.
    server: JoinHandle<()>,
    /// Shared state, kept to flush the store once the server has stopped.
    app: Arc<server::App>,
}

impl Sandbox {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, the root of every API.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL of the Kota API.
    pub fn kota_url(&self) -> String {
        format!("{}/kota", self.base_url())
    }

    /// Base URL of the Noyo API (paths below it start with `/api/v1`).
    pub fn noyo_url(&self) -> String {
        format!("{}/noyo", self.base_url())
    }

    /// The Noyo OAuth token endpoint.
    pub fn noyo_token_url(&self) -> String {
        format!("{}/noyo/auth/public/token", self.base_url())
    }

    /// Base URL of the Invisible Collector API.
    pub fn ic_url(&self) -> String {
        format!("{}/ic", self.base_url())
    }

    /// Stops accepting, lets in-flight requests finish, then flushes the
    /// data file.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        if let Err(e) = self.server.await {
            tracing::error!(error = %e, "sandbox accept loop failed");
        }
        self.app.close_store().await;
    }
}

/// Binds, loads the data file, spawns the server and returns at once.
pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
    let app = Arc::new(server::App::new(&config)?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| SandboxError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
        addr: config.listen,
        source,
    })?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // The accept loop: owns the listener and every connection task; it
    // returns once shutdown was asked and those tasks have drained.
    let server = tokio::spawn(server::accept_loop(listener, app.clone(), shutdown_rx));
    Ok(Sandbox {
        addr,
        shutdown_tx,
        server,
        app,
    })
}

/// Runs a sandbox until SIGINT or SIGTERM, for `benefits-sync sandbox`.
/// Prints `sandbox listening on http://IP:PORT` (one flushed line) first so
/// a parent process can read the port.
pub async fn serve_until_signal(config: SandboxConfig) -> Result<(), SandboxError> {
    let sandbox = start(config).await?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "sandbox listening on {}", sandbox.base_url());
        let _ = out.flush();
    }
    wait_for_signal().await?;
    sandbox.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> Result<(), SandboxError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(SandboxError::Signal)?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map_err(SandboxError::Signal),
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Result<(), SandboxError> {
    tokio::signal::ctrl_c().await.map_err(SandboxError::Signal)
}
