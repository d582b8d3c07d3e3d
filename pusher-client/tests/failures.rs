//! Bad input never leaves the process, and every way a server can fail maps to a
//! typed error (never a panic). The "server" here is a raw local TCP listener that
//! counts connections and answers with canned HTTP, so tests can prove that no
//! request was sent and can produce failures a healthy server would not.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pusher_client::{BatchEvent, ChannelAttribute, ChannelsQuery, Client, Error, Event, Limits};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

#[derive(Clone)]
enum Behavior {
    /// Answer every request with this raw status line, extra headers and body.
    Respond(&'static str, &'static str, &'static str),
    /// Accept, read, never answer.
    Hang,
    /// Accept, read, close without answering.
    Close,
}

/// Recorded requests: head (request line and headers) and body.
type Requests = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

struct TestServer {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Requests,
}

impl TestServer {
    async fn start(behavior: Behavior) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (c, r) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let behavior = behavior.clone();
                let r = r.clone();
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut stream).await else {
                        return;
                    };
                    r.lock().await.push((head, body));
                    match behavior {
                        Behavior::Respond(status, headers, body) => {
                            let response = format!(
                                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
                                body.len()
                            );
                            let _ = stream.write_all(response.as_bytes()).await;
                            let _ = stream.shutdown().await;
                        }
                        Behavior::Hang => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                        }
                        Behavior::Close => drop(stream),
                    }
                });
            }
        });
        TestServer {
            port,
            connections,
            requests,
        }
    }

    fn client(&self) -> Client {
        self.builder().build().unwrap()
    }

    fn builder(&self) -> pusher_client::ClientBuilder {
        Client::builder()
            .app_id("42")
            .key("test-key")
            .secret("test-secret")
            .host("127.0.0.1")
            .port(self.port)
            .use_tls(false)
            .timeout(Duration::from_millis(500))
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = buf[end + 4..].to_vec();
            while body.len() < len {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            return Some((head, body));
        }
    }
}

const OK: Behavior = Behavior::Respond("200 OK", "content-type: application/json\r\n", "{}");

/// Runs `f` against a server that answers 200, asserts the typed error and that
/// no connection was made.
macro_rules! rejected_before_sending {
    ($server:ident, $client:ident, $call:expr, $pat:pat) => {{
        let $server = TestServer::start(OK).await;
        #[allow(unused_variables)]
        let $client = $server.client();
        let result = $call;
        assert!(matches!(result, Err($pat)), "{:?}", result.map(|_| ()));
        let err = result.err().unwrap();
        assert!(err.is_invalid_input(), "{err:?}");
        assert!(!err.is_retryable(), "{err:?}");
        // Give a stray connection time to show up before counting.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            $server.connections(),
            0,
            "a request was sent for invalid input"
        );
    }};
}

