//! Driving unmodified pusher-js (under Node, through `tests/js/subscriber.js`)
//! from the tests: installing it, serving the auth endpoints it calls, and
//! reading what it reports.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use pusher_client::{Client, PresenceMember};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdout, Command};

/// The folder of the pinned npm packages and `subscriber.js`.
pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// Installs the pinned npm packages when they are missing. Tests of one binary
/// run in parallel threads: one `npm ci` at a time.
pub fn ensure_node_modules() {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = js_dir();
    if dir.join("node_modules/pusher-js/package.json").exists() {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "could not run `npm ci` in {}: {e}; install Node.js and npm",
                dir.display()
            )
        });
    assert!(status.success(), "`npm ci` failed in {}", dir.display());
}

/// Serves the endpoints an application gives pusher-js, answered with
/// `client`'s authorizations: `GET /auth?socket_id=..&channel_name=..`
/// (private channels; presence channels as `user_id`) and `GET
/// /user-auth?socket_id=..` (sign-in as `user_id`). Returns the port.
pub async fn serve_auth(client: Client, user_id: &str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let user_id = user_id.to_owned();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let client = client.clone();
            let user_id = user_id.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..len]).into_owned();
                let target = head.split(' ').nth(1).unwrap_or("/");
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let params: std::collections::HashMap<String, String> =
                    url::form_urlencoded::parse(query.as_bytes())
                        .into_owned()
                        .collect();
                let socket_id = params.get("socket_id").map_or("", String::as_str);
                let channel = params.get("channel_name").map_or("", String::as_str);
                let result = match path {
                    "/user-auth" => client
                        .authenticate_user(socket_id, &json!({ "id": user_id, "name": "Ada" }))
                        .map(|a| a.to_json()),
                    _ if channel.starts_with("presence-") => {
                        let member = PresenceMember::new(&user_id).info(json!({ "name": "Ada" }));
                        client
                            .authorize_presence_channel(socket_id, channel, &member)
                            .map(|a| a.to_json())
                    }
                    _ => client
                        .authorize_channel(socket_id, channel)
                        .map(|a| a.to_json()),
                };
                let (status, body) = match result {
                    Ok(json) => ("200 OK", json),
                    Err(e) => (
                        "403 Forbidden",
                        json!({ "error": e.to_string() }).to_string(),
                    ),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

/// What `subscriber.js` should do.
#[derive(Debug, Clone)]
pub struct PusherJsOptions {
    pub key: String,
    pub ws_host: String,
    pub ws_port: u16,
    /// Port of [`serve_auth`].
    pub auth_port: u16,
    pub channels: Vec<String>,
    /// Sign in through `/user-auth` first.
    pub sign_in: bool,
    /// Exit (status 0) after this many events; 0 runs until killed or timed out.
    pub expect_events: usize,
    pub timeout: Duration,
}

/// A running pusher-js client and the JSON lines it reports.
pub struct PusherJs {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl PusherJs {
    /// Starts `subscriber.js` under Node (installing pusher-js first if needed).
    pub fn spawn(options: &PusherJsOptions) -> PusherJs {
        ensure_node_modules();
        let mut command = Command::new("node");
        command
            .arg("subscriber.js")
            .current_dir(js_dir())
            .env("PUSHER_KEY", &options.key)
            .env("WS_HOST", &options.ws_host)
            .env("WS_PORT", options.ws_port.to_string())
            .env(
                "AUTH_URL",
                format!("http://127.0.0.1:{}/auth", options.auth_port),
            )
            .env("CHANNELS", options.channels.join(","))
            .env("EXPECT_EVENTS", options.expect_events.to_string())
            .env("TIMEOUT_MS", options.timeout.as_millis().to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if options.sign_in {
            command.env(
                "USER_AUTH_URL",
                format!("http://127.0.0.1:{}/user-auth", options.auth_port),
            );
        }
        let mut child = command
            .spawn()
            .expect("run `node` (install Node.js 18 or later)");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        PusherJs { child, lines }
    }

    /// The next report, or `None` when none comes within `timeout`.
    pub async fn try_next(&mut self, timeout: Duration) -> Option<Value> {
        let line = tokio::time::timeout(timeout, self.lines.next_line())
            .await
            .ok()?
            .expect("read pusher-js output")
            .expect("pusher-js exited early");
        Some(serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}")))
    }

    /// The next report; panics when none comes within 20 s.
    pub async fn next(&mut self) -> Value {
        self.try_next(Duration::from_secs(20))
            .await
            .expect("pusher-js reported in time")
    }

    /// Waits for `connected` and a `subscribed` report for each of `channels`
    /// (and `signed_in` when `sign_in`), returning the `subscribed` reports.
    /// Panics on anything else.
    pub async fn wait_ready(&mut self, channels: usize, sign_in: bool) -> Vec<Value> {
        let mut subscribed = Vec::new();
        let mut signed_in = !sign_in;
        while subscribed.len() < channels || !signed_in {
            let msg = self.next().await;
            match msg["type"].as_str() {
                Some("connected") => {}
                Some("signed_in") => signed_in = true,
                Some("subscribed") => subscribed.push(msg),
                _ => panic!("pusher-js could not subscribe or sign in: {msg}"),
            }
        }
        subscribed
    }

    /// Waits for the process to exit and returns whether it succeeded.
    pub async fn wait_success(mut self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .expect("pusher-js exited in time")
            .expect("wait for pusher-js")
            .success()
    }
}
