//! Webhooks: verify that a request came from Pusher and parse its events.
//!
//! Pusher signs each webhook body with HMAC-SHA256 under the app secret and sends
//! the app key in `X-Pusher-Key` and the hex signature in `X-Pusher-Signature`.
//! A [`Verifier`] holds one or more key/secret pairs (so secrets can be rotated),
//! compares signatures in constant time and returns a typed [`Webhook`].
//! [`Client::verify_webhook`](crate::Client::verify_webhook) does the same with the
//! client's credentials.

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::error::{Error, Result};
use crate::signing::hmac_sha256;

/// Name of the header carrying the app key.
pub const KEY_HEADER: &str = "X-Pusher-Key";
/// Name of the header carrying the body signature.
pub const SIGNATURE_HEADER: &str = "X-Pusher-Signature";

/// A verified webhook delivery.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Webhook {
    /// When Pusher created the webhook, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The events, in the order Pusher sent them.
    pub events: Vec<WebhookEvent>,
}

/// One event of a webhook.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WebhookEvent {
    /// The channel gained its first subscriber.
    ChannelOccupied {
        /// The channel.
        channel: String,
    },
    /// The channel lost its last subscriber.
    ChannelVacated {
        /// The channel.
        channel: String,
    },
    /// A user joined a presence channel.
    MemberAdded {
        /// The presence channel.
        channel: String,
        /// The user's id.
        user_id: String,
    },
    /// A user left a presence channel.
    MemberRemoved {
        /// The presence channel.
        channel: String,
        /// The user's id.
        user_id: String,
    },
    /// A client sent an event on a private or presence channel.
    ClientEvent {
        /// The channel.
        channel: String,
        /// The event name (`client-...`).
        event: String,
        /// The event data as the client sent it (ciphertext JSON on encrypted
        /// channels: see [`MasterKey::decrypt`](crate::encryption::MasterKey::decrypt)).
        data: String,
        /// The sender's socket id.
        socket_id: String,
        /// The sender's user id, on presence channels.
        user_id: Option<String>,
    },
    /// A client subscribed to a cache channel that holds no cached event.
    CacheMiss {
        /// The cache channel.
        channel: String,
    },
    /// A channel's subscription count changed.
    SubscriptionCount {
        /// The channel.
        channel: String,
        /// The new number of subscriptions.
        subscription_count: u64,
    },
    /// An event of a kind this version does not know, or a known kind whose fields
    /// are not as documented. Kept whole rather than dropped.
    Unknown {
        /// The `name` field, if any.
        name: String,
        /// The whole event object.
        payload: Value,
    },
}

impl WebhookEvent {
    /// The channel the event concerns, when it names one.
    #[must_use]
    pub fn channel(&self) -> Option<&str> {
        match self {
            WebhookEvent::ChannelOccupied { channel }
            | WebhookEvent::ChannelVacated { channel }
            | WebhookEvent::MemberAdded { channel, .. }
            | WebhookEvent::MemberRemoved { channel, .. }
            | WebhookEvent::ClientEvent { channel, .. }
            | WebhookEvent::CacheMiss { channel }
            | WebhookEvent::SubscriptionCount { channel, .. } => Some(channel),
            WebhookEvent::Unknown { payload, .. } => payload.get("channel")?.as_str(),
        }
    }

    fn from_value(value: Value) -> Self {
        let Value::Object(map) = value else {
            return WebhookEvent::Unknown {
                name: String::new(),
                payload: value,
            };
        };
        let name = str_field(&map, "name").unwrap_or_default();
        match Self::known(&name, &map) {
            Some(event) => event,
            None => WebhookEvent::Unknown {
                name,
                payload: Value::Object(map),
            },
        }
    }

