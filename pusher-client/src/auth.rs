//! Channel authorization and user authentication: the JSON bodies pusher-js
//! expects from your auth endpoints.
//!
//! * private channel: `{"auth":"KEY:HMAC(socket_id:channel)"}`
//! * presence channel: `{"auth":"KEY:HMAC(socket_id:channel:channel_data)","channel_data":"..."}`
//! * encrypted channel: `{"auth":"KEY:HMAC(socket_id:channel)","shared_secret":"<base64 channel key>"}`
//! * user sign-in: `{"auth":"KEY:HMAC(socket_id::user::user_data)","user_data":"..."}`
//!
//! Build them with [`Client::authorize_channel`](crate::Client::authorize_channel),
//! [`Client::authorize_presence_channel`](crate::Client::authorize_presence_channel)
//! and [`Client::authenticate_user`](crate::Client::authenticate_user), then answer
//! pusher-js with [`ChannelAuth::to_json`] / [`UserAuth::to_json`].

use serde::Serialize;
use std::fmt;

use crate::config::Config;
use crate::encryption::is_encrypted_channel;
use crate::error::{Error, Result};
use crate::signing::hmac_sha256;
use crate::validation::check_socket_id;

/// The answer to a pusher-js channel authorization request.
///
/// ```
/// use pusher_client::Client;
///
/// let client = Client::builder()
///     .app_id("1")
///     .key("278d425bdf160c739803")
///     .secret("7ad3773142a6692b25b8")
///     .build()?;
/// let auth = client.authorize_channel("1234.1234", "private-foobar")?;
/// assert_eq!(
///     auth.to_json(),
///     r#"{"auth":"278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"}"#,
/// );
/// # Ok::<(), pusher_client::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct ChannelAuth {
    auth: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared_secret: Option<String>,
}

/// Signatures and the channel's shared secret are not shown: they would let
/// whoever reads a log subscribe, or decrypt the channel.
impl fmt::Debug for ChannelAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelAuth")
            .field("auth", &"<redacted>")
            .field("channel_data", &self.channel_data)
            .field(
                "shared_secret",
                &self.shared_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl ChannelAuth {
    /// The `auth` field: `KEY:SIGNATURE`.
    #[must_use]
    pub fn auth(&self) -> &str {
        &self.auth
    }

    /// The presence `channel_data` (JSON text), for presence channels.
    #[must_use]
    pub fn channel_data(&self) -> Option<&str> {
        self.channel_data.as_deref()
    }

    /// The base64 per-channel key, for `private-encrypted-` channels.
    #[must_use]
    pub fn shared_secret(&self) -> Option<&str> {
        self.shared_secret.as_deref()
    }

    /// The JSON body to return to pusher-js.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("strings always serialize")
    }
}

/// The answer to a pusher-js user authentication (`signin`) request.
///
/// ```
/// use pusher_client::Client;
/// use serde_json::json;
///
/// let client = Client::builder()
///     .app_id("1")
///     .key("278d425bdf160c739803")
///     .secret("7ad3773142a6692b25b8")
///     .build()?;
/// let auth = client.authenticate_user("1234.1234", &json!({ "id": "12345" }))?;
/// assert_eq!(auth.user_data(), r#"{"id":"12345"}"#);
/// assert_eq!(
///     auth.auth(),
///     "278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba",
/// );
/// # Ok::<(), pusher_client::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct UserAuth {
    auth: String,
    user_data: String,
}

/// The signature is not shown.
impl fmt::Debug for UserAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserAuth")
            .field("auth", &"<redacted>")
            .field("user_data", &self.user_data)
            .finish()
    }
}

impl UserAuth {
    /// The `auth` field: `KEY:SIGNATURE`.
    #[must_use]
    pub fn auth(&self) -> &str {
        &self.auth
    }

    /// The signed `user_data` (JSON text).
    #[must_use]
    pub fn user_data(&self) -> &str {
        &self.user_data
    }

    /// The JSON body to return to pusher-js.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("strings always serialize")
    }
}

