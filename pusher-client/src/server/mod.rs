//! An embedded, Pusher-compatible server for local development and tests
//! (feature `server`).
//!
//! [`LocalServer`] runs in the current Tokio runtime and speaks both sides of
//! Pusher Channels on one port, so that an application, its tests and an
//! unmodified `pusher-js` can run the whole flow without a Pusher account or
//! another service:
//!
//! * **WebSocket** at `/app/{key}` (protocol 7, what pusher-js speaks): public,
//!   `private-` (including `private-encrypted-`) and `presence-` channels with
//!   the same authorization signatures Pusher checks, presence member lists,
//!   user sign-in and `#server-to-user-` channels, client events (`client-*`)
//!   on private and presence channels, ping/pong in both directions and the
//!   activity timeout.
//! * **HTTP API**, signed and checked exactly like Pusher's: `POST
//!   /apps/{app_id}/events` (also what [`Client::send_to_user`] uses), `POST
//!   /apps/{app_id}/batch_events`, `GET /apps/{app_id}/channels`, `GET
//!   /apps/{app_id}/channels/{channel}`, `GET
//!   /apps/{app_id}/channels/{channel}/users` and `POST
//!   /apps/{app_id}/users/{user_id}/terminate_connections`.
//!
//! It keeps everything in memory and hosts one app. It is meant for one machine:
//! there is no TLS, no webhooks, no watchlists and no rate limiting.
//!
//! [`Client::send_to_user`]: crate::Client::send_to_user
//!
//! ```no_run
//! use pusher_client::server::{LocalServer, LocalServerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = LocalServer::start(LocalServerConfig::default()).await?;
//! // pusher-js: new Pusher(key, { wsHost: "127.0.0.1", wsPort: port, forceTLS: false, cluster: "mt1" })
//! println!("key {} on port {}", server.key(), server.addr().port());
//!
//! let client = server.client_builder().build()?;
//! client.trigger("orders", "order-created", &serde_json::json!({ "id": 42 })).await?;
//!
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod channels;
mod http_api;
mod protocol;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ClientBuilder;
use crate::config::Secret;
use channels::Registry;

/// How long [`LocalServer::shutdown`] waits for open WebSocket connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Settings of a [`LocalServer`].
///
/// ```
/// use pusher_client::server::LocalServerConfig;
///
/// let config = LocalServerConfig {
///     bind: "127.0.0.1:6001".parse().unwrap(),
///     ..LocalServerConfig::default()
/// };
/// assert_eq!(config.key, "local-key");
/// assert_eq!(config.max_payload_bytes, 10 * 1024);
/// ```
#[derive(Clone)]
pub struct LocalServerConfig {
    /// Where to listen (default `127.0.0.1:0`: a free port on the loopback interface).
    pub bind: SocketAddr,
    /// The app id of the hosted app (default `local-app`).
    pub app_id: String,
    /// The app key pusher-js connects with (default `local-key`).
    pub key: String,
    /// The app secret requests and channel authorizations are signed with
    /// (default: 32 random bytes, hex-encoded, new for every config, so that
    /// no other program on the machine can sign for the server; use
    /// [`LocalServer::client_builder`] to get a client that knows it). Never
    /// shown by `Debug`.
    pub secret: String,
    /// The largest event `data` accepted, in bytes (default 10 KiB, like Pusher).
    pub max_payload_bytes: usize,
}

/// A fresh random app secret.
fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

impl Default for LocalServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            app_id: "local-app".to_owned(),
            key: "local-key".to_owned(),
            secret: random_secret(),
            max_payload_bytes: 10 * 1024,
        }
    }
}

impl fmt::Debug for LocalServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalServerConfig")
            .field("bind", &self.bind)
            .field("app_id", &self.app_id)
            .field("key", &self.key)
            .field("secret", &"[redacted]")
            .field("max_payload_bytes", &self.max_payload_bytes)
            .finish()
    }
}

/// Connection liveness: when the server pings an idle connection, and how long
/// it then waits for any answer before closing it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) activity_timeout: Duration,
    pub(crate) pong_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            activity_timeout: Duration::from_secs(120),
            pong_timeout: Duration::from_secs(30),
        }
    }
}

