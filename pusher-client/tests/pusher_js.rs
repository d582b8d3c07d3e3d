//! End to end with the real browser client: unmodified `pusher-js` from npm
//! (run under Node), connected to the local Sockudo server, subscribes to a
//! public channel, a private channel and an end-to-end encrypted channel. The
//! private and encrypted subscriptions are authorized by this crate through a
//! small HTTP auth endpoint served by the test; the events are triggered by this
//! crate; pusher-js must receive all three and decrypt the encrypted one.
//!
//! Needs `node` and `npm`; `npm ci` runs in `tests/js` when its `node_modules`
//! is missing.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{sockudo, unique};
use pusher_client::Client;
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

/// Serves `GET /auth?socket_id=..&channel_name=..` with this crate's channel
/// authorization, as an application's auth endpoint would.
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
                let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
                let params: std::collections::HashMap<String, String> =
                    url::form_urlencoded::parse(query.as_bytes())
                        .into_owned()
                        .collect();
                let result = client.authorize_channel(
                    params.get("socket_id").map_or("", String::as_str),
                    params.get("channel_name").map_or("", String::as_str),
                );
                let (status, body) = match result {
                    Ok(auth) => ("200 OK", auth.to_json()),
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
async fn pusher_js_receives_public_private_and_encrypted_events() {
    let server = sockudo();
    ensure_node_modules();
    let client = server.client();
    let auth_port = serve_auth(client.clone()).await;

    let public = unique("js-public-");
    let private = unique("private-js-");
    let encrypted = unique("private-encrypted-js-");

    let mut node = Command::new("node")
        .arg("subscriber.js")
        .current_dir(js_dir())
        .env("PUSHER_KEY", &server.key)
        .env("WS_HOST", &server.host)
        .env("WS_PORT", server.port.to_string())
        .env("AUTH_URL", format!("http://127.0.0.1:{auth_port}/auth"))
        .env("CHANNELS", format!("{public},{private},{encrypted}"))
        .env("EXPECT_EVENTS", "3")
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

    // Wait until pusher-js is connected and subscribed to all three channels.
    let mut subscribed = Vec::new();
    while subscribed.len() < 3 {
        let msg = next().await;
        match msg["type"].as_str() {
            Some("connected") => {}
            Some("subscribed") => subscribed.push(msg["channel"].as_str().unwrap().to_owned()),
            _ => panic!("pusher-js could not subscribe: {msg}"),
        }
    }

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

    let mut got = std::collections::HashMap::new();
    while got.len() < 3 {
        let msg = next().await;
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

    let status = tokio::time::timeout(Duration::from_secs(5), node.wait())
        .await
        .expect("pusher-js exits after the expected events")
        .unwrap();
    assert!(status.success());
}
