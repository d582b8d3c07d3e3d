//! The [`Client`]: one cheap-to-clone handle on a shared connection pool.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::auth::{self, ChannelAuth, UserAuth};
use crate::channels::{
    Attributes, ChannelAttribute, ChannelInfo, ChannelList, ChannelsQuery, User, UsersResponse,
};
use crate::config::{ClientBuilder, Config};
use crate::encryption::is_encrypted_channel;
use crate::error::{Error, Result};
use crate::signing::{signed_query, unix_now};
use crate::trigger::{BatchBody, BatchEvent, BatchResponse, Event, EventBody, TriggerResponse};
use crate::validation::{Limits, SERVER_TO_USER_PREFIX, check_socket_id, check_user_id};
use crate::webhook::{Verifier, Webhook};

/// Longest response body kept in an [`Error::Api`].
const MAX_ERROR_BODY: usize = 4096;

/// A client for one Pusher Channels app.
///
/// Cloning is cheap (one reference count); every clone shares the same
/// configuration and HTTP connection pool, so build one at start-up and pass it
/// around. Every request is validated, then signed, then sent; nothing is sent
/// when validation fails.
///
/// ```no_run
/// use pusher_client::{Client, Event, ChannelAttribute};
/// use serde_json::json;
///
/// # async fn run() -> Result<(), pusher_client::Error> {
/// let client = Client::from_env()?; // PUSHER_URL or PUSHER_APP_ID/KEY/SECRET/CLUSTER
/// client.trigger("orders", "order-created", &json!({ "id": 42 })).await?;
///
/// let event = Event::json(["presence-room"], "message", &json!({ "text": "hi" }))?
///     .exclude_socket("1234.5678")
///     .info([ChannelAttribute::UserCount]);
/// let response = client.trigger_event(&event).await?;
/// println!("{:?}", response.channels["presence-room"].user_count);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    http: reqwest::Client,
    events_path: String,
    batch_path: String,
}

impl Inner {
    pub(crate) fn new(config: Config, http: reqwest::Client) -> Self {
        let events_path = format!("/apps/{}/events", config.app_id);
        let batch_path = format!("/apps/{}/batch_events", config.app_id);
        Self {
            config,
            http,
            events_path,
            batch_path,
        }
    }
}

