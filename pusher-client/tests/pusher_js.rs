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

use std::process::Stdio;
use std::time::Duration;

use common::js::{ensure_node_modules, js_dir, serve_auth};
use common::{sockudo, unique};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The user pusher-js signs in as (and joins presence channels as).
const USER_ID: &str = "js-user-1";

#[tokio::test]
async fn pusher_js_receives_events_on_every_kind_of_channel() {
    let server = sockudo();
    ensure_node_modules();
    let client = server.client();
    let auth_port = serve_auth(client.clone(), USER_ID).await;

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
