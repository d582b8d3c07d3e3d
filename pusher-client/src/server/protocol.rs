//! The WebSocket side: Pusher Channels protocol 7, as pusher-js speaks it.
//!
//! Frames are JSON objects `{"event", "channel"?, "data"}`. The server's `data`
//! is a JSON-encoded string for channel events and `connection_established`,
//! and an object for `pusher:error`, as Pusher sends them.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State as AxumState};
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::Instrument;

use super::State;
use super::channels::{Member, Outbox};
use crate::signing::hmac_sha256_hex;
use crate::validation::{Limits, SERVER_TO_USER_PREFIX};

/// Frames queued for one connection before it counts as too slow and is closed.
const OUTBOX_CAPACITY: usize = 1024;

/// Channels one connection may be subscribed to at once.
const MAX_SUBSCRIPTIONS: usize = 1000;
/// Members of one presence channel, as on Pusher.
const MAX_PRESENCE_MEMBERS: usize = 100;
/// The largest `channel_data` of a presence member, as on Pusher.
const MAX_CHANNEL_DATA_BYTES: usize = 1024;

/// Close codes of the protocol (pusher-js decides from them whether to reconnect).
mod close {
    /// The app key is unknown: do not reconnect.
    pub(super) const APP_DOES_NOT_EXIST: u16 = 4001;
    /// The protocol version is not supported: do not reconnect.
    pub(super) const UNSUPPORTED_PROTOCOL: u16 = 4007;
    /// The connection cannot keep up: reconnect after a back-off.
    pub(super) const OVER_CAPACITY: u16 = 4100;
    /// Reconnect immediately (used when the server stops).
    pub(super) const RECONNECT: u16 = 4200;
    /// The client answered no ping: reconnect immediately.
    pub(super) const PONG_NOT_RECEIVED: u16 = 4201;
    /// The server terminated the connections of the signed-in user: do not reconnect.
    pub(super) const TERMINATED: u16 = 4009;
}

/// The WebSocket route, `/app/{key}`.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/app/{key}", get(upgrade))
        .with_state(state)
}

#[derive(Deserialize)]
struct ConnectParams {
    protocol: Option<String>,
}

async fn upgrade(
    AxumState(state): AxumState<Arc<State>>,
    Path(key): Path<String>,
    Query(params): Query<ConnectParams>,
    ws: WebSocketUpgrade,
) -> Response {
    // Room for the largest event plus its envelope and a presence channel_data.
    let max_message = state.max_payload_bytes.saturating_add(16 * 1024);
    ws.max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| async move {
            let refusal = if key != state.key {
                Some((
                    close::APP_DOES_NOT_EXIST,
                    format!("App key {key} does not exist"),
                ))
            } else {
                match params.protocol.as_deref().map(str::parse::<u32>) {
                    None | Some(Ok(5..=7)) => None,
                    Some(_) => Some((
                        close::UNSUPPORTED_PROTOCOL,
                        "Unsupported protocol version".to_owned(),
                    )),
                }
            };
            match refusal {
                Some((code, message)) => refuse(socket, code, message).await,
                None => Connection::new(state).run(socket).await,
            }
        })
}

/// Sends `pusher:error` and closes with the same code.
async fn refuse(mut socket: WebSocket, code: u16, message: String) {
    tracing::debug!(code, %message, "refusing WebSocket connection");
    let data = json!({ "code": code, "message": message });
    let _ = socket
        .send(Message::Text(frame_value("pusher:error", None, &data)))
        .await;
    let _ = socket.send(close_message(code, &message)).await;
}