impl Client {
    /// A builder for explicit configuration.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from a `http(s)://KEY:SECRET@HOST[:PORT]/apps/APP_ID` URL.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the URL does not have that shape.
    ///
    /// ```
    /// let client = pusher_client::Client::from_url("https://key:secret@api-eu.pusher.com/apps/123")?;
    /// assert_eq!(client.app_id(), "123");
    /// # Ok::<(), pusher_client::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        ClientBuilder::new().url(url).build()
    }

    /// A client configured from the environment (see [`crate::config`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if credentials are missing or a value is malformed.
    pub fn from_env() -> Result<Self> {
        ClientBuilder::from_env().build()
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    #[cfg(test)]
    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// The app id.
    #[must_use]
    pub fn app_id(&self) -> &str {
        &self.inner.config.app_id
    }

    /// The app key (public; pusher-js needs it too).
    #[must_use]
    pub fn key(&self) -> &str {
        &self.inner.config.key
    }

    /// The API's base URL, such as `https://api-eu.pusher.com`.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.inner.config.base_url
    }

    /// The request timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.inner.config.timeout
    }

    /// The validation limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.config.limits
    }

    /// Sends `event` with `data` serialized to JSON to one channel.
    ///
    /// # Errors
    ///
    /// Validation errors (nothing is sent), or transport and API errors.
    ///
    /// ```no_run
    /// # async fn run(client: pusher_client::Client) -> pusher_client::Result<()> {
    /// client.trigger("orders", "order-created", &serde_json::json!({ "id": 42 })).await?;
    /// # Ok(()) }
    /// ```
    pub async fn trigger(
        &self,
        channel: &str,
        event: &str,
        data: &(impl Serialize + ?Sized),
    ) -> Result<TriggerResponse> {
        self.trigger_event(&Event::json([channel], event, data)?)
            .await
    }

    /// Sends an event to up to 100 channels, with optional socket exclusion and
    /// channel attributes in the response.
    ///
    /// Events to a `private-encrypted-` channel are encrypted with the channel's
    /// key; such an event must target that one channel only.
    ///
    /// # Errors
    ///
    /// Validation errors (nothing is sent), or transport and API errors.
    pub async fn trigger_event(&self, event: &Event) -> Result<TriggerResponse> {
        let body = self.event_body(event)?;
        self.request(Method::POST, &self.inner.events_path, &[], Some(body))
            .await
    }

    /// Sends up to 10 events, each to one channel, in one request.
    ///
    /// # Errors
    ///
    /// Validation errors (nothing is sent), or transport and API errors.
    ///
    /// ```no_run
    /// use pusher_client::{BatchEvent, ChannelAttribute};
    ///
    /// # async fn run(client: pusher_client::Client) -> pusher_client::Result<()> {
    /// let response = client
    ///     .trigger_batch(&[
    ///         BatchEvent::new("orders", "created", r#"{"id":1}"#),
    ///         BatchEvent::new("presence-ops", "alert", r#"{"id":1}"#)
    ///             .info([ChannelAttribute::UserCount]),
    ///     ])
    ///     .await?;
    /// println!("{:?}", response.batch[1].user_count);
    /// # Ok(()) }
    /// ```
    pub async fn trigger_batch(&self, events: &[BatchEvent]) -> Result<BatchResponse> {
        let body = self.batch_body(events)?;
        self.request(Method::POST, &self.inner.batch_path, &[], Some(body))
            .await
    }

    /// Lists occupied channels, optionally filtered by prefix, with attributes.
    ///
    /// # Errors
    ///
    /// Validation errors (nothing is sent), or transport and API errors.
    ///
    /// ```no_run
    /// use pusher_client::{ChannelAttribute, ChannelsQuery};
    ///
    /// # async fn run(client: pusher_client::Client) -> pusher_client::Result<()> {
    /// let list = client
    ///     .channels(&ChannelsQuery::new().prefix("presence-").info([ChannelAttribute::UserCount]))
    ///     .await?;
    /// for (name, info) in &list.channels {
    ///     println!("{name}: {:?} users", info.user_count);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn channels(&self, query: &ChannelsQuery) -> Result<ChannelList> {
        let mut params: Vec<(&str, &str)> = Vec::with_capacity(2);
        if let Some(prefix) = &query.prefix {
            if !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-=@,.;".contains(&b))
            {
                return Err(Error::InvalidChannelName {
                    channel: prefix.clone(),
                    reason: "a prefix filter uses channel-name characters only",
                });
            }
            params.push(("filter_by_prefix", prefix));
        }
        if query.info.contains_user_count()
            && !query
                .prefix
                .as_deref()
                .is_some_and(|p| p.starts_with("presence-"))
        {
            return Err(Error::WrongChannelType {
                channel: query.prefix.clone().unwrap_or_default(),
                reason: "`user_count` can only be listed with a `presence-` prefix filter",
            });
        }
        if let Some(info) = query.info.param() {
            params.push(("info", info));
        }
        let path = format!("/apps/{}/channels", self.app_id());
        self.request(Method::GET, &path, &params, None).await
    }

    /// The state of one channel: whether it is occupied, plus the attributes asked for.
    ///
    /// # Errors
    ///
    /// Validation errors (nothing is sent), or transport and API errors.
    ///
    /// ```no_run
    /// use pusher_client::ChannelAttribute;
    ///
    /// # async fn run(client: pusher_client::Client) -> pusher_client::Result<()> {
    /// let info = client.channel("orders", [ChannelAttribute::SubscriptionCount]).await?;
    /// println!("occupied: {:?}, subscriptions: {:?}", info.occupied, info.subscription_count);
    /// # Ok(()) }
    /// ```
    pub async fn channel(
        &self,
        channel: &str,
        info: impl IntoIterator<Item = ChannelAttribute>,
    ) -> Result<ChannelInfo> {
        self.limits().check_channel(channel)?;
        if channel.starts_with('#') {
            // Such a name cannot be a URL path segment, and its state is
            // not queryable: refuse it before anything is sent.
            return Err(Error::WrongChannelType {
                channel: channel.to_owned(),
                reason: "the state of `#server-to-user-` channels cannot be queried",
            });
        }
        let info = Attributes::from_iter(info);
        if info.contains_user_count() && !channel.starts_with("presence-") {
            return Err(Error::WrongChannelType {
                channel: channel.to_owned(),
                reason: "`user_count` is only available for presence channels",
            });
        }
        let params: Vec<(&str, &str)> = info.param().map(|i| ("info", i)).into_iter().collect();
        let path = format!("/apps/{}/channels/{channel}", self.app_id());
        self.request(Method::GET, &path, &params, None).await
    }

    /// The users subscribed to a presence channel.
    ///
    /// # Errors
    ///
    /// Validation errors (nothing is sent), or transport and API errors.
    ///
    /// ```no_run
    /// # async fn run(client: pusher_client::Client) -> pusher_client::Result<()> {
    /// for user in client.users("presence-room").await? {
    ///     println!("{}", user.id);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn users(&self, channel: &str) -> Result<Vec<User>> {
        self.limits().check_channel(channel)?;
        if !channel.starts_with("presence-") {
            return Err(Error::WrongChannelType {
                channel: channel.to_owned(),
                reason: "users can only be listed for presence channels",
            });
        }
        let path = format!("/apps/{}/channels/{channel}/users", self.app_id());
        let response: UsersResponse = self.request(Method::GET, &path, &[], None).await?;
        Ok(response.users)
    }

    /// Sends an event to every connection that signed in as `user_id` (see
    /// [`authenticate_user`](Self::authenticate_user)).
    ///
    /// # Errors
    ///
    /// Validation errors (nothing is sent), or transport and API errors.
    ///
    /// ```no_run
    /// # async fn run(client: pusher_client::Client) -> pusher_client::Result<()> {
    /// client.send_to_user("user-42", "notice", &serde_json::json!({ "text": "hi" })).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_to_user(
        &self,
        user_id: &str,
        event: &str,
        data: &(impl Serialize + ?Sized),
    ) -> Result<()> {
        check_user_id(user_id)?;
        let channel = format!("{SERVER_TO_USER_PREFIX}{user_id}");
        let event = Event::json([channel], event, data)?;
        let body = self.event_body(&event)?;
        let _: IgnoredAny = self
            .request(Method::POST, &self.inner.events_path, &[], Some(body))
            .await?;
        Ok(())
    }

    /// Closes every connection that signed in as `user_id`.
    ///
    /// # Errors
    ///
    /// Validation errors (nothing is sent), or transport and API errors.
    ///
    /// ```no_run
    /// # async fn run(client: pusher_client::Client) -> pusher_client::Result<()> {
    /// client.terminate_user_connections("user-42").await?;
    /// # Ok(()) }
    /// ```
    pub async fn terminate_user_connections(&self, user_id: &str) -> Result<()> {
        check_user_id(user_id)?;
        let path = format!(
            "/apps/{}/users/{user_id}/terminate_connections",
            self.app_id()
        );
        let _: IgnoredAny = self
            .request(Method::POST, &path, &[], Some(b"{}".to_vec()))
            .await?;
        Ok(())
    }

    /// Authorizes `socket_id` to subscribe to a private or `private-encrypted-`
    /// channel. For encrypted channels the answer carries the channel key.
    ///
    /// # Errors
    ///
    /// Invalid socket id or channel, a presence channel (use
    /// [`authorize_presence_channel`](Self::authorize_presence_channel)), or an
    /// encrypted channel without a master key.
    pub fn authorize_channel(&self, socket_id: &str, channel: &str) -> Result<ChannelAuth> {
        auth::authorize_channel(&self.inner.config, socket_id, channel)
    }

    /// Authorizes `socket_id` to join a presence channel as `member`, which must
    /// serialize to an object with a `user_id` (see [`PresenceMember`](crate::PresenceMember)).
    ///
    /// # Errors
    ///
    /// Invalid socket id or channel, a non-presence channel, or member data
    /// without `user_id`.
    ///
    /// ```
    /// use pusher_client::{Client, PresenceMember};
    /// use serde_json::json;
    ///
    /// let client = Client::builder().app_id("1").key("key").secret("secret").build()?;
    /// let member = PresenceMember::new("42").info(json!({ "name": "Ada" }));
    /// let auth = client.authorize_presence_channel("1234.5678", "presence-room", &member)?;
    /// assert_eq!(auth.channel_data(), Some(r#"{"user_id":"42","user_info":{"name":"Ada"}}"#));
    /// # Ok::<(), pusher_client::Error>(())
    /// ```
    pub fn authorize_presence_channel(
        &self,
        socket_id: &str,
        channel: &str,
        member: &(impl Serialize + ?Sized),
    ) -> Result<ChannelAuth> {
        auth::authorize_presence_channel(&self.inner.config, socket_id, channel, member)
    }

    /// Signs in `socket_id` as the user described by `user_data`, which must
    /// serialize to an object with a non-empty `id`.
    ///
    /// # Errors
    ///
    /// Invalid socket id or user data without `id`.
    pub fn authenticate_user(
        &self,
        socket_id: &str,
        user_data: &(impl Serialize + ?Sized),
    ) -> Result<UserAuth> {
        auth::authenticate_user(&self.inner.config, socket_id, user_data)
    }

    /// A webhook verifier holding this app's key and secret plus any
    /// [`webhook_token`](ClientBuilder::webhook_token)s.
    pub fn webhook_verifier(&self) -> Verifier {
        let c = &self.inner.config;
        let mut tokens = vec![(c.key.clone(), c.secret.clone())];
        tokens.extend(c.webhook_tokens.iter().cloned());
        Verifier::from_tokens(tokens)
    }

    /// Verifies and parses a webhook given its `X-Pusher-Key` and
    /// `X-Pusher-Signature` header values and raw body.
    ///
    /// ```
    /// use pusher_client::{Client, WebhookEvent};
    ///
    /// let client = Client::builder().app_id("1").key("key").secret("secret").build()?;
    /// let body = r#"{"time_ms":1,"events":[{"name":"channel_vacated","channel":"c"}]}"#;
    /// let signature = pusher_client::signing::hmac_sha256_hex("secret", body);
    /// let hook = client.verify_webhook(Some("key"), Some(&signature), body.as_bytes())?;
    /// assert_eq!(hook.events, [WebhookEvent::ChannelVacated { channel: "c".into() }]);
    /// # Ok::<(), pusher_client::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// See [`Verifier::verify`].
    pub fn verify_webhook(
        &self,
        key: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Webhook> {
        self.webhook_verifier().verify(key, signature, body)
    }

    /// Like [`verify_webhook`](Self::verify_webhook), reading the headers from a map.
    ///
    /// # Errors
    ///
    /// See [`Verifier::verify`].
    pub fn verify_webhook_headers(
        &self,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> Result<Webhook> {
        self.webhook_verifier().verify_headers(headers, body)
    }

    /// Decrypts data sent on a `private-encrypted-` channel (for example a client
    /// event received by webhook).
    ///
    /// # Errors
    ///
    /// [`Error::MissingMasterKey`] or [`Error::Decrypt`].
    ///
    /// ```
    /// use pusher_client::Client;
    ///
    /// let client = Client::builder()
    ///     .app_id("1").key("key").secret("secret")
    ///     .encryption_master_key_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    ///     .build()?;
    /// let sealed = pusher_client::MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")?
    ///     .encrypt("private-encrypted-chat", "{}");
    /// assert_eq!(client.decrypt("private-encrypted-chat", &sealed)?, "{}");
    /// # Ok::<(), pusher_client::Error>(())
    /// ```
    pub fn decrypt(&self, channel: &str, data: &str) -> Result<String> {
        self.master_key(channel)?.decrypt(channel, data)
    }

    fn master_key(&self, channel: &str) -> Result<&crate::encryption::MasterKey> {
        self.inner
            .config
            .master_key
            .as_ref()
            .ok_or_else(|| Error::MissingMasterKey {
                channel: channel.to_owned(),
            })
    }

    /// Validates, encrypts when needed, and serializes one event.
    fn event_body(&self, event: &Event) -> Result<Vec<u8>> {
        let limits = self.limits();
        limits.check_channel_count(event.channels.len())?;
        for channel in &event.channels {
            limits.check_channel(channel)?;
        }
        limits.check_event_name(&event.name)?;
        if let Some(socket_id) = &event.socket_id {
            check_socket_id(socket_id)?;
        }
        let encrypted = match event.channels.iter().find(|c| is_encrypted_channel(c)) {
            Some(_) if event.channels.len() > 1 => {
                return Err(Error::EncryptedMultipleChannels {
                    count: event.channels.len(),
                });
            }
            Some(channel) => Some(self.master_key(channel)?.encrypt(channel, &event.data)),
            None => None,
        };
        let data = encrypted.as_deref().unwrap_or(&event.data);
        limits.check_payload(data)?;
        let body = EventBody {
            name: &event.name,
            channels: Some(&event.channels),
            channel: None,
            data,
            socket_id: event.socket_id.as_deref(),
            info: event.info.param(),
        };
        serde_json::to_vec(&body).map_err(Error::Serialize)
    }

    fn batch_body(&self, events: &[BatchEvent]) -> Result<Vec<u8>> {
        let limits = self.limits();
        limits.check_batch_size(events.len())?;
        let mut sealed: Vec<Option<String>> = Vec::with_capacity(events.len());
        for event in events {
            limits.check_channel(&event.channel)?;
            limits.check_event_name(&event.name)?;
            if let Some(socket_id) = &event.socket_id {
                check_socket_id(socket_id)?;
            }
            let encrypted = if is_encrypted_channel(&event.channel) {
                Some(
                    self.master_key(&event.channel)?
                        .encrypt(&event.channel, &event.data),
                )
            } else {
                None
            };
            limits.check_payload(encrypted.as_deref().unwrap_or(&event.data))?;
            sealed.push(encrypted);
        }
        let batch = events
            .iter()
            .zip(&sealed)
            .map(|(event, sealed)| EventBody {
                name: &event.name,
                channels: None,
                channel: Some(&event.channel),
                data: sealed.as_deref().unwrap_or(&event.data),
                socket_id: event.socket_id.as_deref(),
                info: event.info.param(),
            })
            .collect();
        serde_json::to_vec(&BatchBody { batch }).map_err(Error::Serialize)
    }

    /// Signs and sends one request and decodes its JSON answer.
    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let config = &self.inner.config;
        let query = signed_query(
            &config.key,
            config.secret.expose(),
            method.as_str(),
            path,
            params,
            body.as_deref(),
            unix_now(),
        );
        let mut url = String::with_capacity(config.base_url.len() + path.len() + query.len() + 1);
        url.push_str(&config.base_url);
        url.push_str(path);
        url.push('?');
        url.push_str(&query);

        let mut request = self.inner.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                let err = Error::from_reqwest(err);
                tracing::debug!(%method, path, error = %err, "pusher request failed");
                return Err(err);
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(Error::from_reqwest)?;
        tracing::debug!(%method, path, status = status.as_u16(), "pusher request");
        if !status.is_success() {
            return Err(Error::Api {
                status: status.as_u16(),
                body: truncated_text(&bytes),
                retry_after,
            });
        }
        let json: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(json).map_err(|source| Error::Decode {
            status: status.as_u16(),
            body: truncated_text(&bytes),
            source,
        })
    }
}

fn truncated_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= MAX_ERROR_BODY {
        return text.into_owned();
    }
    let mut end = MAX_ERROR_BODY;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::builder()
            .app_id("1")
            .key("k")
            .secret("s")
            .encryption_master_key_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
            .build()
            .unwrap()
    }

    #[test]
    fn encrypted_event_body_is_ciphertext() {
        let c = client();
        let body = c
            .event_body(&Event::new(
                ["private-encrypted-x"],
                "e",
                r#"{"secret":"plans"}"#,
            ))
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let data = v["data"].as_str().unwrap();
        assert!(!data.contains("plans"));
        assert_eq!(
            c.decrypt("private-encrypted-x", data).unwrap(),
            r#"{"secret":"plans"}"#
        );
    }

    #[test]
    fn error_body_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(3000);
        let t = truncated_text(long.as_bytes());
        assert!(t.len() <= MAX_ERROR_BODY + 3);
        assert!(t.ends_with("..."));
    }
}