    fn known(name: &str, m: &Map<String, Value>) -> Option<Self> {
        let channel = || str_field(m, "channel");
        Some(match name {
            "channel_occupied" => WebhookEvent::ChannelOccupied {
                channel: channel()?,
            },
            "channel_vacated" => WebhookEvent::ChannelVacated {
                channel: channel()?,
            },
            "member_added" => WebhookEvent::MemberAdded {
                channel: channel()?,
                user_id: str_field(m, "user_id")?,
            },
            "member_removed" => WebhookEvent::MemberRemoved {
                channel: channel()?,
                user_id: str_field(m, "user_id")?,
            },
            "client_event" => WebhookEvent::ClientEvent {
                channel: channel()?,
                event: str_field(m, "event")?,
                data: match m.get("data")? {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
                socket_id: str_field(m, "socket_id")?,
                user_id: str_field(m, "user_id"),
            },
            "cache_miss" => WebhookEvent::CacheMiss {
                channel: channel()?,
            },
            "subscription_count" => WebhookEvent::SubscriptionCount {
                channel: channel()?,
                subscription_count: m.get("subscription_count")?.as_u64()?,
            },
            _ => return None,
        })
    }
}

fn str_field(m: &Map<String, Value>, key: &str) -> Option<String> {
    match m.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[derive(Deserialize)]
struct RawWebhook {
    time_ms: u64,
    events: Vec<Value>,
}

/// Parses a webhook body without verifying it. Prefer [`Verifier::verify`].
///
/// # Errors
///
/// [`Error::WebhookBody`] if the body is not `{"time_ms":..., "events":[...]}`.
pub fn parse(body: &[u8]) -> Result<Webhook> {
    let raw: RawWebhook = serde_json::from_slice(body).map_err(Error::WebhookBody)?;
    Ok(Webhook {
        time_ms: raw.time_ms,
        events: raw
            .events
            .into_iter()
            .map(WebhookEvent::from_value)
            .collect(),
    })
}

/// Verifies webhook signatures against one or more key/secret pairs.
///
/// ```
/// use pusher_client::webhook::{Verifier, WebhookEvent};
///
/// let body = br#"{"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"test"}]}"#;
/// let signature = pusher_client::signing::hmac_sha256_hex("new-secret", std::str::from_utf8(body).unwrap());
///
/// let verifier = Verifier::new("key", "old-secret").token("key", "new-secret");
/// let webhook = verifier.verify(Some("key"), Some(&signature), body)?;
/// assert_eq!(webhook.events, [WebhookEvent::ChannelOccupied { channel: "test".into() }]);
/// assert!(verifier.verify(Some("key"), Some("00"), body).is_err());
/// # Ok::<(), pusher_client::Error>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Verifier {
    tokens: Vec<(String, Secret)>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "keys",
                &self.tokens.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier accepting webhooks signed with `secret` under `key`.
    pub fn new(key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            tokens: vec![(key.into(), Secret::new(secret.into()))],
        }
    }

    pub(crate) fn from_tokens(tokens: Vec<(String, Secret)>) -> Self {
        Self { tokens }
    }

    /// Also accepts webhooks signed with this key/secret pair.
    pub fn token(mut self, key: impl Into<String>, secret: impl Into<String>) -> Self {
        self.tokens.push((key.into(), Secret::new(secret.into())));
        self
    }

