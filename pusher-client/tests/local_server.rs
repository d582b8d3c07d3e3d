//! The embedded server (`pusher_client::server`) against real clients: this
//! crate's `Client` triggers through its HTTP API, unmodified pusher-js (under
//! Node) and a raw protocol-7 WebSocket client receive.
//!
//! Needs `node` and `npm` for the pusher-js tests; `npm ci` runs in `tests/js`
//! when its `node_modules` is missing.

mod common;

use std::time::Duration;

use common::js::{PusherJs, PusherJsOptions, serve_auth};
use common::{Server, Subscriber, unique};
use futures::{SinkExt, StreamExt};
use pusher_client::server::{LocalServer, LocalServerConfig};
use pusher_client::signing::{signed_query, string_to_sign};
use pusher_client::{ChannelAttribute, ChannelsQuery, Client, Error, Event};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const SECRET: &str = "local-secret";
const MASTER_KEY: &str = "y5SGF7Zy9CtZTHQQpuI96yWU5XCq9UT2WaiklvA4Cwg=";
const USER_ID: &str = "local-user-1";

async fn start() -> LocalServer {
    LocalServer::start(LocalServerConfig {
        secret: SECRET.to_owned(),
        ..LocalServerConfig::default()
    })
    .await
    .expect("start the local server")
}

/// The shared test description of a server, for `common::Subscriber`.
fn described(server: &LocalServer) -> Server {
    Server {
        host: "127.0.0.1".to_owned(),
        port: server.addr().port(),
        app_id: server.app_id().to_owned(),
        key: server.key().to_owned(),
        secret: SECRET.to_owned(),
    }
}

