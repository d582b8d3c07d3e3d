//! The signup server: HTTP API, workflow engine, Pusher notifications and
//! the page, on embedded defaults (SQLite, an embedded Pusher-compatible
//! server) unless configured otherwise.
//!
//! ```text
//! cargo run -p examples
//! ```
//!
//! Environment: `SIGNUP_ADDR` (127.0.0.1:3000), `WORKFLOW_DATABASE_URL`
//! (sqlite://signup.db), `SIGNUP_SLEEP` (5s), `SIGNUP_FAILURE_RATE` (0.3),
//! `LOCAL_PUSHER_ADDR` (127.0.0.1:6001) for the embedded server, or
//! `PUSHER_URL` / `PUSHER_APP_ID`, `PUSHER_KEY`, `PUSHER_SECRET` with
//! `PUSHER_CLUSTER` or `PUSHER_HOST`/`PUSHER_PORT`/`PUSHER_USE_TLS` for Pusher or a
//! self-hosted server. `SIGNUP_TOKEN_SECRET` keys the tokens that guard
//! the users' private channels (by default a random one kept in
//! `.signup-token-secret`).

use std::path::PathBuf;
use std::process::ExitCode;

use examples::config::{Config, PusherTarget};
use examples::http::{AppState, router};
use examples::notifier::Services;
use pusher_client::server::{LocalServer, LocalServerConfig};
use serde_json::{Value, json};
use workflow_core::{Engine, store};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,workflow_core=info".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signup-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How pusher-js reaches a server at this base URL.
fn page_config(base_url: &str, key: &str) -> Value {
    let (scheme, rest) = base_url.split_once("://").unwrap_or(("https", base_url));
    let host_port = rest.split('/').next().unwrap_or(rest);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().unwrap_or(443)),
        None => (
            host_port.to_owned(),
            if scheme == "http" { 80 } else { 443 },
        ),
    };
    if let Some(cluster) = host
        .strip_prefix("api-")
        .and_then(|h| h.strip_suffix(".pusher.com"))
    {
        return json!({ "key": key, "cluster": cluster });
    }
    let tls = scheme == "https";
    json!({
        "key": key,
        "cluster": "local",
        "wsHost": host,
        "wsPort": port,
        "wssPort": port,
        "forceTLS": tls,
        "enabledTransports": if tls { json!(["wss"]) } else { json!(["ws"]) },
    })
}

/// The key of the tokens that guard users' private channels: at least 32
/// bytes, from `SIGNUP_TOKEN_SECRET` or from a file of the working directory
/// that only its owner may read (made on first start).
fn token_secret() -> Result<Vec<u8>, BoxError> {
    if let Ok(secret) = std::env::var("SIGNUP_TOKEN_SECRET") {
        if secret.len() < 32 {
            return Err("SIGNUP_TOKEN_SECRET must be at least 32 characters".into());
        }
        return Ok(secret.into_bytes());
    }
    let path = PathBuf::from(".signup-token-secret");
    match std::fs::read(&path) {
        Ok(existing) if existing.len() >= 32 => return Ok(existing),
        Ok(_) => {
            return Err(format!(
                "{} is shorter than 32 bytes; delete it to make a new one (signed-in pages then \
                 need to sign up again)",
                path.display()
            )
            .into());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("could not read {}: {e}", path.display()).into()),
    }
    let secret: [u8; 32] = rand::random();
    let encoded = hex::encode(secret).into_bytes();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .map_err(|e| format!("could not create {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, &encoded)
        .map_err(|e| format!("could not write {}: {e}", path.display()))?;
    Ok(encoded)
}

fn local_pusher_js() -> Option<PathBuf> {
    let candidates = [
        std::env::var("PUSHER_JS_PATH").ok().map(PathBuf::from),
        Some(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("web/node_modules/pusher-js/dist/web/pusher.min.js"),
        ),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn run() -> Result<(), BoxError> {
    let config = Config::from_env()?;

    let (pusher, local_server) = match config.pusher {
        PusherTarget::External => {
            let client = pusher_client::Client::from_env()?;
            println!(
                "pusher: {} (app {}) from PUSHER_* settings",
                client.base_url(),
                client.app_id()
            );
            (client, None)
        }
        PusherTarget::Embedded(addr) => {
            let server = LocalServer::start(LocalServerConfig {
                bind: addr,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("could not start the embedded Pusher server on {addr}: {e}"))?;
            let client = server.client_builder().build()?;
            println!(
                "pusher: embedded Pusher-compatible server on {} (app {}, key {}); set PUSHER_URL to use Pusher",
                server.addr(),
                server.app_id(),
                server.key()
            );
            (client, Some(server))
        }
    };
    let page = page_config(pusher.base_url(), pusher.key());
    let services =
        Services::new(pusher, config.sleep, config.failure_rate, &token_secret()?).install();

    let store = store::open_from_url(&config.store_url).await?;
    println!("store: {}", config.store_url);
    let engine = Engine::builder().shared_store(store).build().await?;

    let pusher_js = local_pusher_js();
    match &pusher_js {
        Some(path) => println!("pusher-js: served from {}", path.display()),
        None => println!(
            "pusher-js: not installed locally (npm ci --prefix examples/web); the page loads it from {}",
            examples::http::PUSHER_JS_CDN
        ),
    }
    let state = AppState {
        engine: engine.clone(),
        services,
        page_config: page,
        pusher_js,
    };
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| format!("could not listen on {}: {e}", config.addr))?;
    println!(
        "signup server: http://{} (sleep {:?}, welcome email failure rate {})",
        listener.local_addr()?,
        config.sleep,
        config.failure_rate
    );
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    println!("shutting down");
    engine.shutdown().await;
    if let Some(server) = local_server {
        server.shutdown().await;
    }
    Ok(())
}
