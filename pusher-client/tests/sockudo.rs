//! Every HTTP API endpoint and every auth flavour, against a real Sockudo server
//! (start it with `bash .ci/sockudo.sh`), observed through real WebSocket
//! subscriptions.

mod common;

use std::time::Duration;

use common::{Subscriber, sockudo, unique};
use pusher_client::{
    BatchEvent, ChannelAttribute, ChannelsQuery, Client, Error, Event, Limits, PresenceMember,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn trigger_reaches_a_public_subscriber() {
    let server = sockudo();
    let client = server.client();
    let channel = unique("public-");
    let mut sub = Subscriber::connect(&server).await;
    sub.subscribe(&channel, None).await.unwrap();

    client
        .trigger(&channel, "greeting", &json!({ "text": "hello", "n": 1 }))
        .await
        .unwrap();

    let got = sub.next_event(WAIT).await.expect("event delivered");
    assert_eq!(got.event, "greeting");
    assert_eq!(got.channel.as_deref(), Some(channel.as_str()));
    assert_eq!(got.data, json!({ "text": "hello", "n": 1 }));
}

#[tokio::test]
async fn trigger_to_many_channels_with_info() {
    let server = sockudo();
    let client = server.client();
    let a = unique("multi-a-");
    let b = unique("multi-b-");
    let mut sub_a = Subscriber::connect(&server).await;
    let mut sub_b = Subscriber::connect(&server).await;
    sub_a.subscribe(&a, None).await.unwrap();
    sub_b.subscribe(&b, None).await.unwrap();

    let event = Event::json([a.clone(), b.clone()], "fanout", &json!({ "k": "v" }))
        .unwrap()
        .info([ChannelAttribute::SubscriptionCount]);
    let response = client.trigger_event(&event).await.unwrap();
    assert_eq!(
        response.channels[&a].subscription_count,
        Some(1),
        "{response:?}"
    );
    assert_eq!(
        response.channels[&b].subscription_count,
        Some(1),
        "{response:?}"
    );

    assert_eq!(
        sub_a.next_event(WAIT).await.unwrap().data,
        json!({ "k": "v" })
    );
    assert_eq!(
        sub_b.next_event(WAIT).await.unwrap().data,
        json!({ "k": "v" })
    );
}

#[tokio::test]
async fn trigger_to_one_hundred_channels() {
    let server = sockudo();
    let client = server.client();
    let channels: Vec<String> = (0..100).map(|i| unique(&format!("many{i}-"))).collect();
    let mut sub = Subscriber::connect(&server).await;
    sub.subscribe(&channels[99], None).await.unwrap();
    client
        .trigger_event(&Event::new(channels.clone(), "wide", "{}"))
        .await
        .unwrap();
    assert_eq!(sub.next_event(WAIT).await.unwrap().event, "wide");
}

#[tokio::test]
async fn socket_exclusion_skips_the_sender() {
    let server = sockudo();
    let client = server.client();
    let channel = unique("excl-");
    let mut sender = Subscriber::connect(&server).await;
    let mut other = Subscriber::connect(&server).await;
    sender.subscribe(&channel, None).await.unwrap();
    other.subscribe(&channel, None).await.unwrap();

    let event = Event::json([channel.clone()], "moved", &json!({ "x": 1 }))
        .unwrap()
        .exclude_socket(sender.socket_id.clone());
    client.trigger_event(&event).await.unwrap();
    // A second, unexcluded event proves the sender's connection still works.
    client.trigger(&channel, "after", &json!({})).await.unwrap();

    assert_eq!(other.next_event(WAIT).await.unwrap().event, "moved");
    assert_eq!(other.next_event(WAIT).await.unwrap().event, "after");
    assert_eq!(sender.next_event(WAIT).await.unwrap().event, "after");
}

#[tokio::test]
async fn batch_trigger_with_per_event_info() {
    let server = sockudo();
    let client = server.client();
    let public = unique("batch-");
    let presence = unique("presence-batch-");
    let mut sub = Subscriber::connect(&server).await;
    sub.subscribe(&public, None).await.unwrap();
    let mut member = Subscriber::connect(&server).await;
    let auth = client
        .authorize_presence_channel(&member.socket_id, &presence, &PresenceMember::new("u-1"))
        .unwrap();
    member.subscribe(&presence, Some(&auth)).await.unwrap();

    let events = [
        BatchEvent::json(public.clone(), "one", &json!({ "i": 1 }))
            .unwrap()
            .info([ChannelAttribute::SubscriptionCount]),
        BatchEvent::new(presence.clone(), "two", r#"{"i":2}"#).info([ChannelAttribute::UserCount]),
        BatchEvent::new(public.clone(), "three", r#"{"i":3}"#),
    ];
    let response = client.trigger_batch(&events).await.unwrap();
    assert_eq!(response.batch.len(), 3, "{response:?}");
    assert_eq!(
        response.batch[0].subscription_count,
        Some(1),
        "{response:?}"
    );
    assert_eq!(response.batch[1].user_count, Some(1), "{response:?}");

    let first = sub.next_event(WAIT).await.unwrap();
    let third = sub.next_event(WAIT).await.unwrap();
    assert_eq!(
        (first.event.as_str(), third.event.as_str()),
        ("one", "three")
    );
    assert_eq!(third.data, json!({ "i": 3 }));
    assert_eq!(
        member.next_event(WAIT).await.unwrap().data,
        json!({ "i": 2 })
    );
}

#[tokio::test]
async fn private_channel_accepts_our_authorization_and_rejects_a_forged_one() {
    let server = sockudo();
    let client = server.client();
    let channel = unique("private-");
    let mut sub = Subscriber::connect(&server).await;
    let auth = client.authorize_channel(&sub.socket_id, &channel).unwrap();
    sub.subscribe(&channel, Some(&auth)).await.unwrap();
    client
        .trigger(&channel, "secret-ish", &json!({ "ok": true }))
        .await
        .unwrap();
    assert_eq!(
        sub.next_event(WAIT).await.unwrap().data,
        json!({ "ok": true })
    );

    // Authorization for another socket is refused by the server.
    let mut intruder = Subscriber::connect(&server).await;
    let other = unique("private-");
    let stolen = client.authorize_channel(&sub.socket_id, &other).unwrap();
    assert!(intruder.subscribe(&other, Some(&stolen)).await.is_err());

    // So is one signed with another secret.
    let forger = server.builder().secret("not-the-secret").build().unwrap();
    let forged = forger
        .authorize_channel(&intruder.socket_id, &other)
        .unwrap();
    assert!(intruder.subscribe(&other, Some(&forged)).await.is_err());
}

#[tokio::test]
async fn encrypted_channel_delivers_ciphertext_only() {
    let server = sockudo();
    let client = server.client();
    let channel = unique("private-encrypted-");
    let mut sub = Subscriber::connect(&server).await;
    let auth = client.authorize_channel(&sub.socket_id, &channel).unwrap();
    assert!(auth.shared_secret().is_some());
    sub.subscribe(&channel, Some(&auth)).await.unwrap();

    client
        .trigger(&channel, "sealed", &json!({ "card": "4242" }))
        .await
        .unwrap();
    let got = sub.next_event(WAIT).await.unwrap();
    assert!(got.data.get("nonce").is_some() && got.data.get("ciphertext").is_some());
    assert!(
        !got.data.to_string().contains("4242"),
        "server saw plaintext"
    );
    // The subscriber holds only the shared secret from its authorization.
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(auth.shared_secret().unwrap())
        .unwrap();
    let opened = open_with_shared_secret(&key, &got.data.to_string());
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&opened).unwrap(),
        json!({ "card": "4242" })
    );

    // Batches to encrypted channels are sealed as well.
    client
        .trigger_batch(&[BatchEvent::new(
            channel.clone(),
            "sealed-batch",
            r#"{"b":1}"#,
        )])
        .await
        .unwrap();
    let got = sub.next_event(WAIT).await.unwrap();
    assert_eq!(
        open_with_shared_secret(&key, &got.data.to_string()),
        r#"{"b":1}"#
    );
}

/// Opens a secretbox the way a subscriber does: with the per-channel key only.
fn open_with_shared_secret(key: &[u8], sealed: &str) -> String {
    use base64::Engine as _;
    use crypto_secretbox::aead::{Aead, KeyInit};
    let v: serde_json::Value = serde_json::from_str(sealed).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let nonce = b64.decode(v["nonce"].as_str().unwrap()).unwrap();
    let ct = b64.decode(v["ciphertext"].as_str().unwrap()).unwrap();
    let cipher = crypto_secretbox::XSalsa20Poly1305::new_from_slice(key).unwrap();
    let pt = cipher
        .decrypt(crypto_secretbox::Nonce::from_slice(&nonce), ct.as_slice())
        .expect("opens with the shared secret");
    String::from_utf8(pt).unwrap()
}

#[tokio::test]
async fn presence_users_channel_info_and_channel_list() {
    let server = sockudo();
    let client = server.client();
    let channel = unique("presence-room-");
    let mut alice = Subscriber::connect(&server).await;
    let mut bob = Subscriber::connect(&server).await;
    for (sub, id) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        let member = PresenceMember::new(id).info(json!({ "name": id }));
        let auth = client
            .authorize_presence_channel(&sub.socket_id, &channel, &member)
            .unwrap();
        sub.subscribe(&channel, Some(&auth)).await.unwrap();
    }

    let mut users: Vec<String> = client
        .users(&channel)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    users.sort();
    assert_eq!(users, ["alice", "bob"]);

    let info = client
        .channel(
            &channel,
            [
                ChannelAttribute::UserCount,
                ChannelAttribute::SubscriptionCount,
            ],
        )
        .await
        .unwrap();
    assert_eq!(info.occupied, Some(true));
    assert_eq!(info.user_count, Some(2));
    assert_eq!(info.subscription_count, Some(2));

    let list = client
        .channels(
            &ChannelsQuery::new()
                .prefix("presence-room-")
                .info([ChannelAttribute::UserCount]),
        )
        .await
        .unwrap();
    assert_eq!(list.channels[&channel].user_count, Some(2), "{list:?}");

    let all = client.channels(&ChannelsQuery::new()).await.unwrap();
    assert!(all.channels.contains_key(&channel));
    let none = client
        .channels(&ChannelsQuery::new().prefix("no-such-prefix-"))
        .await
        .unwrap();
    assert!(none.channels.is_empty());

    let empty = client.channel(&unique("vacant-"), []).await.unwrap();
    assert_eq!(empty.occupied, Some(false));
}