/// A presence channel member: `user_id` plus optional `user_info`, shared with the
/// other members of the channel.
///
/// Any `Serialize` value with a `user_id` field works with
/// [`Client::authorize_presence_channel`](crate::Client::authorize_presence_channel);
/// this type is a convenient one.
///
/// ```
/// use pusher_client::PresenceMember;
/// use serde_json::json;
///
/// let member = PresenceMember::new("42").info(json!({ "name": "Ada" }));
/// assert_eq!(
///     serde_json::to_string(&member).unwrap(),
///     r#"{"user_id":"42","user_info":{"name":"Ada"}}"#,
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[must_use]
pub struct PresenceMember {
    user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_info: Option<serde_json::Value>,
}

impl PresenceMember {
    /// A member with the given user id and no extra info.
    pub fn new(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            user_info: None,
        }
    }

    /// Attaches `user_info`, visible to the other members.
    pub fn info(mut self, info: serde_json::Value) -> Self {
        self.user_info = Some(info);
        self
    }
}

fn sign(config: &Config, to_sign: &str) -> String {
    let sig = hmac_sha256(config.secret.expose().as_bytes(), to_sign.as_bytes());
    let mut auth = String::with_capacity(config.key.len() + 65);
    auth.push_str(&config.key);
    auth.push(':');
    auth.push_str(&hex::encode(sig));
    auth
}

pub(crate) fn authorize_channel(
    config: &Config,
    socket_id: &str,
    channel: &str,
) -> Result<ChannelAuth> {
    check_socket_id(socket_id)?;
    config.limits.check_channel(channel)?;
    if channel.starts_with("presence-") {
        return Err(Error::WrongChannelType {
            channel: channel.to_owned(),
            reason: "presence channels need member data: use `authorize_presence_channel`",
        });
    }
    let shared_secret = if is_encrypted_channel(channel) {
        let key = config
            .master_key
            .as_ref()
            .ok_or_else(|| Error::MissingMasterKey {
                channel: channel.to_owned(),
            })?;
        Some(key.shared_secret(channel))
    } else {
        None
    };
    Ok(ChannelAuth {
        auth: sign(config, &format!("{socket_id}:{channel}")),
        channel_data: None,
        shared_secret,
    })
}

pub(crate) fn authorize_presence_channel(
    config: &Config,
    socket_id: &str,
    channel: &str,
    member: &(impl Serialize + ?Sized),
) -> Result<ChannelAuth> {
    check_socket_id(socket_id)?;
    config.limits.check_channel(channel)?;
    if !channel.starts_with("presence-") {
        return Err(Error::WrongChannelType {
            channel: channel.to_owned(),
            reason: "presence data can only be signed for `presence-` channels",
        });
    }
    let channel_data = serde_json::to_string(member).map_err(Error::Serialize)?;
    require_id(&channel_data, "user_id", "presence channel data")?;
    Ok(ChannelAuth {
        auth: sign(config, &format!("{socket_id}:{channel}:{channel_data}")),
        channel_data: Some(channel_data),
        shared_secret: None,
    })
}

pub(crate) fn authenticate_user(
    config: &Config,
    socket_id: &str,
    user: &(impl Serialize + ?Sized),
) -> Result<UserAuth> {
    check_socket_id(socket_id)?;
    let user_data = serde_json::to_string(user).map_err(Error::Serialize)?;
    require_id(&user_data, "id", "user data")?;
    Ok(UserAuth {
        auth: sign(config, &format!("{socket_id}::user::{user_data}")),
        user_data,
    })
}

/// Checks that `json` is an object whose `field` is a non-empty string or a number.
fn require_id(json: &str, field: &'static str, what: &'static str) -> Result<()> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(Error::Serialize)?;
    let ok = match value.get(field) {
        Some(serde_json::Value::String(s)) => !s.is_empty(),
        Some(serde_json::Value::Number(_)) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::MissingUserId { what, field })
    }
}

#[cfg(test)]
mod tests {
    use super::{ChannelAuth, UserAuth};

    use serde_json::json;

    use crate::Client;
    use crate::error::Error;

    #[test]
    fn debug_hides_signatures_and_shared_secrets() {
        let auth = ChannelAuth {
            auth: "key:signature-abc".into(),
            channel_data: None,
            shared_secret: Some("c2VjcmV0LWtleQ==".into()),
        };
        let shown = format!("{auth:?}");
        assert!(
            !shown.contains("signature-abc") && !shown.contains("c2VjcmV0LWtleQ=="),
            "{shown}"
        );
        let user = UserAuth {
            auth: "key:signature-def".into(),
            user_data: "{}".into(),
        };
        assert!(!format!("{user:?}").contains("signature-def"));
    }

