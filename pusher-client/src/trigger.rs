//! Events: what [`Client::trigger_event`](crate::Client::trigger_event) and
//! [`Client::trigger_batch`](crate::Client::trigger_batch) send, and what they return.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::channels::{Attributes, ChannelAttribute, ChannelInfo};
use crate::error::{Error, Result};

/// One event sent to one or more channels (`POST /apps/{app_id}/events`).
///
/// `data` is sent as a string; pusher-js parses it as JSON when it can. Use
/// [`Event::json`] to serialize a value, [`Event::new`] to send text as is.
///
/// ```
/// use pusher_client::{ChannelAttribute, Event};
/// use serde_json::json;
///
/// let event = Event::json(["orders", "private-audit"], "order-created", &json!({ "id": 7 }))?
///     .exclude_socket("1234.5678")
///     .info([ChannelAttribute::SubscriptionCount]);
/// assert_eq!(event.channels(), ["orders", "private-audit"]);
/// assert_eq!(event.data(), r#"{"id":7}"#);
/// # Ok::<(), pusher_client::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Event {
    pub(crate) channels: Vec<String>,
    pub(crate) name: String,
    pub(crate) data: String,
    pub(crate) socket_id: Option<String>,
    pub(crate) info: Attributes,
}

impl Event {
    /// An event whose data is sent verbatim.
    pub fn new(
        channels: impl IntoIterator<Item = impl Into<String>>,
        name: impl Into<String>,
        data: impl Into<String>,
    ) -> Self {
        Self {
            channels: channels.into_iter().map(Into::into).collect(),
            name: name.into(),
            data: data.into(),
            socket_id: None,
            info: Attributes::default(),
        }
    }

    /// An event whose data is `data` serialized to JSON.
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`] if `data` cannot be serialized.
    pub fn json(
        channels: impl IntoIterator<Item = impl Into<String>>,
        name: impl Into<String>,
        data: &(impl Serialize + ?Sized),
    ) -> Result<Self> {
        let data = serde_json::to_string(data).map_err(Error::Serialize)?;
        Ok(Self::new(channels, name, data))
    }

    /// Does not deliver the event to the connection with this socket id (usually the
    /// one whose action caused the event).
    pub fn exclude_socket(mut self, socket_id: impl Into<String>) -> Self {
        self.socket_id = Some(socket_id.into());
        self
    }

    /// Asks for channel attributes in the response (see [`TriggerResponse::channels`]).
    pub fn info(mut self, attributes: impl IntoIterator<Item = ChannelAttribute>) -> Self {
        self.info = Attributes::from_iter(attributes);
        self
    }

    /// The target channels.
    #[must_use]
    pub fn channels(&self) -> &[String] {
        &self.channels
    }

    /// The event name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The data, as it will be sent (before encryption, for encrypted channels).
    #[must_use]
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The excluded socket id, if any.
    #[must_use]
    pub fn socket_id(&self) -> Option<&str> {
        self.socket_id.as_deref()
    }
}

/// One event of a batch: one channel each (`POST /apps/{app_id}/batch_events`).
///
/// ```
/// use pusher_client::{BatchEvent, ChannelAttribute};
///
/// let event = BatchEvent::new("presence-room", "joined", r#"{"user":"ada"}"#)
///     .info([ChannelAttribute::UserCount]);
/// assert_eq!(event.channel(), "presence-room");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct BatchEvent {
    pub(crate) channel: String,
    pub(crate) name: String,
    pub(crate) data: String,
    pub(crate) socket_id: Option<String>,
    pub(crate) info: Attributes,
}

impl BatchEvent {
    /// An event whose data is sent verbatim.
    pub fn new(
        channel: impl Into<String>,
        name: impl Into<String>,
        data: impl Into<String>,
    ) -> Self {
        Self {
            channel: channel.into(),
            name: name.into(),
            data: data.into(),
            socket_id: None,
            info: Attributes::default(),
        }
    }

    /// An event whose data is `data` serialized to JSON.
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`] if `data` cannot be serialized.
    pub fn json(
        channel: impl Into<String>,
        name: impl Into<String>,
        data: &(impl Serialize + ?Sized),
    ) -> Result<Self> {
        let data = serde_json::to_string(data).map_err(Error::Serialize)?;
        Ok(Self::new(channel, name, data))
    }

    /// Does not deliver the event to the connection with this socket id.
    pub fn exclude_socket(mut self, socket_id: impl Into<String>) -> Self {
        self.socket_id = Some(socket_id.into());
        self
    }

    /// Asks for channel attributes in the response (see [`BatchResponse::batch`]).
    pub fn info(mut self, attributes: impl IntoIterator<Item = ChannelAttribute>) -> Self {
        self.info = Attributes::from_iter(attributes);
        self
    }

    /// The target channel.
    #[must_use]
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The event name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The data, as it will be sent (before encryption, for encrypted channels).
    #[must_use]
    pub fn data(&self) -> &str {
        &self.data
    }
}

/// What the server answers to a trigger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TriggerResponse {
    /// Attributes of each target channel, when [`Event::info`] asked for some.
    #[serde(default)]
    pub channels: HashMap<String, ChannelInfo>,
}

/// What the server answers to a batch trigger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct BatchResponse {
    /// Attributes of each event's channel, in batch order, when any event asked for
    /// some (events that did not ask get an empty [`ChannelInfo`]).
    #[serde(default)]
    pub batch: Vec<ChannelInfo>,
}

/// The JSON body of one event, borrowing from the caller's values.
#[derive(Serialize)]
pub(crate) struct EventBody<'a> {
    pub(crate) name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) channels: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) channel: Option<&'a str>,
    pub(crate) data: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) socket_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) info: Option<&'static str>,
}

#[derive(Serialize)]
pub(crate) struct BatchBody<'a> {
    pub(crate) batch: Vec<EventBody<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shapes() {
        let channels = vec!["a".to_owned(), "b".to_owned()];
        let body = EventBody {
            name: "e",
            channels: Some(&channels),
            channel: None,
            data: "{\"x\":1}",
            socket_id: Some("1.2"),
            info: Some("subscription_count,user_count"),
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"name":"e","channels":["a","b"],"data":"{\"x\":1}","socket_id":"1.2","info":"subscription_count,user_count"}"#
        );
    }

    #[test]
    fn responses_parse() {
        let r: TriggerResponse = serde_json::from_str(
            r#"{"channels":{"presence-a":{"subscription_count":2,"user_count":1}}}"#,
        )
        .unwrap();
        assert_eq!(r.channels["presence-a"].user_count, Some(1));
        let r: TriggerResponse = serde_json::from_str("{}").unwrap();
        assert!(r.channels.is_empty());
        let b: BatchResponse =
            serde_json::from_str(r#"{"batch":[{"subscription_count":3},{}]}"#).unwrap();
        assert_eq!(b.batch[0].subscription_count, Some(3));
        assert_eq!(b.batch[1], ChannelInfo::default());
    }
}
