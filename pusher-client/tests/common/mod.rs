//! Shared helpers for the integration tests: where the local Sockudo server is,
//! a client configured for it, and a minimal Pusher-protocol WebSocket
//! subscriber used to observe what the server delivers.
#![allow(dead_code, unreachable_pub)]

pub mod js;

use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use pusher_client::{ChannelAuth, Client, Limits, UserAuth};
use serde_json::{Value, json};
use tokio::net::TcpStream as TokioTcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Where the test server listens and which app it hosts. Read from the same
/// variables, with the same defaults, as `.ci/sockudo.sh`.
#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub app_id: String,
    pub key: String,
    pub secret: String,
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The local Sockudo server; panics with set-up instructions when it does not answer.
pub fn sockudo() -> Server {
    let server = Server {
        host: var("SOCKUDO_HOST", "127.0.0.1"),
        port: var("SOCKUDO_PORT", "16001")
            .parse()
            .expect("SOCKUDO_PORT must be a port number"),
        app_id: var("SOCKUDO_APP_ID", "pusher-client-test"),
        key: var("SOCKUDO_KEY", "pusher-client-key"),
        secret: var("SOCKUDO_SECRET", "pusher-client-secret"),
    };
    let addr = format!("{}:{}", server.host, server.port);
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&addr.as_str())
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    assert!(
        reachable,
        "no Pusher-compatible server answers on {addr}.\n\
         These tests run against a real Sockudo server. Start one with\n\
         \n    bash .ci/sockudo.sh\n\n\
         (it installs protobuf-compiler and `cargo install sockudo --locked` if missing,\n\
         then starts Sockudo on SOCKUDO_HOST:SOCKUDO_PORT, default 127.0.0.1:16001,\n\
         with app SOCKUDO_APP_ID/SOCKUDO_KEY/SOCKUDO_SECRET)."
    );
    server
}

impl Server {
    /// A client for this server, with Sockudo's longer channel-name limit.
    pub fn client(&self) -> Client {
        self.builder().build().expect("valid client configuration")
    }

    pub fn builder(&self) -> pusher_client::ClientBuilder {
        Client::builder()
            .app_id(&self.app_id)
            .key(&self.key)
            .secret(&self.secret)
            .host(&self.host)
            .port(self.port)
            .use_tls(false)
            .timeout(Duration::from_secs(10))
            .limits(Limits::default().max_channel_name_len(200))
            .encryption_master_key_base64("y5SGF7Zy9CtZTHQQpuI96yWU5XCq9UT2WaiklvA4Cwg=")
    }

    pub fn ws_url(&self) -> String {
        format!(
            "ws://{}:{}/app/{}?protocol=7&client=rust-test&version=0.1.0",
            self.host, self.port, self.key
        )
    }
}

/// A channel name no other test uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}{}-{}",
        nanos % 1_000_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A received channel event.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub event: String,
    pub channel: Option<String>,
    pub data: Value,
}

/// A minimal Pusher protocol (version 7) WebSocket client.
pub struct Subscriber {
    ws: WebSocketStream<MaybeTlsStream<TokioTcpStream>>,
    pub socket_id: String,
}

impl Subscriber {
    pub async fn connect(server: &Server) -> Subscriber {
        let (ws, _) = tokio_tungstenite::connect_async(server.ws_url())
            .await
            .expect("WebSocket connection to the server");
        let mut sub = Subscriber {
            ws,
            socket_id: String::new(),
        };
        let hello = sub
            .next_raw(Duration::from_secs(5))
            .await
            .expect("connection_established");
        assert_eq!(hello.event, "pusher:connection_established", "{hello:?}");
        sub.socket_id = hello.data["socket_id"]
            .as_str()
            .expect("socket_id")
            .to_owned();
        sub
    }

    async fn send(&mut self, msg: Value) {
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("send frame");
    }

    /// Next frame, with `data` parsed when it is a JSON string. `None` on close or timeout.
    async fn next_raw(&mut self, timeout: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match frame {
                Ok(Message::Text(text)) => {
                    let v: Value = serde_json::from_str(&text).expect("JSON frame");
                    let data = match &v["data"] {
                        Value::String(s) => {
                            serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
                        }
                        other => other.clone(),
                    };
                    let event = v["event"].as_str().unwrap_or_default().to_owned();
                    if event == "pusher:ping" {
                        self.send(json!({"event": "pusher:pong", "data": {}})).await;
                        continue;
                    }
                    return Some(Received {
                        event,
                        channel: v["channel"].as_str().map(str::to_owned),
                        data,
                    });
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Subscribes and waits for the server's verdict: `Ok(())` on
    /// `subscription_succeeded`, `Err(frame)` on an error frame.
    pub async fn subscribe(
        &mut self,
        channel: &str,
        auth: Option<&ChannelAuth>,
    ) -> Result<(), Received> {
        let mut data = json!({ "channel": channel });
        if let Some(auth) = auth {
            data["auth"] = json!(auth.auth());
            if let Some(cd) = auth.channel_data() {
                data["channel_data"] = json!(cd);
            }
        }
        self.send(json!({ "event": "pusher:subscribe", "data": data }))
            .await;
        loop {
            let frame = self
                .next_raw(Duration::from_secs(5))
                .await
                .expect("an answer to pusher:subscribe");
            match frame.event.as_str() {
                "pusher_internal:subscription_succeeded"
                    if frame.channel.as_deref() == Some(channel) =>
                {
                    return Ok(());
                }
                "pusher:error" | "pusher:subscription_error" => return Err(frame),
                _ => continue,
            }
        }
    }

    /// Signs in with a user authentication and subscribes to the user's
    /// server-to-user channel, as pusher-js does.
    pub async fn sign_in(&mut self, auth: &UserAuth, user_id: &str) -> Result<(), Received> {
        self.send(json!({
            "event": "pusher:signin",
            "data": { "auth": auth.auth(), "user_data": auth.user_data() }
        }))
        .await;
        loop {
            let frame = self
                .next_raw(Duration::from_secs(5))
                .await
                .expect("an answer to pusher:signin");
            match frame.event.as_str() {
                "pusher:signin_success" => break,
                "pusher:error" => return Err(frame),
                _ => continue,
            }
        }
        self.subscribe(&format!("#server-to-user-{user_id}"), None)
            .await
    }

    /// The next application event (skipping protocol frames), or `None` after `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.next_raw(left).await?;
            if frame.event.starts_with("pusher:") || frame.event.starts_with("pusher_internal:") {
                continue;
            }
            return Some(frame);
        }
    }

    /// Sends a client event (`client-...`) on a private or presence channel.
    pub async fn client_event(&mut self, channel: &str, event: &str, data: Value) {
        self.send(json!({ "event": event, "channel": channel, "data": data }))
            .await;
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Waits until the server closes the connection; true if it did within `timeout`.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(Message::Text(t)))) if t.contains("pusher:error") => {
                    // Sockudo announces the termination with an error frame first.
                    continue;
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }
}