#[tokio::test]
async fn invalid_channel_names_are_not_sent() {
    rejected_before_sending!(
        s,
        c,
        c.trigger("has space", "e", &json!({})).await,
        Error::InvalidChannelName { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.trigger("", "e", &json!({})).await,
        Error::InvalidChannelName { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.trigger("naïve", "e", &json!({})).await,
        Error::InvalidChannelName { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.channel("a/b", []).await,
        Error::InvalidChannelName { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.users("presence-a?b").await,
        Error::InvalidChannelName { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.channels(&ChannelsQuery::new().prefix("bad prefix")).await,
        Error::InvalidChannelName { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.trigger_batch(&[
            BatchEvent::new("ok", "e", "{}"),
            BatchEvent::new("not ok", "e", "{}")
        ])
        .await,
        Error::InvalidChannelName { .. }
    );
}

#[tokio::test]
async fn channel_name_length_limit_is_configurable() {
    let long = "a".repeat(165);
    rejected_before_sending!(
        s,
        c,
        c.trigger(&long, "e", &json!({})).await,
        Error::ChannelNameTooLong {
            len: 165,
            max: 164,
            ..
        }
    );
    // Raising the limit (self-hosted servers accept 200) lets it through.
    let server = TestServer::start(OK).await;
    let client = server
        .builder()
        .limits(Limits::default().max_channel_name_len(200))
        .build()
        .unwrap();
    client.trigger(&long, "e", &json!({})).await.unwrap();
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn event_names_are_checked() {
    let long = "e".repeat(201);
    rejected_before_sending!(
        s,
        c,
        c.trigger("ch", &long, &json!({})).await,
        Error::InvalidEventName { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.trigger("ch", "", &json!({})).await,
        Error::InvalidEventName { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.trigger_batch(&[BatchEvent::new("ch", long.clone(), "{}")])
            .await,
        Error::InvalidEventName { .. }
    );
}

#[tokio::test]
async fn channel_count_is_checked() {
    let many: Vec<String> = (0..101).map(|i| format!("ch-{i}")).collect();
    rejected_before_sending!(
        s,
        c,
        c.trigger_event(&Event::new(many.clone(), "e", "{}")).await,
        Error::TooManyChannels {
            count: 101,
            max: 100
        }
    );
    rejected_before_sending!(
        s,
        c,
        c.trigger_event(&Event::new(Vec::<String>::new(), "e", "{}"))
            .await,
        Error::NoChannels
    );
}

#[tokio::test]
async fn batch_size_is_checked() {
    let eleven: Vec<BatchEvent> = (0..11)
        .map(|i| BatchEvent::new(format!("ch-{i}"), "e", "{}"))
        .collect();
    rejected_before_sending!(
        s,
        c,
        c.trigger_batch(&eleven).await,
        Error::BatchTooLarge { count: 11, max: 10 }
    );
    rejected_before_sending!(s, c, c.trigger_batch(&[]).await, Error::EmptyBatch);
}

#[tokio::test]
async fn payload_size_is_checked_and_configurable() {
    let big = "x".repeat(10 * 1024 + 1);
    rejected_before_sending!(
        s,
        c,
        c.trigger_event(&Event::new(["ch"], "e", big.clone())).await,
        Error::PayloadTooLarge {
            size: 10241,
            max: 10240
        }
    );
    rejected_before_sending!(
        s,
        c,
        c.trigger_batch(&[BatchEvent::new("ch", "e", big.clone())])
            .await,
        Error::PayloadTooLarge { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.send_to_user("u1", "e", &big).await,
        Error::PayloadTooLarge { .. }
    );
    // Exactly at the limit is fine, and the limit can be raised.
    let server = TestServer::start(OK).await;
    let client = server.client();
    client
        .trigger_event(&Event::new(["ch"], "e", "x".repeat(10 * 1024)))
        .await
        .unwrap();
    let raised = server
        .builder()
        .limits(Limits::default().max_payload_bytes(64 * 1024))
        .build()
        .unwrap();
    raised
        .trigger_event(&Event::new(["ch"], "e", big))
        .await
        .unwrap();
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn socket_ids_are_checked() {
    for bad in ["1234", "12.34.56", "abc.def", "1.2:private-x", ""] {
        rejected_before_sending!(
            s,
            c,
            c.trigger_event(&Event::new(["ch"], "e", "{}").exclude_socket(bad))
                .await,
            Error::InvalidSocketId { .. }
        );
    }
    rejected_before_sending!(
        s,
        c,
        c.trigger_batch(&[BatchEvent::new("ch", "e", "{}").exclude_socket("x")])
            .await,
        Error::InvalidSocketId { .. }
    );
}

#[tokio::test]
async fn encryption_rules_are_checked() {
    let key = "y5SGF7Zy9CtZTHQQpuI96yWU5XCq9UT2WaiklvA4Cwg=";
    // One channel only when encrypting.
    let server = TestServer::start(OK).await;
    let client = server
        .builder()
        .encryption_master_key_base64(key)
        .build()
        .unwrap();
    let err = client
        .trigger_event(&Event::new(["private-encrypted-a", "public-b"], "e", "{}"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::EncryptedMultipleChannels { count: 2 }),
        "{err:?}"
    );
    // Encrypted channels need a master key.
    rejected_before_sending!(
        s,
        c,
        c.trigger("private-encrypted-a", "e", &json!({})).await,
        Error::MissingMasterKey { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.trigger_batch(&[BatchEvent::new("private-encrypted-a", "e", "{}")])
            .await,
        Error::MissingMasterKey { .. }
    );
    // Encryption overhead counts against the payload limit.
    let nearly = "x".repeat(10 * 1024 - 10);
    let err = client
        .trigger_event(&Event::new(["private-encrypted-a"], "e", nearly))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { .. }), "{err:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn user_ids_and_channel_kinds_are_checked() {
    rejected_before_sending!(
        s,
        c,
        c.send_to_user("", "e", &json!({})).await,
        Error::InvalidUserId { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.send_to_user("a b", "e", &json!({})).await,
        Error::InvalidUserId { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.terminate_user_connections("../x").await,
        Error::InvalidUserId { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.users("private-room").await,
        Error::WrongChannelType { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.channel("public-room", [ChannelAttribute::UserCount])
            .await,
        Error::WrongChannelType { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.channel("#server-to-user-ada", []).await,
        Error::WrongChannelType { .. }
    );
    rejected_before_sending!(
        s,
        c,
        c.channels(&ChannelsQuery::new().info([ChannelAttribute::UserCount]))
            .await,
        Error::WrongChannelType { .. }
    );
}

#[tokio::test]
async fn requests_are_signed_on_the_wire() {
    let server = TestServer::start(OK).await;
    let client = server.client();
    client
        .trigger_event(&Event::new(["a", "b"], "e", r#"{"x":1}"#).exclude_socket("1.2"))
        .await
        .unwrap();
    client
        .channels(
            &ChannelsQuery::new()
                .prefix("presence-")
                .info([ChannelAttribute::UserCount]),
        )
        .await
        .unwrap();
    let requests = server.requests.lock().await;
    assert_eq!(requests.len(), 2);
    for (head, body) in requests.iter() {
        let line = head.lines().next().unwrap();
        let mut parts = line.split(' ');
        let method = parts.next().unwrap();
        let target = parts.next().unwrap();
        let (path, query) = target.split_once('?').unwrap();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let signature = pairs
            .iter()
            .find(|(k, _)| k == "auth_signature")
            .unwrap()
            .1
            .clone();
        let unsigned: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, _)| k != "auth_signature")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let expected = pusher_client::signing::hmac_sha256_hex(
            "test-secret",
            &pusher_client::signing::string_to_sign(method, path, &unsigned),
        );
        assert_eq!(signature, expected, "{line}");
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("auth_key"), Some("test-key"));
        assert_eq!(get("auth_version"), Some("1.0"));
        if method == "POST" {
            assert_eq!(path, "/apps/42/events");
            assert_eq!(
                get("body_md5"),
                Some(pusher_client::signing::body_md5(body).as_str())
            );
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(
                v,
                json!({"name":"e","channels":["a","b"],"data":"{\"x\":1}","socket_id":"1.2"})
            );
            assert!(
                head.to_ascii_lowercase()
                    .contains("content-type: application/json")
            );
        } else {
            assert_eq!(path, "/apps/42/channels");
            assert_eq!(get("filter_by_prefix"), Some("presence-"));
            assert_eq!(get("info"), Some("user_count"));
            assert_eq!(get("body_md5"), None);
        }
        assert!(!head.contains("test-secret"));
    }
}

#[tokio::test]
async fn server_down_is_a_retryable_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = Client::builder()
        .app_id("1")
        .key("k")
        .secret("server-down-secret")
        .host("127.0.0.1")
        .port(port)
        .use_tls(false)
        .build()
        .unwrap();
    let err = client.trigger("ch", "e", &json!({})).await.unwrap_err();
    assert!(matches!(err, Error::Connect(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), None);
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("server-down-secret") && !shown.contains("auth_signature"),
        "{shown}"
    );
}

#[tokio::test]
async fn hanging_server_times_out() {
    let server = TestServer::start(Behavior::Hang).await;
    let client = server
        .builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = client.trigger("ch", "e", &json!({})).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn closed_connection_is_a_retryable_http_error() {
    let server = TestServer::start(Behavior::Close).await;
    let err = server
        .client()
        .trigger("ch", "e", &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http(_) | Error::Connect(_)), "{err:?}");
    assert!(err.is_retryable());
}

async fn api_error(status: &'static str, headers: &'static str, body: &'static str) -> Error {
    let server = TestServer::start(Behavior::Respond(status, headers, body)).await;
    server
        .client()
        .trigger("ch", "e", &json!({}))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn client_errors_are_fatal() {
    for (status, code) in [
        ("400 Bad Request", 400),
        ("401 Unauthorized", 401),
        ("403 Forbidden", 403),
        ("404 Not Found", 404),
        ("413 Payload Too Large", 413),
    ] {
        let err = api_error(status, "", "{\"error\":\"nope\"}").await;
        match &err {
            Error::Api {
                status,
                body,
                retry_after,
            } => {
                assert_eq!(*status, code);
                assert_eq!(body, "{\"error\":\"nope\"}");
                assert_eq!(*retry_after, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(!err.is_retryable(), "{code}");
        assert_eq!(err.status(), Some(code));
    }
}

#[tokio::test]
async fn server_errors_and_throttling_are_retryable() {
    for status in [
        "500 Internal Server Error",
        "502 Bad Gateway",
        "503 Service Unavailable",
    ] {
        let err = api_error(status, "", "oops").await;
        assert!(err.is_retryable(), "{err:?}");
    }
    let err = api_error("429 Too Many Requests", "retry-after: 7\r\n", "slow down").await;
    assert!(matches!(err, Error::Api { status: 429, .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    let err = api_error("503 Service Unavailable", "retry-after: 2\r\n", "").await;
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
}

#[tokio::test]
async fn non_json_answers_are_decode_errors() {
    let server = TestServer::start(Behavior::Respond("200 OK", "", "<html>proxy</html>")).await;
    let err = server
        .client()
        .trigger("ch", "e", &json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Decode { status: 200, body, .. } if body == "<html>proxy</html>"),
        "{err:?}"
    );
    assert!(!err.is_retryable());

    let server = TestServer::start(Behavior::Respond("200 OK", "", r#"{"users":"nope"}"#)).await;
    let err = server.client().users("presence-x").await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");

    // An error status with a non-JSON body is still an API error with the text.
    let err = api_error("502 Bad Gateway", "", "<html>bad gateway</html>").await;
    assert!(matches!(&err, Error::Api { status: 502, body, .. } if body.contains("bad gateway")));
}

#[tokio::test]
async fn empty_success_bodies_are_accepted() {
    let server = TestServer::start(Behavior::Respond("200 OK", "", "")).await;
    let client = server.client();
    let response = client.trigger("ch", "e", &json!({})).await.unwrap();
    assert!(response.channels.is_empty());
    client.terminate_user_connections("u1").await.unwrap();
}

/// Collects everything the crate logs, at every level.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_contain_secrets() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let ok = TestServer::start(OK).await;
    let failing =
        TestServer::start(Behavior::Respond("500 Internal Server Error", "", "boom")).await;
    let secret = "log-check-secret-value";
    let master = "y5SGF7Zy9CtZTHQQpuI96yWU5XCq9UT2WaiklvA4Cwg=";
    for server in [&ok, &failing] {
        let client = server
            .builder()
            .secret(secret)
            .encryption_master_key_base64(master)
            .build()
            .unwrap();
        let _ = client.trigger("ch", "e", &json!({ "x": 1 })).await;
        let _ = client
            .trigger("private-encrypted-ch", "e", &json!({ "x": 1 }))
            .await;
        let _ = client.channels(&ChannelsQuery::new()).await;
        let err = client.trigger("ch", "e", &json!({})).await.err();
        if let Some(err) = err {
            tracing::error!(error = %err, debug = ?err, "request failed");
        }
        tracing::debug!(?client, "client in use");
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("pusher request"),
        "the crate logs its requests: {text}"
    );
    assert!(text.contains("client in use"));
    for needle in [secret, master, "auth_signature"] {
        assert!(
            !text.contains(needle),
            "`{needle}` leaked into the logs:\n{text}"
        );
    }
}