#[tokio::test]
async fn send_to_user_and_terminate_connections() {
    let server = sockudo();
    let client = server.client();
    let user_id = unique("user-");
    let mut sub = Subscriber::connect(&server).await;
    let auth = client
        .authenticate_user(&sub.socket_id, &json!({ "id": user_id, "name": "Ada" }))
        .unwrap();
    sub.sign_in(&auth, &user_id).await.unwrap();

    client
        .send_to_user(&user_id, "direct", &json!({ "note": "just for you" }))
        .await
        .unwrap();
    let got = sub.next_event(WAIT).await.expect("server-to-user event");
    assert_eq!(got.event, "direct");
    assert_eq!(got.data, json!({ "note": "just for you" }));

    client.terminate_user_connections(&user_id).await.unwrap();
    assert!(
        sub.closed_within(WAIT).await,
        "connection was not terminated"
    );
}

#[tokio::test]
async fn wrong_secret_is_a_fatal_api_error() {
    let server = sockudo();
    let client = server.builder().secret("wrong").build().unwrap();
    let err = client.trigger("any", "e", &json!({})).await.unwrap_err();
    match &err {
        Error::Api { status, body, .. } => {
            assert_eq!(*status, 401, "{body}");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains("wrong"));
}

#[tokio::test]
async fn unknown_app_is_an_api_error() {
    let server = sockudo();
    let client = server.builder().app_id("no-such-app").build().unwrap();
    let err = client.trigger("any", "e", &json!({})).await.unwrap_err();
    assert!(
        matches!(err, Error::Api { status, .. } if (400..500).contains(&status)),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn server_side_limit_surfaces_as_a_typed_error() {
    // The client allows 1 MiB but this Sockudo app is limited to 100 KB: the
    // server's refusal comes back as `Error::Api`, not a panic or a success.
    let server = sockudo();
    let client = server
        .builder()
        .limits(
            Limits::default()
                .max_payload_bytes(1 << 20)
                .max_channel_name_len(200),
        )
        .build()
        .unwrap();
    let big = "x".repeat(200 * 1024);
    let err = client
        .trigger_event(&Event::new([unique("big-")], "big", big))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Api { status, .. } if (400..500).contains(&status)),
        "{err:?}"
    );
}

#[tokio::test]
async fn clones_share_one_pool() {
    let server = sockudo();
    let client: Client = server.client();
    let channel = unique("pool-");
    let mut sub = Subscriber::connect(&server).await;
    sub.subscribe(&channel, None).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            let channel = channel.clone();
            tokio::spawn(async move { client.trigger(&channel, "n", &json!({ "i": i })).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut seen = 0;
    while sub.next_event(Duration::from_secs(2)).await.is_some() {
        seen += 1;
        if seen == 20 {
            break;
        }
    }
    assert_eq!(seen, 20);
}

#[tokio::test]
async fn http2_prior_knowledge_against_sockudo() {
    let server = sockudo();
    let client = server
        .builder()
        .http2_prior_knowledge(true)
        .build()
        .unwrap();
    let channel = unique("h2c-");
    let mut sub = Subscriber::connect(&server).await;
    sub.subscribe(&channel, None).await.unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let client = client.clone();
            let channel = channel.clone();
            tokio::spawn(async move { client.trigger(&channel, "h2", &json!({ "i": i })).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for _ in 0..10 {
        assert_eq!(sub.next_event(WAIT).await.unwrap().event, "h2");
    }
    let info = client
        .channel(&channel, [ChannelAttribute::SubscriptionCount])
        .await
        .unwrap();
    assert_eq!(info.subscription_count, Some(1));
}