fn pusher_js(server: &LocalServer, auth_port: u16, channels: &[&String]) -> PusherJsOptions {
    PusherJsOptions {
        key: server.key().to_owned(),
        ws_host: "127.0.0.1".to_owned(),
        ws_port: server.addr().port(),
        auth_port,
        channels: channels.iter().map(|c| (*c).clone()).collect(),
        sign_in: false,
        expect_events: 0,
        timeout: Duration::from_secs(30),
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn pusher_js_receives_public_private_encrypted_and_presence_events() {
    let server = start().await;
    let client = server
        .client_builder()
        .encryption_master_key_base64(MASTER_KEY)
        .build()
        .unwrap();
    let auth_port = serve_auth(client.clone(), USER_ID).await;

    let public = unique("js-public-");
    let private = unique("private-js-");
    let encrypted = unique("private-encrypted-js-");
    let presence = unique("presence-js-");
    let mut options = pusher_js(
        &server,
        auth_port,
        &[&public, &private, &encrypted, &presence],
    );
    options.expect_events = 4;
    let mut js = PusherJs::spawn(&options);

    for report in js.wait_ready(4, false).await {
        if report["channel"] == presence.as_str() {
            // pusher-js read the member list from subscription_succeeded.
            assert_eq!(report["me"], USER_ID, "{report}");
            assert_eq!(report["members"], 1, "{report}");
        }
    }
    assert_eq!(server.connections(), 1);

    // The HTTP API sees what pusher-js subscribed to.
    let users = client.users(&presence).await.unwrap();
    assert_eq!(
        users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        [USER_ID]
    );
    let list = client
        .channels(&ChannelsQuery::new().prefix("private-js-"))
        .await
        .unwrap();
    assert!(list.channels.contains_key(&private), "{list:?}");
    let info = client
        .channel(
            &presence,
            [
                ChannelAttribute::UserCount,
                ChannelAttribute::SubscriptionCount,
            ],
        )
        .await
        .unwrap();
    assert_eq!(info.occupied, Some(true));
    assert_eq!(info.user_count, Some(1));
    assert_eq!(info.subscription_count, Some(1));

    let response = client
        .trigger_event(
            &Event::json(
                [&public],
                "public-event",
                &json!({ "n": 1, "text": "hello public" }),
            )
            .unwrap()
            .info([ChannelAttribute::SubscriptionCount]),
        )
        .await
        .unwrap();
    assert_eq!(response.channels[&public].subscription_count, Some(1));
    client
        .trigger(&private, "private-event", &json!({ "n": 2 }))
        .await
        .unwrap();
    client
        .trigger(
            &encrypted,
            "secret-event",
            &json!({ "n": 3, "text": "sealed ✓" }),
        )
        .await
        .unwrap();
    client
        .trigger(&presence, "presence-event", &json!({ "n": 4 }))
        .await
        .unwrap();

    let mut got = std::collections::HashMap::new();
    while got.len() < 4 {
        let msg = js.next().await;
        assert_eq!(
            msg["type"], "event",
            "unexpected report from pusher-js: {msg}"
        );
        got.insert(msg["channel"].as_str().unwrap().to_owned(), msg);
    }
    assert_eq!(got[&public]["event"], "public-event");
    assert_eq!(
        got[&public]["data"],
        json!({ "n": 1, "text": "hello public" })
    );
    assert_eq!(got[&private]["event"], "private-event");
    assert_eq!(got[&private]["data"], json!({ "n": 2 }));
    // pusher-js decrypted with the shared secret of this crate's authorization.
    assert_eq!(
        got[&encrypted]["data"],
        json!({ "n": 3, "text": "sealed ✓" })
    );
    assert_eq!(got[&presence]["data"], json!({ "n": 4 }));

    assert!(js.wait_success(Duration::from_secs(5)).await);
    eventually("pusher-js is disconnected", || server.connections() == 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn batch_events_reach_a_protocol_client_and_socket_exclusion_works() {
    let server = start().await;
    let client = server.client_builder().build().unwrap();
    let channel = unique("batch-");
    let mut first = Subscriber::connect(&described(&server)).await;
    let mut second = Subscriber::connect(&described(&server)).await;
    first.subscribe(&channel, None).await.unwrap();
    second.subscribe(&channel, None).await.unwrap();

    let response = client
        .trigger_batch(&[
            pusher_client::BatchEvent::new(&channel, "one", r#"{"n":1}"#)
                .info([ChannelAttribute::SubscriptionCount]),
            pusher_client::BatchEvent::new(&channel, "two", r#"{"n":2}"#),
        ])
        .await
        .unwrap();
    assert_eq!(response.batch[0].subscription_count, Some(2));
    for sub in [&mut first, &mut second] {
        let one = sub.next_event(Duration::from_secs(5)).await.unwrap();
        assert_eq!((one.event.as_str(), &one.data), ("one", &json!({ "n": 1 })));
        assert_eq!(one.channel.as_deref(), Some(channel.as_str()));
        let two = sub.next_event(Duration::from_secs(5)).await.unwrap();
        assert_eq!(two.event, "two");
    }

    // The sender's own socket is left out.
    let event = Event::json([&channel], "not-for-first", &json!({}))
        .unwrap()
        .exclude_socket(&first.socket_id);
    client.trigger_event(&event).await.unwrap();
    let got = second.next_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.event, "not-for-first");
    assert_eq!(first.next_event(Duration::from_millis(300)).await, None);
    server.shutdown().await;
}

#[tokio::test]
async fn private_subscription_with_a_wrong_signature_is_refused() {
    let server = start().await;
    let client = server.client_builder().build().unwrap();
    let impostor = server
        .client_builder()
        .secret("not-the-secret")
        .build()
        .unwrap();
    let channel = unique("private-refused-");

    // A raw protocol client gets a subscription error naming the channel.
    let mut sub = Subscriber::connect(&described(&server)).await;
    let forged = impostor
        .authorize_channel(&sub.socket_id, &channel)
        .unwrap();
    let refused = sub.subscribe(&channel, Some(&forged)).await.unwrap_err();
    assert_eq!(refused.event, "pusher:subscription_error", "{refused:?}");
    assert_eq!(refused.channel.as_deref(), Some(channel.as_str()));
    assert_eq!(refused.data["status"], 401, "{refused:?}");
    // No auth at all, and an authorization for another socket, are refused too.
    assert!(sub.subscribe(&channel, None).await.is_err());
    let other_socket = client.authorize_channel("1.1", &channel).unwrap();
    assert!(sub.subscribe(&channel, Some(&other_socket)).await.is_err());

    // pusher-js whose auth endpoint signs with the wrong secret reports the error.
    let auth_port = serve_auth(impostor, USER_ID).await;
    let public = unique("js-ok-");
    let mut js = PusherJs::spawn(&pusher_js(&server, auth_port, &[&public, &channel]));
    let mut reports = Vec::new();
    while !reports
        .iter()
        .any(|r: &Value| r["type"] == "subscription_error")
    {
        reports.push(js.next().await);
    }
    let error = reports.last().unwrap();
    assert_eq!(error["channel"], channel.as_str(), "{reports:?}");
    assert!(
        error["status"]
            .as_str()
            .unwrap()
            .contains("Invalid signature"),
        "{error}"
    );

    // Nothing triggered on the channel reaches either of them.
    client
        .trigger(&channel, "secret", &json!({}))
        .await
        .unwrap();
    client
        .trigger(&public, "visible", &json!({ "ok": true }))
        .await
        .unwrap();
    assert_eq!(sub.next_event(Duration::from_millis(300)).await, None);
    loop {
        let msg = js.next().await;
        if msg["type"] == "subscribed" {
            continue;
        }
        assert_eq!(msg["type"], "event", "{msg}");
        assert_eq!(msg["channel"], public.as_str(), "{msg}");
        break;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_bad_api_signature_gets_401_and_delivers_nothing() {
    let server = start().await;
    let channel = unique("guarded-");
    let mut sub = Subscriber::connect(&described(&server)).await;
    sub.subscribe(&channel, None).await.unwrap();

    let impostor = server.client_builder().secret("wrong").build().unwrap();
    let err = impostor
        .trigger(&channel, "forged", &json!({}))
        .await
        .unwrap_err();
    match err {
        Error::Api { status, body, .. } => {
            assert_eq!(status, 401);
            assert!(body.contains("Invalid signature"), "{body}");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    let wrong_key = server.client_builder().key("other-key").build().unwrap();
    assert!(matches!(
        wrong_key.trigger(&channel, "forged", &json!({})).await,
        Err(Error::Api { status: 401, .. })
    ));
    let wrong_app = server.client_builder().app_id("other-app").build().unwrap();
    assert!(matches!(
        wrong_app.trigger(&channel, "forged", &json!({})).await,
        Err(Error::Api { status: 404, .. })
    ));
    assert_eq!(sub.next_event(Duration::from_millis(300)).await, None);

    // The right client still gets through.
    let client = server.client_builder().build().unwrap();
    client
        .trigger(&channel, "genuine", &json!({}))
        .await
        .unwrap();
    assert_eq!(
        sub.next_event(Duration::from_secs(5)).await.unwrap().event,
        "genuine"
    );
    server.shutdown().await;
}

/// Posts `body` to `path`, signed with `secret` at `timestamp`.
async fn post_signed(
    server: &LocalServer,
    path: &str,
    body: &[u8],
    secret: &str,
    timestamp: u64,
) -> (u16, String) {
    let query = signed_query(
        server.key(),
        secret,
        "POST",
        path,
        &[],
        Some(body),
        timestamp,
    );
    let url = format!("http://{}{path}?{query}", server.addr());
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn malformed_expired_tampered_and_oversize_requests_are_refused() {
    let server = start().await;
    let events = format!("/apps/{}/events", server.app_id());
    let channel = unique("refusals-");
    let mut sub = Subscriber::connect(&described(&server)).await;
    sub.subscribe(&channel, None).await.unwrap();

    let (status, body) = post_signed(&server, &events, b"{not json", SECRET, now()).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post_signed(
        &server,
        &events,
        br#"{"name":"e","channel":"c","data":{"not":"a string"}}"#,
        SECRET,
        now(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = post_signed(
        &server,
        &events,
        br#"{"name":"e","data":"{}"}"#,
        SECRET,
        now(),
    )
    .await;
    assert_eq!(status, 400, "no channel");

    let good = json!({ "name": "e", "channel": channel, "data": "{}" }).to_string();
    let (status, body) = post_signed(&server, &events, good.as_bytes(), SECRET, now() - 3600).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Timestamp expired"), "{body}");

    // A body other than the one signed.
    let query = signed_query(
        server.key(),
        SECRET,
        "POST",
        &events,
        &[],
        Some(b"{}"),
        now(),
    );
    let response = reqwest::Client::new()
        .post(format!("http://{}{events}?{query}", server.addr()))
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    // Data over the 10 KiB limit, and a body over the request limit.
    let big = json!({ "name": "e", "channel": channel, "data": "x".repeat(10 * 1024 + 1) });
    let (status, body) =
        post_signed(&server, &events, big.to_string().as_bytes(), SECRET, now()).await;
    assert_eq!(status, 413, "{body}");
    let huge = vec![b' '; 1024 * 1024];
    let (status, _) = post_signed(&server, &events, &huge, SECRET, now()).await;
    assert_eq!(status, 413);

    assert_eq!(sub.next_event(Duration::from_millis(300)).await, None);
    // The signature string the server expects is the documented one.
    assert_eq!(
        string_to_sign("POST", &events, &[("auth_key", server.key())]),
        format!("POST\n{events}\nauth_key={}", server.key())
    );
    let (status, body) = post_signed(&server, &events, good.as_bytes(), SECRET, now()).await;
    assert_eq!((status, body.as_str()), (200, "{}"));
    assert_eq!(
        sub.next_event(Duration::from_secs(5)).await.unwrap().event,
        "e"
    );
    server.shutdown().await;
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw_connect(server: &LocalServer, key: &str) -> Ws {
    let url = format!(
        "ws://{}/app/{key}?protocol=7&client=js&version=8.6.0",
        server.addr()
    );
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next text frame as JSON, or `None` on close or after 5 s.
async fn raw_next(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .ok()??
        {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

async fn raw_send(ws: &mut Ws, text: impl Into<String>) {
    ws.send(Message::Text(text.into().into())).await.unwrap();
}

#[tokio::test]
async fn handshake_ping_pong_bad_frames_and_unknown_keys() {
    let server = start().await;
    let mut ws = raw_connect(&server, server.key()).await;
    let hello = raw_next(&mut ws).await.unwrap();
    assert_eq!(hello["event"], "pusher:connection_established");
    // `data` is a JSON string, as pusher-js expects.
    let data: Value = serde_json::from_str(hello["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["activity_timeout"], 120);
    let socket_id = data["socket_id"].as_str().unwrap();
    pusher_client::validation::check_socket_id(socket_id).unwrap();

    raw_send(&mut ws, r#"{"event":"pusher:ping","data":{}}"#).await;
    assert_eq!(raw_next(&mut ws).await.unwrap()["event"], "pusher:pong");

    // Garbage, unknown events and client events on public channels get an
    // error frame; the connection stays usable.
    for bad in [
        "not json",
        "[1,2,3]",
        r#"{"event":"pusher:subscribe","data":"nope"}"#,
        r#"{"event":"pusher:subscribe","data":{"channel":"bad channel!"}}"#,
        r#"{"event":"no-such-event","data":{}}"#,
        r#"{"event":"client-x","channel":"public","data":{}}"#,
    ] {
        raw_send(&mut ws, bad).await;
        let answer = raw_next(&mut ws).await.unwrap();
        assert!(
            answer["event"] == "pusher:error" || answer["event"] == "pusher:subscription_error",
            "{bad} -> {answer}"
        );
    }
    raw_send(&mut ws, r#"{"event":"pusher:ping","data":{}}"#).await;
    assert_eq!(raw_next(&mut ws).await.unwrap()["event"], "pusher:pong");

    // A frame over the size limit ends that connection, not the server.
    ws.send(Message::Text("x".repeat(1024 * 1024).into()))
        .await
        .ok();
    assert_eq!(raw_next(&mut ws).await, None);

    // An unknown app key is refused with 4001.
    let mut stranger = raw_connect(&server, "unknown-key").await;
    let refused = raw_next(&mut stranger).await.unwrap();
    assert_eq!(refused["event"], "pusher:error");
    assert_eq!(refused["data"]["code"], 4001);
    let close = loop {
        match stranger.next().await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.unwrap().code, CloseCode::from(4001));

    eventually("both sockets are gone", || server.connections() == 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn client_events_reach_the_other_members_of_a_presence_channel() {
    let server = start().await;
    let client = server.client_builder().build().unwrap();
    let channel = unique("presence-chat-");
    let mut alice = Subscriber::connect(&described(&server)).await;
    let mut bob = Subscriber::connect(&described(&server)).await;
    let member = |id: &str| pusher_client::PresenceMember::new(id);
    let auth = client
        .authorize_presence_channel(&alice.socket_id, &channel, &member("alice"))
        .unwrap();
    alice.subscribe(&channel, Some(&auth)).await.unwrap();
    let auth = client
        .authorize_presence_channel(&bob.socket_id, &channel, &member("bob"))
        .unwrap();
    bob.subscribe(&channel, Some(&auth)).await.unwrap();

    bob.client_event(&channel, "client-typing", json!({ "on": true }))
        .await;
    let got = alice.next_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.event, "client-typing");
    assert_eq!(got.data, json!({ "on": true }));
    // Not echoed to the sender.
    assert_eq!(bob.next_event(Duration::from_millis(300)).await, None);

    let users = client.users(&channel).await.unwrap();
    assert_eq!(users.len(), 2);
    bob.close().await;
    eventually("bob left", || server.connections() == 1).await;
    let users = client.users(&channel).await.unwrap();
    assert_eq!(
        users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["alice"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn pusher_js_stays_connected_and_shutdown_closes_it() {
    let server = start().await;
    let client: Client = server.client_builder().build().unwrap();
    let auth_port = serve_auth(client.clone(), USER_ID).await;
    let channel = unique("alive-");
    let mut js = PusherJs::spawn(&pusher_js(&server, auth_port, &[&channel]));
    js.wait_ready(1, false).await;

    // A protocol client pings alongside; pusher-js stays connected and keeps
    // receiving.
    let mut sub = Subscriber::connect(&described(&server)).await;
    sub.subscribe(&channel, None).await.unwrap();
    for n in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        client
            .trigger(&channel, "tick", &json!({ "n": n }))
            .await
            .unwrap();
        let msg = js.next().await;
        assert_eq!(
            (msg["type"].as_str(), &msg["data"]["n"]),
            (Some("event"), &json!(n))
        );
        assert_eq!(
            sub.next_event(Duration::from_secs(5)).await.unwrap().event,
            "tick"
        );
    }
    assert_eq!(server.connections(), 2);

    server.shutdown().await;
    assert!(sub.closed_within(Duration::from_secs(5)).await);
    assert!(
        client.trigger(&channel, "late", &json!({})).await.is_err(),
        "the API is gone after shutdown"
    );
}

#[tokio::test]
async fn signed_in_users_get_their_events_and_can_be_terminated() {
    let server = start().await;
    let client = server.client_builder().build().unwrap();
    let auth_port = serve_auth(client.clone(), USER_ID).await;

    // pusher-js signs in and receives what is sent to its user.
    let mut options = pusher_js(&server, auth_port, &[]);
    options.sign_in = true;
    options.expect_events = 1;
    let mut js = PusherJs::spawn(&options);
    js.wait_ready(0, true).await;
    client
        .send_to_user(USER_ID, "notice", &json!({ "text": "hi" }))
        .await
        .unwrap();
    let msg = js.next().await;
    assert_eq!(
        (msg["type"].as_str(), msg["event"].as_str()),
        (Some("event"), Some("notice"))
    );
    assert_eq!(msg["data"], json!({ "text": "hi" }));
    assert!(js.wait_success(Duration::from_secs(5)).await);

    // Only the signed-in user may subscribe to their channel; a forged
    // sign-in is refused.
    let mut stranger = Subscriber::connect(&described(&server)).await;
    let own_channel = format!("#server-to-user-{USER_ID}");
    assert!(stranger.subscribe(&own_channel, None).await.is_err());
    let forged = server
        .client_builder()
        .secret("wrong")
        .build()
        .unwrap()
        .authenticate_user(&stranger.socket_id, &json!({ "id": USER_ID }))
        .unwrap();
    assert!(stranger.sign_in(&forged, USER_ID).await.is_err());

    let mut user = Subscriber::connect(&described(&server)).await;
    let auth = client
        .authenticate_user(&user.socket_id, &json!({ "id": USER_ID }))
        .unwrap();
    user.sign_in(&auth, USER_ID).await.unwrap();
    client.terminate_user_connections(USER_ID).await.unwrap();
    assert!(user.closed_within(Duration::from_secs(5)).await);
    assert!(!stranger.closed_within(Duration::from_millis(300)).await);
    server.shutdown().await;
}
