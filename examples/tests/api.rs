//! The signup server's HTTP API with plain requests against the real binary:
//! bad requests get clear 4xx JSON errors and start nothing; a Pusher target
//! that is down makes the notifying step retry and fail the run visibly,
//! while the server keeps serving.

mod common;

use std::time::Duration;

use common::{Server, http, unique_email};
use serde_json::Value;

async fn run_count(server: &Server) -> usize {
    let (status, body) = server.get("/api/runs").await;
    assert_eq!(status, 200, "{body}");
    body["runs"].as_array().unwrap().len()
}

/// Posts `body` to /api/signup with `content_type`; the status and the JSON
/// error it answered with.
async fn post_signup(
    server: &Server,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let res = http()
        .post(format!("{}/api/signup", server.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let content = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    assert!(
        content.starts_with("application/json"),
        "answered {status} with `{content}`: {text}"
    );
    (status, serde_json::from_str(&text).unwrap())
}

fn assert_error(what: &str, status: u16, body: &Value, expected: impl Fn(u16) -> bool) {
    assert!(expected(status), "{what}: answered {status}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    let code = body["error"]["code"].as_str().unwrap_or_default();
    assert!(
        !message.is_empty() && !code.is_empty(),
        "{what}: no error code and message in {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_and_start_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[("SIGNUP_SLEEP", "0s"), ("SIGNUP_FAILURE_RATE", "0")],
    )
    .await;
    let json = "application/json";

    // One good signup first, so that "nothing started" is not "nothing works".
    server.signup(&unique_email("first")).await;
    let before = run_count(&server).await;
    assert_eq!(before, 1);

    let (status, body) = post_signup(&server, json, r#"{"email": "ada@example.com""#).await;
    assert_error("malformed JSON", status, &body, |s| s == 400);
    assert_eq!(body["error"]["code"], "malformed_json", "{body}");

    let (status, body) = post_signup(&server, json, "{}").await;
    assert_error("missing email", status, &body, |s| (400..500).contains(&s));
    assert!(
        body["error"]["message"].as_str().unwrap().contains("email"),
        "the error does not name the missing field: {body}"
    );

    let (status, body) = post_signup(&server, json, r#"{"email": 42}"#).await;
    assert_error("email not a string", status, &body, |s| {
        (400..500).contains(&s)
    });

    for bad in ["not-an-email", "ada@localhost", "", "a b@example.com"] {
        let (status, body) = post_signup(
            &server,
            json,
            serde_json::json!({ "email": bad }).to_string(),
        )
        .await;
        assert_error(&format!("invalid email `{bad}`"), status, &body, |s| {
            s == 422
        });
        assert_eq!(body["error"]["code"], "invalid_email", "{body}");
    }

    let oversize = serde_json::json!({
        "email": "ada@example.com",
        "padding": "x".repeat(17 * 1024),
    })
    .to_string();
    let (status, body) = post_signup(&server, json, oversize).await;
    assert_error("body over 16 KiB", status, &body, |s| s == 413);

    let (status, body) =
        post_signup(&server, "text/plain", r#"{"email": "ada@example.com"}"#).await;
    assert_error("wrong content type", status, &body, |s| s == 415);

    let (status, body) = server
        .get("/api/runs/0190b6a0-7c4e-7a1d-9f3e-2b5c8d4e6f70")
        .await;
    assert_error("unknown run", status, &body, |s| s == 404);
    let (status, body) = server.get("/api/runs/not-a-uuid").await;
    assert_error("not a run id", status, &body, |s| s == 400);

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        run_count(&server).await,
        before,
        "a bad request started a run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pusher_target_that_is_down_fails_the_run_and_the_server_keeps_serving() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let pusher_url = format!("http://down-key:down-secret@127.0.0.1:{closed}/apps/down");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("SIGNUP_SLEEP", "0s"),
            ("SIGNUP_FAILURE_RATE", "0"),
            ("PUSHER_URL", &pusher_url),
        ],
    )
    .await;

    let started = server.signup(&unique_email("offline")).await;
    let run_id = started["runId"].as_str().unwrap();
    let view = server
        .wait_for_run(run_id, Duration::from_secs(90), |v| {
            matches!(v["status"].as_str(), Some("failed" | "completed"))
        })
        .await;

    assert_eq!(view["status"], "failed", "{view:#}");
    let error = view["error"].as_str().unwrap_or_default();
    assert!(
        error.to_lowercase().contains("pusher"),
        "the run's error does not say Pusher is the problem: `{error}`"
    );
    let steps = view["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "{view:#}");
    let onboarding = &steps[3];
    assert_eq!(onboarding["name"], "send_onboarding_email", "{view:#}");
    assert_eq!(onboarding["state"], "failed", "{view:#}");
    assert!(
        onboarding["attempts"].as_u64().unwrap() > 1,
        "the notifying step was not retried: {view:#}"
    );
    assert!(
        onboarding["lastError"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("pusher"),
        "{view:#}"
    );
    for step in &steps[..2] {
        assert_eq!(step["state"], "completed", "{view:#}");
    }

    // Still serving.
    let mut server = server;
    assert!(server.is_running(), "{}", server.log());
    let (status, _) = server.get("/api/config").await;
    assert_eq!(status, 200);
    let again = server.signup(&unique_email("again")).await;
    assert!(again["runId"].is_string());
    let (status, _) = server
        .get(&format!("/api/runs/{}", again["runId"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
}

/// Knowing someone's email (it is on the public channel) must not give
/// access to their private channel: every signup gets a fresh user id and a
/// token for that id only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_up_with_someone_elses_email_gives_no_access_to_their_channel() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[("SIGNUP_SLEEP", "0s"), ("SIGNUP_FAILURE_RATE", "0")],
    )
    .await;
    let email = unique_email("alice");
    let alice = server.signup(&email).await;
    let mallory = server.signup(&email).await;
    assert_ne!(alice["userId"], mallory["userId"], "{alice} {mallory}");

    let auth = |channel: &str, token: &str| {
        let form = [
            ("socket_id", "123.456"),
            ("channel_name", channel),
            ("token", token),
        ];
        http()
            .post(format!("{}/pusher/auth", server.url))
            .form(&form)
            .send()
    };
    let alice_channel = alice["channel"].as_str().unwrap();
    let res = auth(alice_channel, mallory["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let res = auth(alice_channel, alice["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["auth"].as_str().unwrap().contains(':'), "{body}");
}
