//! End to end with the real browser client: unmodified `pusher-js` from npm
//! (run under Node; its Node build includes encrypted-channel support),
//! connected to the local Sockudo server, signs in as a user and subscribes to a
//! public, a private, a presence and an end-to-end encrypted channel. Every
//! authorization and the sign-in are answered by this crate through small HTTP
//! auth endpoints served by the test; the events are triggered by this crate;
//! pusher-js must receive them all and decrypt the encrypted one.
//!
//! Needs `node` and `npm`; `npm ci` runs in `tests/js` when its `node_modules`
//! is missing.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{sockudo, unique};
use pusher_client::{Client, PresenceMember};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// Installs the pinned npm packages when they are missing.
fn ensure_node_modules() {
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

const USER_ID: &str = "js-user-1";

/// Serves `GET /auth?socket_id=..&channel_name=..` with this crate's channel
/// authorization and `GET /user-auth?socket_id=..` with its user authentication,
/// as an application's auth endpoints would.
async fn serve_auth(client: Client) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let client = client.clone();
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
                        .authenticate_user(socket_id, &json!({ "id": USER_ID, "name": "Ada" }))
                        .map(|a| a.to_json()),
                    _ if channel.starts_with("presence-") => {
                        let member = PresenceMember::new(USER_ID).info(json!({ "name": "Ada" }));
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

#[tokio::test]
async fn pusher_js_receives_events_on_every_kind_of_channel() {
    let server = sockudo();
    ensure_node_modules();
    let client = server.client();
    let auth_port = serve_auth(client.clone()).await;

    let public = unique("js-public-");
    let private = unique("private-js-");
    let encrypted = unique("private-encrypted-js-");
    let presence = unique("presence-js-");

    let mut node = Command::new("node")
        .arg("subscriber.js")
        .current_dir(js_dir())
        .env("PUSHER_KEY", &server.key)
        .env("WS_HOST", &server.host)
        .env("WS_PORT", server.port.to_string())
        .env("AUTH_URL", format!("http://127.0.0.1:{auth_port}/auth"))
        .env(
            "USER_AUTH_URL",
            format!("http://127.0.0.1:{auth_port}/user-auth"),
        )
        .env(
            "CHANNELS",
            format!("{public},{private},{encrypted},{presence}"),
        )
        .env("EXPECT_EVENTS", "5")
        .env("TIMEOUT_MS", "20000")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run `node` (install Node.js 18 or later)");
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();

    let mut next = async || -> Value {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("pusher-js reported in time")
            .expect("read pusher-js output")
            .expect("pusher-js exited early");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
    };

    // Wait until pusher-js is connected, signed in and subscribed to all four channels.
    let mut subscribed = Vec::new();
    let mut signed_in = false;
    while subscribed.len() < 4 || !signed_in {
        let msg = next().await;
        match msg["type"].as_str() {
            Some("connected") => {}
            Some("signed_in") => {
                assert_eq!(msg["user_id"], USER_ID);
                signed_in = true;
            }
            Some("subscribed") => {
                if msg["channel"] == presence.as_str() {
                    // pusher-js parsed our channel_data: it knows who it is.
                    assert_eq!(msg["me"], USER_ID, "{msg}");
                    assert_eq!(msg["members"], 1, "{msg}");
                }
                subscribed.push(msg["channel"].as_str().unwrap().to_owned());
            }
            _ => panic!("pusher-js could not subscribe or sign in: {msg}"),
        }
    }
    // The server sees the member pusher-js joined as.
    let users = client.users(&presence).await.unwrap();
    assert_eq!(
        users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        [USER_ID]
    );

    client
        .trigger(
            &public,
            "public-event",
            &json!({ "n": 1, "text": "hello public" }),
        )
        .await
        .unwrap();
    client
        .trigger(
            &private,
            "private-event",
            &json!({ "n": 2, "text": "hello private" }),
        )
        .await
        .unwrap();
    client
        .trigger(
            &encrypted,
            "secret-event",
            &json!({ "n": 3, "text": "hello encrypted ✓" }),
        )
        .await
        .unwrap();

    client
        .trigger(&presence, "presence-event", &json!({ "n": 4 }))
        .await
        .unwrap();
    client
        .send_to_user(
            USER_ID,
            "user-event",
            &json!({ "n": 5, "text": "just you" }),
        )
        .await
        .unwrap();

    // Channel events are keyed by channel; the server-to-user event has none.
    let mut got = std::collections::HashMap::new();
    while got.len() < 5 {
        let msg = next().await;
        assert_eq!(
            msg["type"], "event",
            "unexpected report from pusher-js: {msg}"
        );
        let key = msg["channel"].as_str().unwrap_or("user").to_owned();
        got.insert(key, msg);
    }
    assert_eq!(got[&public]["event"], "public-event");
    assert_eq!(
        got[&public]["data"],
        json!({ "n": 1, "text": "hello public" })
    );
    assert_eq!(got[&private]["event"], "private-event");
    assert_eq!(
        got[&private]["data"],
        json!({ "n": 2, "text": "hello private" })
    );
    // pusher-js decrypted the payload with the shared secret from our authorization.
    assert_eq!(got[&encrypted]["event"], "secret-event");
    assert_eq!(
        got[&encrypted]["data"],
        json!({ "n": 3, "text": "hello encrypted ✓" })
    );
    assert_eq!(got[&presence]["event"], "presence-event");
    assert_eq!(got[&presence]["data"], json!({ "n": 4 }));
    assert_eq!(got["user"]["event"], "user-event");
    assert_eq!(got["user"]["data"], json!({ "n": 5, "text": "just you" }));

    let status = tokio::time::timeout(Duration::from_secs(5), node.wait())
        .await
        .expect("pusher-js exits after the expected events")
        .unwrap();
    assert!(status.success());
}
