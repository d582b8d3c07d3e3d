//! Webhooks sent by a real Sockudo server are verified and parsed by this crate.
//!
//! Sockudo's app-level webhooks need an app defined in a configuration file, so
//! this test starts its own Sockudo process (the binary `.ci/sockudo.sh`
//! installs) on a free port, with webhooks pointed at a listener in the test.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{Server, Subscriber, unique};
use pusher_client::{PresenceMember, WebhookEvent};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn sockudo_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin")))
        .map(|dir| dir.join("sockudo"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "the `sockudo` binary was not found on PATH or in ~/.cargo/bin.\n\
             Install it with `bash .ci/sockudo.sh` (or `cargo install sockudo --locked`)."
        )
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Receives webhook POSTs and forwards (headers, body) to the test.
async fn webhook_listener() -> (u16, mpsc::UnboundedReceiver<(HeaderMap, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    // One request per connection is enough for the test, but
                    // serve keep-alive requests too.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let mut headers = HeaderMap::new();
                    for line in head.lines().skip(1) {
                        if let Some((k, v)) = line.split_once(':')
                            && let (Ok(k), Ok(v)) = (
                                HeaderName::from_bytes(k.trim().as_bytes()),
                                HeaderValue::from_str(v.trim()),
                            )
                        {
                            headers.append(k, v);
                        }
                    }
                    let len: usize = headers
                        .get("content-length")
                        .and_then(|v| v.to_str().ok()?.parse().ok())
                        .unwrap_or(0);
                    buf.drain(..head_end + 4);
                    while buf.len() < len {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buf.drain(..len).collect();
                    let _ = tx.send((headers, body));
                    let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                    if stream.write_all(ok.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn webhooks_from_sockudo_verify_and_parse() {
    let binary = sockudo_binary();
    let (hook_port, mut hooks) = webhook_listener().await;
    let port = free_port();
    let server = Server {
        host: "127.0.0.1".into(),
        port,
        app_id: "webhook-app".into(),
        key: "webhook-key".into(),
        secret: "webhook-secret".into(),
    };
    let dir = std::env::temp_dir().join(format!("pusher-client-webhooks-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = json!({
        "host": "127.0.0.1",
        "port": port,
        "adapter": { "driver": "local" },
        "cache": { "driver": "memory" },
        "queue": { "driver": "memory" },
        "rate_limiter": { "enabled": false },
        "metrics": { "enabled": false },
        "webhooks": { "batching": { "enabled": false } },
        "app_manager": {
            "driver": "memory",
            "array": { "apps": [{
                "id": server.app_id, "key": server.key, "secret": server.secret,
                "enabled": true,
                "enable_client_messages": true,
                "max_connections": 100,
                "max_client_events_per_second": 100,
                "max_channel_name_length": 200,
                "webhooks": [{
                    "url": format!("http://127.0.0.1:{hook_port}/pusher/webhooks"),
                    "event_types": [
                        "channel_occupied", "channel_vacated",
                        "member_added", "member_removed", "client_event"
                    ]
                }]
            }]}
        }
    });
    let config_path = dir.join("sockudo.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let mut command = tokio::process::Command::new(binary);
    command
        .arg("--config")
        .arg(&config_path)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (name, _) in std::env::vars() {
        if name.starts_with("SOCKUDO_") || ["HOST", "PORT", "DEBUG"].contains(&name.as_str()) {
            command.env_remove(name);
        }
    }
    let mut sockudo = command.spawn().expect("start sockudo");
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "sockudo did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let client = server
        .builder()
        .webhook_token("old-key", "old-secret")
        .build()
        .unwrap();
    let channel = unique("presence-hooks-");
    let mut sub = Subscriber::connect(&server).await;
    let auth = client
        .authorize_presence_channel(&sub.socket_id, &channel, &PresenceMember::new("ada"))
        .unwrap();
    sub.subscribe(&channel, Some(&auth)).await.unwrap();
    sub.client_event(&channel, "client-typing", json!({ "typing": true }))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    sub.close().await;

    let mut seen: HashMap<&'static str, WebhookEvent> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 5 {
        let (headers, body) = tokio::time::timeout_at(deadline, hooks.recv())
            .await
            .unwrap_or_else(|_| panic!("webhooks missing; got {:?}", seen.keys()))
            .unwrap();
        let hook = client
            .verify_webhook_headers(&headers, &body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
        assert!(hook.time_ms > 0);
        // A tampered body fails verification.
        let mut tampered = body.clone();
        tampered.push(b' ');
        assert!(client.verify_webhook_headers(&headers, &tampered).is_err());
        for event in hook.events {
            if event.channel() != Some(channel.as_str()) {
                continue;
            }
            let kind = match &event {
                WebhookEvent::ChannelOccupied { .. } => "occupied",
                WebhookEvent::ChannelVacated { .. } => "vacated",
                WebhookEvent::MemberAdded { .. } => "added",
                WebhookEvent::MemberRemoved { .. } => "removed",
                WebhookEvent::ClientEvent { .. } => "client",
                other => panic!("unexpected webhook event {other:?}"),
            };
            seen.insert(kind, event);
        }
    }
    assert_eq!(
        seen["added"],
        WebhookEvent::MemberAdded {
            channel: channel.clone(),
            user_id: "ada".into()
        }
    );
    assert_eq!(
        seen["removed"],
        WebhookEvent::MemberRemoved {
            channel: channel.clone(),
            user_id: "ada".into()
        }
    );
    match &seen["client"] {
        WebhookEvent::ClientEvent {
            event,
            data,
            user_id,
            ..
        } => {
            assert_eq!(event, "client-typing");
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(data).unwrap(),
                json!({ "typing": true })
            );
            // Pusher adds the sender's user_id on presence channels; Sockudo 5.2
            // leaves it out. Either way it must not be anything else.
            assert!(
                matches!(user_id.as_deref(), None | Some("ada")),
                "{user_id:?}"
            );
        }
        other => panic!("{other:?}"),
    }

    sockudo.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