    /// Checks `X-Pusher-Key` and `X-Pusher-Signature` against `body` and parses it.
    ///
    /// The signature is compared in constant time with every secret configured for
    /// the key.
    ///
    /// # Errors
    ///
    /// [`Error::WebhookMissingHeader`], [`Error::WebhookUnknownKey`],
    /// [`Error::WebhookInvalidSignature`] or [`Error::WebhookBody`].
    pub fn verify(
        &self,
        key: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Webhook> {
        let key = key.ok_or(Error::WebhookMissingHeader { header: KEY_HEADER })?;
        let signature = signature.ok_or(Error::WebhookMissingHeader {
            header: SIGNATURE_HEADER,
        })?;
        let mut known_key = false;
        let mut valid = subtle::Choice::from(0);
        let given = decode_signature(signature.trim());
        for (k, secret) in &self.tokens {
            if k != key {
                continue;
            }
            known_key = true;
            let expected = hmac_sha256(secret.expose().as_bytes(), body);
            if let Some(given) = &given {
                valid |= expected.ct_eq(given);
            }
        }
        if !known_key {
            return Err(Error::WebhookUnknownKey {
                key: key.to_owned(),
            });
        }
        if !bool::from(valid) {
            return Err(Error::WebhookInvalidSignature);
        }
        parse(body)
    }

    /// Like [`verify`](Self::verify), reading the two headers from a header map.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify).
    pub fn verify_headers(
        &self,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> Result<Webhook> {
        let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
        self.verify(get(KEY_HEADER), get(SIGNATURE_HEADER), body)
    }
}

fn decode_signature(hex_sig: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_sig, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Vector from the Go server library's webhook tests.
    #[test]
    fn published_signature_vector() {
        let v = Verifier::new("key", "secret");
        let sig = "2677ad3e7c090b2fa2c0fb13020d66d5420879b8316eb356a2d60fb9073bc778";
        let body = br#"{"hello":"world"}"#;
        // The signature matches; the body is not a Pusher webhook, so parsing fails
        // after verification succeeded.
        assert!(matches!(
            v.verify(Some("key"), Some(sig), body),
            Err(Error::WebhookBody(_))
        ));
        assert!(matches!(
            v.verify(Some("narr you're going down!"), Some(sig), body),
            Err(Error::WebhookUnknownKey { .. })
        ));
        let mut bad = sig.to_owned();
        bad.replace_range(0..1, "3");
        assert!(matches!(
            v.verify(Some("key"), Some(&bad), body),
            Err(Error::WebhookInvalidSignature)
        ));
    }

    fn signed(secret: &str, body: &str) -> String {
        crate::signing::hmac_sha256_hex(secret, body)
    }

    #[test]
    fn parses_every_kind_and_keeps_unknown_ones() {
        let body = json!({
            "time_ms": 1_700_000_000_000u64,
            "events": [
                {"name": "channel_occupied", "channel": "a"},
                {"name": "channel_vacated", "channel": "a"},
                {"name": "member_added", "channel": "presence-r", "user_id": "u1"},
                {"name": "member_removed", "channel": "presence-r", "user_id": 7},
                {"name": "client_event", "channel": "private-c", "event": "client-typing",
                 "data": "{\"x\":1}", "socket_id": "1.2", "user_id": "u1"},
                {"name": "cache_miss", "channel": "cache-c"},
                {"name": "subscription_count", "channel": "a", "subscription_count": 5},
                {"name": "brand_new_kind", "channel": "a", "extra": true},
                {"name": "member_added", "channel": "presence-r"}
            ]
        })
        .to_string();
        let v = Verifier::new("k", "s");
        let hook = v
            .verify(Some("k"), Some(&signed("s", &body)), body.as_bytes())
            .unwrap();
        assert_eq!(hook.time_ms, 1_700_000_000_000);
        assert_eq!(hook.events.len(), 9);
        assert_eq!(
            hook.events[0],
            WebhookEvent::ChannelOccupied {
                channel: "a".into()
            }
        );
        assert_eq!(
            hook.events[1],
            WebhookEvent::ChannelVacated {
                channel: "a".into()
            }
        );
        assert_eq!(
            hook.events[2],
            WebhookEvent::MemberAdded {
                channel: "presence-r".into(),
                user_id: "u1".into()
            }
        );
        assert_eq!(
            hook.events[3],
            WebhookEvent::MemberRemoved {
                channel: "presence-r".into(),
                user_id: "7".into()
            }
        );
        assert_eq!(
            hook.events[4],
            WebhookEvent::ClientEvent {
                channel: "private-c".into(),
                event: "client-typing".into(),
                data: "{\"x\":1}".into(),
                socket_id: "1.2".into(),
                user_id: Some("u1".into()),
            }
        );
        assert_eq!(
            hook.events[5],
            WebhookEvent::CacheMiss {
                channel: "cache-c".into()
            }
        );
        assert_eq!(
            hook.events[6],
            WebhookEvent::SubscriptionCount {
                channel: "a".into(),
                subscription_count: 5
            }
        );
        assert!(
            matches!(&hook.events[7], WebhookEvent::Unknown { name, payload }
            if name == "brand_new_kind" && payload["extra"] == json!(true))
        );
        assert!(
            matches!(&hook.events[8], WebhookEvent::Unknown { name, .. } if name == "member_added")
        );
        assert_eq!(hook.events[7].channel(), Some("a"));
    }

    #[test]
    fn rotation_and_headers() {
        let body = r#"{"time_ms":1,"events":[]}"#;
        let v = Verifier::new("k1", "s1")
            .token("k2", "s2")
            .token("k1", "s1-new");
        assert!(
            v.verify(Some("k1"), Some(&signed("s1", body)), body.as_bytes())
                .is_ok()
        );
        assert!(
            v.verify(Some("k1"), Some(&signed("s1-new", body)), body.as_bytes())
                .is_ok()
        );
        assert!(
            v.verify(Some("k2"), Some(&signed("s2", body)), body.as_bytes())
                .is_ok()
        );
        assert!(matches!(
            v.verify(Some("k2"), Some(&signed("s1", body)), body.as_bytes()),
            Err(Error::WebhookInvalidSignature)
        ));
        assert!(matches!(
            v.verify(None, Some("x"), body.as_bytes()),
            Err(Error::WebhookMissingHeader { header: KEY_HEADER })
        ));
        assert!(matches!(
            v.verify(Some("k1"), None, body.as_bytes()),
            Err(Error::WebhookMissingHeader {
                header: SIGNATURE_HEADER
            })
        ));
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-pusher-key", "k2".parse().unwrap());
        headers.insert("x-pusher-signature", signed("s2", body).parse().unwrap());
        assert!(v.verify_headers(&headers, body.as_bytes()).is_ok());
        assert!(!format!("{v:?}").contains("s1"));
    }

    #[test]
    fn tampered_body_is_rejected() {
        let body = r#"{"time_ms":1,"events":[]}"#;
        let sig = signed("s", body);
        let v = Verifier::new("k", "s");
        assert!(matches!(
            v.verify(Some("k"), Some(&sig), br#"{"time_ms":2,"events":[]}"#),
            Err(Error::WebhookInvalidSignature)
        ));
    }
}