fn close_message(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

#[derive(Serialize)]
struct Frame<'a, D: Serialize> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    data: &'a D,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

fn encode<D: Serialize>(frame: &Frame<'_, D>) -> Utf8Bytes {
    // Strings and JSON values always serialize.
    Utf8Bytes::from(serde_json::to_string(frame).unwrap_or_default())
}

/// A frame whose `data` is a string (channel events, protocol answers).
pub(crate) fn frame(event: &str, channel: Option<&str>, data: &str) -> Utf8Bytes {
    encode(&Frame {
        event,
        channel,
        data: &data,
        user_id: None,
    })
}

/// A frame whose `data` is a JSON value sent as is (`pusher:error`, client events).
fn frame_value(event: &str, channel: Option<&str>, data: &Value) -> Utf8Bytes {
    encode(&Frame {
        event,
        channel,
        data,
        user_id: None,
    })
}

/// A frame received from a client.
#[derive(Deserialize)]
struct Incoming {
    event: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
struct SubscribeData {
    channel: String,
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    channel_data: Option<String>,
}

#[derive(Deserialize)]
struct SigninData {
    auth: String,
    user_data: String,
}

#[derive(Deserialize)]
struct ChannelData {
    user_id: Value,
    #[serde(default)]
    user_info: Option<Value>,
}

/// `data` as an object: pusher-js sends objects, some clients JSON-encoded strings.
fn data_object(data: Value) -> Value {
    match data {
        Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        other => other,
    }
}

/// Why the connection loop ended.
enum End {
    /// The client closed the socket or it failed.
    Gone,
    /// The server closes with this code and reason.
    Close(u16, &'static str),
}

/// One client connection.
struct Connection {
    state: Arc<State>,
    socket_id: String,
    outbox: Outbox,
    frames: mpsc::Receiver<Utf8Bytes>,
    subscribed: HashSet<String>,
    /// The user this connection signed in as (`pusher:signin`).
    user_id: Option<String>,
    /// Notified when the signed-in user's connections are terminated.
    terminate: Arc<Notify>,
}

impl Connection {
    fn new(state: Arc<State>) -> Self {
        let (tx, frames) = mpsc::channel(OUTBOX_CAPACITY);
        let socket_id = state.next_socket_id();
        Self {
            state,
            socket_id,
            outbox: Outbox {
                frames: tx,
                overflow: Arc::new(Notify::new()),
            },
            frames,
            subscribed: HashSet::new(),
            user_id: None,
            terminate: Arc::new(Notify::new()),
        }
    }

    async fn run(mut self, mut socket: WebSocket) {
        let span = tracing::debug_span!("pusher_connection", socket_id = %self.socket_id);
        async move {
            let state = self.state.clone();
            state.connections.send_modify(|n| *n += 1);
            tracing::debug!("connected");
            if let End::Close(code, reason) = self.serve(&mut socket).await {
                tracing::debug!(code, reason, "closing connection");
                let _ = socket.send(close_message(code, reason)).await;
            }
            for channel in std::mem::take(&mut self.subscribed) {
                state.registry.unsubscribe(&channel, &self.socket_id);
            }
            if let Some(user_id) = &self.user_id {
                state.registry.sign_out(user_id, &self.socket_id);
            }
            state.connections.send_modify(|n| *n = n.saturating_sub(1));
            tracing::debug!("disconnected");
        }
        .instrument(span)
        .await;
    }

    async fn serve(&mut self, socket: &mut WebSocket) -> End {
        let timing = self.state.timing;
        let established = json!({
            "socket_id": self.socket_id,
            "activity_timeout": timing.activity_timeout.as_secs().max(1),
        })
        .to_string();
        let hello = frame("pusher:connection_established", None, &established);
        if socket.send(Message::Text(hello)).await.is_err() {
            return End::Gone;
        }

        let mut stop = self.state.stop.subscribe();
        let overflow = self.outbox.overflow.clone();
        let terminate = self.terminate.clone();
        let mut last_activity = Instant::now();
        let mut pinged_at: Option<Instant> = None;
        loop {
            if *stop.borrow_and_update() {
                return End::Close(close::RECONNECT, "Server shutting down");
            }
            let deadline = match pinged_at {
                Some(at) => at + timing.pong_timeout,
                None => last_activity + timing.activity_timeout,
            };
            tokio::select! {
                incoming = socket.recv() => {
                    let text = match incoming {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {
                            last_activity = Instant::now();
                            pinged_at = None;
                            continue;
                        }
                        Some(Ok(Message::Close(_)) | Err(_)) | None => return End::Gone,
                    };
                    last_activity = Instant::now();
                    pinged_at = None;
                    for reply in self.handle(text.as_str()) {
                        if socket.send(Message::Text(reply)).await.is_err() {
                            return End::Gone;
                        }
                    }
                }
                Some(out) = self.frames.recv() => {
                    if socket.send(Message::Text(out)).await.is_err() {
                        return End::Gone;
                    }
                }
                () = overflow.notified() => {
                    tracing::warn!(socket_id = %self.socket_id, "connection too slow, closing it");
                    return End::Close(close::OVER_CAPACITY, "Over capacity");
                }
                () = terminate.notified() => {
                    return End::Close(close::TERMINATED, "Connection terminated by the server");
                }
                () = tokio::time::sleep_until(deadline) => {
                    if pinged_at.is_some() {
                        return End::Close(close::PONG_NOT_RECEIVED, "Pong reply not received");
                    }
                    let ping = frame("pusher:ping", None, "{}");
                    if socket.send(Message::Text(ping)).await.is_err() {
                        return End::Gone;
                    }
                    pinged_at = Some(Instant::now());
                }
                _ = stop.changed() => {}
            }
        }
    }

    /// Handles one text frame and returns the frames to answer with.
    fn handle(&mut self, text: &str) -> Vec<Utf8Bytes> {
        let incoming: Incoming = match serde_json::from_str(text) {
            Ok(incoming) => incoming,
            Err(e) => return vec![error(&format!("Invalid frame: {e}"))],
        };
        match incoming.event.as_str() {
            "pusher:ping" => vec![frame("pusher:pong", None, "{}")],
            "pusher:pong" => Vec::new(),
            "pusher:subscribe" => vec![self.subscribe(incoming.data)],
            "pusher:unsubscribe" => {
                let data = data_object(incoming.data);
                if let Some(channel) = data.get("channel").and_then(Value::as_str)
                    && self.subscribed.remove(channel)
                {
                    self.state.registry.unsubscribe(channel, &self.socket_id);
                    tracing::debug!(socket_id = %self.socket_id, channel, "unsubscribed");
                }
                Vec::new()
            }
            event if event.starts_with("client-") => self
                .client_event(&incoming)
                .err()
                .map(|message| vec![error(&message)])
                .unwrap_or_default(),
            "pusher:signin" => vec![self.sign_in(incoming.data)],
            other => {
                tracing::debug!(socket_id = %self.socket_id, event = other, "ignoring unknown event");
                vec![error(&format!("Unsupported event `{other}`"))]
            }
        }
    }

    fn subscribe(&mut self, data: Value) -> Utf8Bytes {
        let data: SubscribeData = match serde_json::from_value(data_object(data)) {
            Ok(data) => data,
            Err(e) => return error(&format!("Invalid pusher:subscribe data: {e}")),
        };
        let channel = data.channel.as_str();
        let refuse = |status: u16, kind: &str, message: String| {
            tracing::debug!(channel, %message, "subscription refused");
            let data = json!({ "type": kind, "error": message, "status": status });
            frame_value("pusher:subscription_error", Some(channel), &data)
        };
        if let Err(e) = Limits::default().check_channel(channel) {
            return refuse(400, "InvalidChannel", e.to_string());
        }
        if !self.subscribed.contains(channel) && self.subscribed.len() >= MAX_SUBSCRIPTIONS {
            return refuse(
                429,
                "LimitReached",
                format!("A connection may subscribe to at most {MAX_SUBSCRIPTIONS} channels"),
            );
        }
        if let Some(user_id) = channel.strip_prefix(SERVER_TO_USER_PREFIX) {
            if self.user_id.as_deref() != Some(user_id) {
                return refuse(
                    403,
                    "AuthError",
                    format!("Cannot subscribe to {channel}: not signed in as user {user_id}"),
                );
            }
        } else if channel.starts_with('#') {
            return refuse(
                400,
                "InvalidChannel",
                format!("Cannot subscribe to {channel}"),
            );
        }
        let is_presence = channel.starts_with("presence-");
        let mut member = None;
        if is_presence || channel.starts_with("private-") {
            let channel_data = data.channel_data.as_deref().filter(|_| is_presence);
            if channel_data.is_some_and(|d| d.len() > MAX_CHANNEL_DATA_BYTES) {
                return refuse(
                    400,
                    "LimitReached",
                    format!("channel_data is larger than {MAX_CHANNEL_DATA_BYTES} bytes"),
                );
            }
            if is_presence
                && self.state.registry.occupancy(channel).user_count >= MAX_PRESENCE_MEMBERS
            {
                return refuse(
                    429,
                    "LimitReached",
                    format!("{channel} already has {MAX_PRESENCE_MEMBERS} members"),
                );
            }
            if let Err(message) = self.check_auth(channel, data.auth.as_deref(), channel_data) {
                return refuse(401, "AuthError", message);
            }
            if is_presence {
                match channel_data.map(serde_json::from_str::<ChannelData>) {
                    Some(Ok(cd)) => {
                        let user_id = match cd.user_id {
                            Value::String(s) if !s.is_empty() => s,
                            Value::Number(n) => n.to_string(),
                            _ => {
                                return refuse(
                                    400,
                                    "AuthError",
                                    "channel_data.user_id must be a non-empty string".to_owned(),
                                );
                            }
                        };
                        member = Some(Member {
                            user_id,
                            user_info: cd.user_info,
                        });
                    }
                    Some(Err(e)) => {
                        return refuse(400, "AuthError", format!("Invalid channel_data: {e}"));
                    }
                    None => {
                        return refuse(
                            400,
                            "AuthError",
                            "Presence channels need channel_data".to_owned(),
                        );
                    }
                }
            }
        }
        let succeeded =
            self.state
                .registry
                .subscribe(channel, &self.socket_id, &self.outbox, member);
        self.subscribed.insert(data.channel.clone());
        tracing::debug!(socket_id = %self.socket_id, channel, "subscribed");
        frame(
            "pusher_internal:subscription_succeeded",
            Some(channel),
            &succeeded,
        )
    }

    /// `pusher:signin`: checks `auth` = `key:HMAC_SHA256(secret,
    /// "socket_id::user::user_data")` and remembers the user, who may then
    /// subscribe to their `#server-to-user-` channel.
    fn sign_in(&mut self, data: Value) -> Utf8Bytes {
        let data: SigninData = match serde_json::from_value(data_object(data)) {
            Ok(data) => data,
            Err(e) => return error(&format!("Invalid pusher:signin data: {e}")),
        };
        let signed = format!("{}::user::{}", self.socket_id, data.user_data);
        if !self.signature_matches(&data.auth, &signed) {
            return error(&format!(
                "Invalid signature: Expected HMAC SHA256 hex digest of {signed}"
            ));
        }
        let user_id = serde_json::from_str::<Value>(&data.user_data)
            .ok()
            .and_then(|v| v.get("id")?.as_str().map(str::to_owned))
            .filter(|id| !id.is_empty());
        let Some(user_id) = user_id else {
            return error("user_data must be a JSON object with a non-empty string id");
        };
        if let Some(previous) = self.user_id.replace(user_id.clone()) {
            self.state.registry.sign_out(&previous, &self.socket_id);
        }
        self.state
            .registry
            .sign_in(&user_id, &self.socket_id, self.terminate.clone());
        tracing::debug!(socket_id = %self.socket_id, user_id, "signed in");
        let success = json!({ "user_data": data.user_data }).to_string();
        frame("pusher:signin_success", None, &success)
    }

    /// Whether `auth` is `key:hex(HMAC_SHA256(secret, signed))` for this app.
    fn signature_matches(&self, auth: &str, signed: &str) -> bool {
        let Some((key, signature)) = auth.split_once(':') else {
            return false;
        };
        let expected = hmac_sha256_hex(self.state.secret.expose(), signed);
        key == self.state.key
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                expected.as_bytes(),
                signature.as_bytes(),
            ))
    }

    /// Checks `auth` = `key:HMAC_SHA256(secret, "socket_id:channel[:channel_data]")`.
    fn check_auth(
        &self,
        channel: &str,
        auth: Option<&str>,
        channel_data: Option<&str>,
    ) -> Result<(), String> {
        let auth = auth.unwrap_or_default();
        let Some((key, _)) = auth.split_once(':') else {
            return Err(format!(
                "Auth value for subscription to {channel} is invalid: should be of format 'key:signature'"
            ));
        };
        if key != self.state.key {
            return Err(format!(
                "Invalid key in subscription auth data for {channel}: `{key}`"
            ));
        }
        let mut signed = format!("{}:{channel}", self.socket_id);
        if let Some(cd) = channel_data {
            signed.push(':');
            signed.push_str(cd);
        }
        if !self.signature_matches(auth, &signed) {
            return Err(format!(
                "Invalid signature: Expected HMAC SHA256 hex digest of {signed}"
            ));
        }
        Ok(())
    }

    /// Relays a `client-*` event to the channel's other connections, like
    /// Pusher does when client events are enabled.
    fn client_event(&self, incoming: &Incoming) -> Result<(), String> {
        let event = incoming.event.as_str();
        let channel = incoming.channel.as_deref().unwrap_or_default();
        if !(channel.starts_with("private-") || channel.starts_with("presence-"))
            || channel.starts_with("private-encrypted-")
        {
            return Err(format!(
                "Client event rejected: {event} can only be sent on private and presence channels"
            ));
        }
        Limits::default()
            .check_event_name(event)
            .map_err(|e| format!("Client event rejected: {e}"))?;
        let Some(user_id) = self.state.registry.subscriber(channel, &self.socket_id) else {
            return Err(format!(
                "Client event rejected: not subscribed to channel {channel}"
            ));
        };
        let size = incoming.data.to_string().len();
        if size > self.state.max_payload_bytes {
            return Err(format!(
                "Client event rejected: data is {size} bytes, the limit is {}",
                self.state.max_payload_bytes
            ));
        }
        let relayed = encode(&Frame {
            event,
            channel: Some(channel),
            data: &incoming.data,
            user_id: user_id.as_deref(),
        });
        self.state
            .registry
            .publish(channel, &relayed, Some(&self.socket_id));
        Ok(())
    }
}

/// `pusher:error` without a close code: the connection stays open.
fn error(message: &str) -> Utf8Bytes {
    frame_value(
        "pusher:error",
        None,
        &json!({ "code": null, "message": message }),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::{SinkExt, StreamExt};
    use serde_json::Value;
    use tokio_tungstenite::tungstenite::Message;

    use crate::server::{LocalServer, LocalServerConfig, Timing};

    type Ws = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    /// The next text frame as JSON, or the close code.
    async fn next(ws: &mut Ws) -> Result<Value, Option<u16>> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("a frame in time");
            match msg {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| f.code.into())),
                None | Some(Err(_)) => return Err(None),
                Some(Ok(_)) => {}
            }
        }
    }

    #[tokio::test]
    async fn idle_connections_are_pinged_and_closed_when_they_do_not_answer() {
        let timing = Timing {
            activity_timeout: Duration::from_millis(300),
            pong_timeout: Duration::from_millis(300),
        };
        let server = LocalServer::start_with(LocalServerConfig::default(), timing)
            .await
            .unwrap();
        let url = format!("ws://{}/app/{}?protocol=7", server.addr(), server.key());
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let hello = next(&mut ws).await.unwrap();
        assert_eq!(hello["event"], "pusher:connection_established");

        // An answered ping keeps the connection open.
        for _ in 0..2 {
            assert_eq!(next(&mut ws).await.unwrap()["event"], "pusher:ping");
            ws.send(Message::Text(r#"{"event":"pusher:pong","data":{}}"#.into()))
                .await
                .unwrap();
        }
        // An unanswered one closes it with 4201, so pusher-js reconnects.
        assert_eq!(next(&mut ws).await.unwrap()["event"], "pusher:ping");
        assert_eq!(next(&mut ws).await.unwrap_err(), Some(4201));
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_connection_cannot_subscribe_to_unbounded_channels() {
        let server = LocalServer::start(LocalServerConfig::default())
            .await
            .unwrap();
        let url = format!("ws://{}/app/{}?protocol=7", server.addr(), server.key());
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        assert_eq!(
            next(&mut ws).await.unwrap()["event"],
            "pusher:connection_established"
        );
        for i in 0..=super::MAX_SUBSCRIPTIONS {
            let frame = format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"c-{i}"}}}}"#);
            ws.send(Message::Text(frame.into())).await.unwrap();
        }
        for _ in 0..super::MAX_SUBSCRIPTIONS {
            let reply = next(&mut ws).await.unwrap();
            assert_eq!(
                reply["event"], "pusher_internal:subscription_succeeded",
                "{reply}"
            );
        }
        let refused = next(&mut ws).await.unwrap();
        assert_eq!(refused["event"], "pusher:subscription_error", "{refused}");
        assert_eq!(
            refused["channel"],
            format!("c-{}", super::MAX_SUBSCRIPTIONS)
        );
        server.shutdown().await;
    }
}
