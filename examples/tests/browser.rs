//! The signup page in Debian's headless Chromium, driven through its real UI
//! (`tests/browser/drive.mjs`, playwright-core with `/usr/bin/chromium`)
//! against the real `signup-server` binary: with the embedded Pusher server,
//! with Sockudo, across a server crash, and with two users side by side.
//!
//! Needs `chromium` (Debian's package), `node` and `npm`; `npm ci` runs in
//! `tests/browser` when its `node_modules` is missing. The Sockudo case needs
//! `bash .ci/sockudo.sh`. Screenshots go to `test-artifacts/` at the
//! workspace root.

mod common;

use std::time::Duration;

use common::{
    BROWSER_LOCK, Browser, SOCKUDO_URL, Server, completed_timeline, messages, require_sockudo,
    run_card, steps_of, timeline, unique_email,
};
use serde_json::{Value, json};

/// Signs up `who` through the form and waits for the page to show the run
/// finished. The welcome email fails at random; when it happens to fail
/// every attempt the run fails as configured, and a new signup is made (at
/// 50% that is 1 run in 64).
async fn signup_until_completed(
    browser: &mut Browser,
    server: &Server,
    page: &str,
    who: &str,
) -> (String, String, Value) {
    for _ in 0..3 {
        let email = unique_email(who);
        let run_id = browser.signup(page, &email).await;
        let snapshot = browser
            .wait_for_run(page, &run_id, &["completed", "failed"])
            .await;
        let card = run_card(&snapshot, &run_id);
        if card["status"] == "completed" {
            return (run_id, email, snapshot);
        }
        let (_, view) = server.get(&format!("/api/runs/{run_id}")).await;
        let welcome = &view["steps"][1];
        assert!(
            welcome["name"] == "send_welcome_email" && welcome["state"] == "failed",
            "run {run_id} failed, and not by exhausting the welcome email's retries:\n{view:#}\npage:\n{snapshot:#}\n{}",
            server.log()
        );
        assert!(
            card["steps"][1]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("SMTP server unavailable"),
            "the page does not show why run {run_id} failed: {card:#}"
        );
    }
    panic!("three signups in a row exhausted the welcome email's retries");
}