/// What every connection and request handler shares.
pub(crate) struct State {
    pub(crate) app_id: String,
    pub(crate) key: String,
    pub(crate) secret: Secret,
    pub(crate) max_payload_bytes: usize,
    pub(crate) timing: Timing,
    pub(crate) registry: Registry,
    /// Number of open WebSocket connections.
    pub(crate) connections: watch::Sender<usize>,
    /// Becomes `true` when the server stops.
    pub(crate) stop: watch::Sender<bool>,
    socket_prefix: u64,
    socket_counter: AtomicU64,
}

impl State {
    /// A fresh socket id, `N.N` like Pusher's.
    pub(crate) fn next_socket_id(&self) -> String {
        let n = self.socket_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}.{}", self.socket_prefix, n)
    }
}

/// A running embedded Pusher-compatible server. See the [module docs](self).
///
/// Dropping it stops the server in the background; [`shutdown`](Self::shutdown)
/// stops it and waits until every connection is closed.
pub struct LocalServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalServer")
            .field("addr", &self.addr)
            .field("app_id", &self.state.app_id)
            .field("key", &self.state.key)
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl LocalServer {
    /// Binds `config.bind` and starts serving in the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// The I/O error of binding the address (for example, the port is in use).
    pub async fn start(config: LocalServerConfig) -> std::io::Result<LocalServer> {
        Self::start_with(config, Timing::default()).await
    }

    pub(crate) async fn start_with(
        config: LocalServerConfig,
        timing: Timing,
    ) -> std::io::Result<LocalServer> {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let socket_prefix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::from(d.subsec_nanos()) % 1_000_000_000 + 1);
        let state = Arc::new(State {
            app_id: config.app_id,
            key: config.key,
            secret: Secret::new(config.secret),
            max_payload_bytes: config.max_payload_bytes,
            timing,
            registry: Registry::default(),
            connections: watch::Sender::new(0),
            stop: watch::Sender::new(false),
            socket_prefix,
            socket_counter: AtomicU64::new(1),
        });
        let router = http_api::router(state.clone()).merge(protocol::router(state.clone()));
        let mut stopped = state.stop.subscribe();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "local Pusher server stopped");
            }
        });
        tracing::info!(
            %addr,
            app_id = %state.app_id,
            key = %state.key,
            "local Pusher-compatible server listening"
        );
        Ok(LocalServer {
            addr,
            state,
            task: Some(task),
        })
    }

    /// The address the server listens on (with the actual port when bound to port 0).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The app id of the hosted app.
    #[must_use]
    pub fn app_id(&self) -> &str {
        &self.state.app_id
    }

    /// The app key pusher-js connects with.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.state.key
    }

    /// A [`ClientBuilder`] set up for this server: app id, key and secret, host
    /// `127.0.0.1` (or the bound address), the port, no TLS. `.build()` gives a
    /// [`Client`](crate::Client) that triggers through it.
    ///
    /// ```no_run
    /// # async fn run(server: pusher_client::server::LocalServer) -> pusher_client::Result<()> {
    /// let client = server.client_builder().build()?;
    /// client.trigger("news", "published", &serde_json::json!({ "id": 1 })).await?;
    /// # Ok(()) }
    /// ```
    pub fn client_builder(&self) -> ClientBuilder {
        let host = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
            IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        crate::Client::builder()
            .app_id(&self.state.app_id)
            .key(&self.state.key)
            .secret(self.state.secret.expose())
            .host(host)
            .port(self.addr.port())
            .use_tls(false)
    }

    /// The number of open WebSocket connections.
    #[must_use]
    pub fn connections(&self) -> usize {
        *self.state.connections.borrow()
    }

    /// Stops accepting connections and requests, closes every WebSocket
    /// connection (close code 4200, so pusher-js reconnects when a server comes
    /// back) and waits for them to finish.
    pub async fn shutdown(mut self) {
        self.state.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let mut open = self.state.connections.subscribe();
        if tokio::time::timeout(SHUTDOWN_GRACE, open.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::warn!(
                connections = self.connections(),
                "local Pusher server: connections still open after shutdown"
            );
        }
        tracing::info!(addr = %self.addr, "local Pusher server stopped");
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.state.stop.send_replace(true);
    }
}

#[cfg(test)]
mod config_tests {
    use super::LocalServerConfig;

    #[test]
    fn default_secrets_are_random_and_hidden() {
        let (a, b) = (LocalServerConfig::default(), LocalServerConfig::default());
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), 64);
        assert!(!format!("{a:?}").contains(&a.secret));
    }
}
