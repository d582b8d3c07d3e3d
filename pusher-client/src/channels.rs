//! Channel queries: the channel list, one channel's state, a presence channel's
//! users, and the attributes (`info`) the API can report.

use std::collections::HashMap;

use serde::Deserialize;

/// A channel attribute the API can report (the `info` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelAttribute {
    /// Number of connections subscribed to the channel. Must be enabled for the
    /// app on Pusher's hosted service.
    SubscriptionCount,
    /// Number of distinct users on a presence channel (presence channels only).
    UserCount,
}

impl ChannelAttribute {
    /// The attribute's name in the API.
    ///
    /// ```
    /// assert_eq!(pusher_client::ChannelAttribute::UserCount.as_str(), "user_count");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelAttribute::SubscriptionCount => "subscription_count",
            ChannelAttribute::UserCount => "user_count",
        }
    }
}

/// A small set of [`ChannelAttribute`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Attributes(u8);

impl FromIterator<ChannelAttribute> for Attributes {
    fn from_iter<I: IntoIterator<Item = ChannelAttribute>>(iter: I) -> Self {
        let mut bits = 0;
        for a in iter {
            bits |= match a {
                ChannelAttribute::SubscriptionCount => 1,
                ChannelAttribute::UserCount => 2,
            };
        }
        Attributes(bits)
    }
}

impl Attributes {
    /// The `info` parameter value, `None` when empty.
    pub(crate) fn param(self) -> Option<&'static str> {
        match self.0 {
            1 => Some("subscription_count"),
            2 => Some("user_count"),
            3 => Some("subscription_count,user_count"),
            _ => None,
        }
    }

    pub(crate) fn contains_user_count(self) -> bool {
        self.0 & 2 != 0
    }
}

/// The state of one channel. Fields are present when the server reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// Whether at least one connection is subscribed (channel info only).
    #[serde(default)]
    pub occupied: Option<bool>,
    /// Number of subscribed connections, when requested.
    #[serde(default)]
    pub subscription_count: Option<u64>,
    /// Number of distinct users (presence channels), when requested.
    #[serde(default)]
    pub user_count: Option<u64>,
}

/// Options of the channel list query (`GET /apps/{app_id}/channels`).
///
/// ```
/// use pusher_client::{ChannelAttribute, ChannelsQuery};
///
/// let query = ChannelsQuery::new().prefix("presence-").info([ChannelAttribute::UserCount]);
/// # let _ = query;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct ChannelsQuery {
    pub(crate) prefix: Option<String>,
    pub(crate) info: Attributes,
}

impl ChannelsQuery {
    /// All occupied channels, no attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only channels whose name starts with `prefix` (`filter_by_prefix`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Attributes to report for each channel. `UserCount` needs a `presence-`
    /// prefix filter.
    pub fn info(mut self, attributes: impl IntoIterator<Item = ChannelAttribute>) -> Self {
        self.info = Attributes::from_iter(attributes);
        self
    }
}

/// The occupied channels, with the attributes asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ChannelList {
    /// Channel name to attributes.
    #[serde(default)]
    pub channels: HashMap<String, ChannelInfo>,
}

/// A user subscribed to a presence channel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// The `user_id` the user was authorized with.
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
}

#[derive(Deserialize)]
pub(crate) struct UsersResponse {
    #[serde(default)]
    pub(crate) users: Vec<User>,
}

/// Presence user ids may be JSON numbers (as in Pusher's own examples).
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        N(serde_json::Number),
    }
    Ok(match Id::deserialize(d)? {
        Id::S(s) => s,
        Id::N(n) => n.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes() {
        assert_eq!(Attributes::default().param(), None);
        assert_eq!(
            Attributes::from_iter([
                ChannelAttribute::UserCount,
                ChannelAttribute::SubscriptionCount
            ])
            .param(),
            Some("subscription_count,user_count")
        );
    }

    #[test]
    fn parse_users_and_channels() {
        let u: UsersResponse = serde_json::from_str(r#"{"users":[{"id":"1"},{"id":2}]}"#).unwrap();
        assert_eq!(u.users[0].id, "1");
        assert_eq!(u.users[1].id, "2");
        let c: ChannelList =
            serde_json::from_str(r#"{"channels":{"presence-a":{"user_count":3},"presence-b":{}}}"#)
                .unwrap();
        assert_eq!(c.channels["presence-a"].user_count, Some(3));
        let i: ChannelInfo =
            serde_json::from_str(r#"{"occupied":true,"subscription_count":4,"extra":1}"#).unwrap();
        assert_eq!(i.occupied, Some(true));
    }
}