    // Credentials and socket id of the worked examples in Pusher's
    // "Generating the authentication string" documentation.
    fn doc_client() -> Client {
        Client::builder()
            .app_id("3")
            .key("278d425bdf160c739803")
            .secret("7ad3773142a6692b25b8")
            .encryption_master_key_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
            .build()
            .unwrap()
    }

    #[test]
    fn documented_private_channel_example() {
        let auth = doc_client()
            .authorize_channel("1234.1234", "private-foobar")
            .unwrap();
        assert_eq!(
            auth.auth(),
            "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        assert_eq!(
            auth.to_json(),
            r#"{"auth":"278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"}"#
        );
    }

    // The published signature covers `"name":"Mr. Pusher"`, the member name of the
    // original example; later revisions of the page renamed the member to
    // "Mr. Channels" in the text but kept the signature, which does not match
    // that text. Every other server library tests the "Mr. Pusher" form.
    #[test]
    fn documented_presence_channel_example() {
        #[derive(serde::Serialize)]
        struct Info {
            name: &'static str,
        }
        #[derive(serde::Serialize)]
        struct Member {
            user_id: u32,
            user_info: Info,
        }
        let member = Member {
            user_id: 10,
            user_info: Info { name: "Mr. Pusher" },
        };
        let auth = doc_client()
            .authorize_presence_channel("1234.1234", "presence-foobar", &member)
            .unwrap();
        assert_eq!(
            auth.channel_data(),
            Some(r#"{"user_id":10,"user_info":{"name":"Mr. Pusher"}}"#)
        );
        assert_eq!(
            auth.auth(),
            "278d425bdf160c739803:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c"
        );
        assert_eq!(
            auth.to_json(),
            r#"{"auth":"278d425bdf160c739803:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c","channel_data":"{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Pusher\"}}"}"#
        );
    }

    #[test]
    fn documented_user_authentication_example() {
        let auth = doc_client()
            .authenticate_user("1234.1234", &json!({"id": "12345"}))
            .unwrap();
        assert_eq!(
            auth.auth(),
            "278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
        );
        assert_eq!(
            auth.to_json(),
            r#"{"auth":"278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba","user_data":"{\"id\":\"12345\"}"}"#
        );
    }

    #[test]
    fn encrypted_channel_auth_carries_the_channel_key() {
        let client = doc_client();
        let auth = client
            .authorize_channel("1234.1234", "private-encrypted-foobar")
            .unwrap();
        // The signature is the plain private-channel signature.
        let plain = crate::signing::hmac_sha256_hex(
            "7ad3773142a6692b25b8",
            "1234.1234:private-encrypted-foobar",
        );
        assert_eq!(auth.auth(), format!("278d425bdf160c739803:{plain}"));
        let key = crate::encryption::MasterKey::from_base64(
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .unwrap();
        assert_eq!(
            auth.shared_secret(),
            Some(key.shared_secret("private-encrypted-foobar").as_str())
        );
    }

    #[test]
    fn rejects_bad_input() {
        let c = doc_client();
        assert!(matches!(
            c.authorize_channel("1234", "private-foobar"),
            Err(Error::InvalidSocketId { .. })
        ));
        assert!(matches!(
            c.authorize_channel("1.1", "private foobar"),
            Err(Error::InvalidChannelName { .. })
        ));
        assert!(matches!(
            c.authorize_channel("1.1", "presence-room"),
            Err(Error::WrongChannelType { .. })
        ));
        assert!(matches!(
            c.authorize_presence_channel("1.1", "private-room", &json!({"user_id": "1"})),
            Err(Error::WrongChannelType { .. })
        ));
        assert!(matches!(
            c.authorize_presence_channel("1.1", "presence-room", &json!({"user_info": {}})),
            Err(Error::MissingUserId { .. })
        ));
        assert!(matches!(
            c.authenticate_user("1.1", &json!({"id": ""})),
            Err(Error::MissingUserId { .. })
        ));
        let no_key = Client::builder()
            .app_id("1")
            .key("k")
            .secret("s")
            .build()
            .unwrap();
        assert!(matches!(
            no_key.authorize_channel("1.1", "private-encrypted-x"),
            Err(Error::MissingMasterKey { .. })
        ));
    }
}