/// What a completed signup must look like, on the page and in the API.
async fn assert_completed(server: &Server, snapshot: &Value, run_id: &str, email: &str) {
    let card = run_card(snapshot, run_id);
    assert_eq!(card["status"], "completed", "{card:#}");
    assert_eq!(
        timeline(card),
        completed_timeline(),
        "page timeline: {card:#}"
    );

    let notifications: Vec<&Value> = snapshot["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["runId"] == run_id)
        .collect();
    assert_eq!(
        notifications.len(),
        1,
        "one onboarding notification for run {run_id}: {snapshot:#}"
    );
    assert!(
        notifications[0]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("Welcome aboard, {email}!")),
        "{:#}",
        notifications[0]
    );

    let (status, view) = server.get(&format!("/api/runs/{run_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(view["status"], "completed", "{view:#}");
    assert_eq!(steps_of(&view), completed_timeline(), "{view:#}");
    let notification = &view["result"]["notification"];
    assert_eq!(notification["email"], email, "{view:#}");
    assert_eq!(notification["type"], "onboarding");

    // The page heard it through Pusher, on the user's private channel and on
    // the public one, not only by polling the API.
    let channel = format!("private-user-{}", notification["userId"].as_str().unwrap());
    for channel in [channel.as_str(), "my-channel"] {
        let heard = messages(snapshot, channel, "my-event");
        assert!(
            heard.iter().any(|m| m["data"]["runId"] == run_id
                && m["data"]["idempotencyKey"] == notification["idempotencyKey"]),
            "the page's pusher-js got no `my-event` for run {run_id} on {channel}: {snapshot:#}"
        );
    }

    // Retries show on the page as they happened.
    let attempts = view["steps"][1]["attempts"].as_u64().unwrap();
    let text = card["steps"][1]["text"].as_str().unwrap();
    if attempts > 1 {
        assert!(
            text.contains(&format!("attempt {attempts}")),
            "the timeline hides the welcome email's {attempts} attempts: `{text}`"
        );
    }
    assert_eq!(
        snapshot["consoleErrors"],
        json!([]),
        "the page logged errors"
    );
}

async fn signup_through_the_page(env: &[(&str, &str)], expect_pusher: &str, shot: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), env).await;
    let stdout = server.stdout.lock().unwrap().join("\n");
    assert!(
        stdout.contains(expect_pusher),
        "the server does not say it uses {expect_pusher}:\n{stdout}"
    );
    let mut browser = Browser::launch(dir.path()).await;
    let opened = browser.open("page", &server.url).await;
    assert_eq!(opened["connection"], "connected");

    let (run_id, email, snapshot) =
        signup_until_completed(&mut browser, &server, "page", "ada").await;
    assert_completed(&server, &snapshot, &run_id, &email).await;
    let path = browser.screenshot("page", shot).await;
    assert!(path.is_file());
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_through_the_page_with_the_embedded_pusher_server() {
    let _one_browser = BROWSER_LOCK.lock().await;
    signup_through_the_page(
        &[("SIGNUP_SLEEP", "1s"), ("SIGNUP_FAILURE_RATE", "0.5")],
        "pusher: embedded Pusher-compatible server",
        "signup-embedded.png",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_through_the_page_with_sockudo() {
    require_sockudo().await;
    let _one_browser = BROWSER_LOCK.lock().await;
    signup_through_the_page(
        &[
            ("SIGNUP_SLEEP", "1s"),
            ("SIGNUP_FAILURE_RATE", "0.5"),
            ("PUSHER_URL", SOCKUDO_URL),
            ("PUSHER_HTTP2_PRIOR_KNOWLEDGE", "true"),
        ],
        "pusher: http://127.0.0.1:16001",
        "signup-sockudo.png",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_survives_a_server_crash_during_its_sleep() {
    let _one_browser = BROWSER_LOCK.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("SIGNUP_SLEEP", "4s"), ("SIGNUP_FAILURE_RATE", "0")];
    let server = Server::start(dir.path(), &env).await;
    let mut browser = Browser::launch(dir.path()).await;
    browser.open("page", &server.url).await;
    let email = unique_email("grace");
    let run_id = browser.signup("page", &email).await;

    let view = server
        .wait_for_run(&run_id, Duration::from_secs(20), |v| {
            v["status"] == "sleeping"
        })
        .await;
    let wake_at = view["steps"][2]["wakeAt"].as_i64().unwrap();
    let before = browser.snapshot("page").await;
    assert!(
        before["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["runId"] != run_id.as_str()),
        "notified before the sleep ended: {before:#}"
    );

    let port = server.port;
    server.kill().await;

    // Same working directory (SQLite file, token secret) and HTTP port (the
    // page's origin and local storage); the embedded Pusher server gets a new
    // port, which the page reads from /api/config when it loads.
    let addr = format!("127.0.0.1:{port}");
    let mut env = env.to_vec();
    env.push(("SIGNUP_ADDR", &addr));
    let server = Server::start(dir.path(), &env).await;
    let snapshot = browser.reload("page").await;
    assert!(
        snapshot["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["runId"] == run_id.as_str()),
        "the reloaded page forgot the run: {snapshot:#}"
    );

    let snapshot = browser.wait_for_run("page", &run_id, &["completed"]).await;
    let card = run_card(&snapshot, &run_id);
    assert_eq!(timeline(card), completed_timeline(), "{card:#}");
    assert!(
        snapshot["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["runId"] == run_id.as_str() && n["text"].as_str().unwrap().contains(&email)),
        "{snapshot:#}"
    );

    let (_, view) = server.get(&format!("/api/runs/{run_id}")).await;
    assert_eq!(view["status"], "completed", "{view:#}");
    assert_eq!(steps_of(&view), completed_timeline(), "{view:#}");
    let onboarded_at = view["steps"][3]["startedAt"].as_i64().unwrap();
    assert!(
        onboarded_at >= wake_at,
        "onboarded at {onboarded_at}, before the sleep's end {wake_at}: {view:#}"
    );
    for step in [0, 1, 3] {
        assert_eq!(
            view["steps"][step]["attempts"], 1,
            "a step ran again after the restart: {view:#}"
        );
    }
    assert_eq!(
        snapshot["consoleErrors"],
        json!([]),
        "the page logged errors"
    );
    browser.screenshot("page", "signup-restart.png").await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_see_only_their_own_notifications() {
    let _one_browser = BROWSER_LOCK.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[("SIGNUP_SLEEP", "1s"), ("SIGNUP_FAILURE_RATE", "0")],
    )
    .await;
    let mut browser = Browser::launch(dir.path()).await;
    browser.open("alice", &server.url).await;
    browser.open("bob", &server.url).await;

    let alice = unique_email("alice");
    let bob = unique_email("bob");
    let alice_run = browser.signup("alice", &alice).await;
    let bob_run = browser.signup("bob", &bob).await;
    browser
        .wait_for_run("alice", &alice_run, &["completed"])
        .await;
    browser.wait_for_run("bob", &bob_run, &["completed"]).await;

    let alice_runs = browser
        .call(json!({ "cmd": "storage", "page": "alice" }))
        .await;
    let bob_runs = browser
        .call(json!({ "cmd": "storage", "page": "bob" }))
        .await;
    let alice_page = browser.snapshot("alice").await;
    let bob_page = browser.snapshot("bob").await;
    browser
        .screenshot("alice", "signup-two-users-alice.png")
        .await;
    browser.screenshot("bob", "signup-two-users-bob.png").await;

    for (me, my_run, my_runs, page, other, other_run, other_runs) in [
        (
            &alice,
            &alice_run,
            &alice_runs,
            &alice_page,
            &bob,
            &bob_run,
            &bob_runs,
        ),
        (
            &bob,
            &bob_run,
            &bob_runs,
            &bob_page,
            &alice,
            &alice_run,
            &alice_runs,
        ),
    ] {
        let my_channel = my_runs[0]["channel"].as_str().unwrap();
        let other_channel = other_runs[0]["channel"].as_str().unwrap();
        assert_ne!(my_channel, other_channel);

        let notifications = page["notifications"].as_array().unwrap();
        assert_eq!(notifications.len(), 1, "{me}'s page: {page:#}");
        assert_eq!(notifications[0]["runId"], my_run.as_str());
        for n in notifications {
            let text = n["text"].as_str().unwrap();
            assert!(
                !text.contains(other.as_str()),
                "{me} sees {other}'s notification: {text}"
            );
            assert_ne!(n["runId"], other_run.as_str());
        }
        assert!(
            messages(page, my_channel, "my-event")
                .iter()
                .any(|m| m["data"]["email"] == me.as_str()),
            "{me}'s pusher-js got no notification on {my_channel}: {page:#}"
        );
        assert!(
            page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["channel"] != other_channel),
            "{me}'s pusher-js got messages on {other_channel}: {page:#}"
        );
        // The other user's notification was published while this page
        // listened: the public channel carried it.
        assert!(
            messages(page, "my-channel", "my-event")
                .iter()
                .any(|m| m["data"]["email"] == other.as_str()),
            "{me}'s page never heard of {other} on my-channel: {page:#}"
        );

        // The auth endpoint refuses my token for the other user's channel,
        // and grants it for mine.
        let my_token = my_runs[0]["token"].as_str().unwrap();
        let auth = |channel: &str| {
            common::http()
                .post(format!("{}/pusher/auth", server.url))
                .form(&[
                    ("socket_id", "1234.5678"),
                    ("channel_name", channel),
                    ("token", my_token),
                ])
                .send()
        };
        let refused = auth(other_channel).await.unwrap();
        assert_eq!(refused.status().as_u16(), 403);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_token", "{body}");
        let granted = auth(my_channel).await.unwrap();
        assert_eq!(granted.status().as_u16(), 200);
        let body: Value = granted.json().await.unwrap();
        assert!(
            body["auth"].as_str().is_some_and(|a| a.contains(':')),
            "{body}"
        );
    }
    browser.quit().await;
}
