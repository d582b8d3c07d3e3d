//! Input validation, applied before any request leaves the process.
//!
//! The rules follow the Pusher Channels documentation: channel names use
//! `A-Z a-z 0-9 _ - = @ , . ;` only and are at most 164 characters; event names
//! are at most 200 characters; one trigger reaches at most 100 channels; a batch
//! holds at most 10 events; event data is at most 10 KiB; socket ids look like
//! `1234.5678`. Dedicated clusters and self-hosted servers (Sockudo, Soketi) often
//! raise the size limits, so every limit is configurable through [`Limits`].

use crate::error::{Error, Result};

/// Prefix of the internal channel that [`Client::send_to_user`](crate::Client::send_to_user)
/// targets.
pub(crate) const SERVER_TO_USER_PREFIX: &str = "#server-to-user-";

/// Limits enforced before sending. The defaults are the limits of Pusher's hosted
/// service.
///
/// ```
/// use pusher_client::Limits;
///
/// let limits = Limits::default().max_payload_bytes(100 * 1024).max_channel_name_len(200);
/// assert_eq!(limits.payload_bytes(), 100 * 1024);
/// assert_eq!(Limits::default().payload_bytes(), 10 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Limits {
    channel_name_len: usize,
    event_name_len: usize,
    channels_per_trigger: usize,
    batch_size: usize,
    payload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            channel_name_len: 164,
            event_name_len: 200,
            channels_per_trigger: 100,
            batch_size: 10,
            payload_bytes: 10 * 1024,
        }
    }
}

impl Limits {
    /// Sets the maximum channel name length (default 164).
    pub fn max_channel_name_len(mut self, max: usize) -> Self {
        self.channel_name_len = max;
        self
    }

    /// Sets the maximum event name length (default 200).
    pub fn max_event_name_len(mut self, max: usize) -> Self {
        self.event_name_len = max;
        self
    }

    /// Sets how many channels one trigger may target (default 100).
    pub fn max_channels_per_trigger(mut self, max: usize) -> Self {
        self.channels_per_trigger = max;
        self
    }

    /// Sets how many events one batch may hold (default 10).
    pub fn max_batch_size(mut self, max: usize) -> Self {
        self.batch_size = max;
        self
    }

    /// Sets the maximum size of one event's data in bytes (default 10 KiB).
    pub fn max_payload_bytes(mut self, max: usize) -> Self {
        self.payload_bytes = max;
        self
    }

    /// The maximum channel name length.
    #[must_use]
    pub fn channel_name_len(&self) -> usize {
        self.channel_name_len
    }

    /// The maximum event name length.
    #[must_use]
    pub fn event_name_len(&self) -> usize {
        self.event_name_len
    }

    /// How many channels one trigger may target.
    #[must_use]
    pub fn channels_per_trigger(&self) -> usize {
        self.channels_per_trigger
    }

    /// How many events one batch may hold.
    #[must_use]
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The maximum size of one event's data in bytes.
    #[must_use]
    pub fn payload_bytes(&self) -> usize {
        self.payload_bytes
    }

    /// Checks a channel name against the charset and the length limit.
    ///
    /// ```
    /// use pusher_client::{Error, Limits};
    ///
    /// let limits = Limits::default();
    /// assert!(limits.check_channel("private-orders.42").is_ok());
    /// assert!(matches!(
    ///     limits.check_channel("orders 42"),
    ///     Err(Error::InvalidChannelName { .. })
    /// ));
    /// ```
    pub fn check_channel(&self, channel: &str) -> Result<()> {
        let body = channel
            .strip_prefix(SERVER_TO_USER_PREFIX)
            .unwrap_or(channel);
        if body.is_empty() {
            return Err(Error::InvalidChannelName {
                channel: channel.to_owned(),
                reason: "channel names cannot be empty",
            });
        }
        if channel.len() > self.channel_name_len {
            return Err(Error::ChannelNameTooLong {
                channel: channel.to_owned(),
                len: channel.len(),
                max: self.channel_name_len,
            });
        }
        if !body.bytes().all(is_channel_byte) {
            return Err(Error::InvalidChannelName {
                channel: channel.to_owned(),
                reason: "only A-Z, a-z, 0-9 and `_ - = @ , . ;` are allowed",
            });
        }
        Ok(())
    }

    /// Checks an event name's length.
    ///
    /// ```
    /// use pusher_client::Limits;
    ///
    /// assert!(Limits::default().check_event_name("order-created").is_ok());
    /// assert!(Limits::default().check_event_name(&"x".repeat(201)).is_err());
    /// ```
    pub fn check_event_name(&self, event: &str) -> Result<()> {
        if event.is_empty() {
            return Err(Error::InvalidEventName {
                event: event.to_owned(),
                reason: "event names cannot be empty".to_owned(),
            });
        }
        if event.len() > self.event_name_len {
            return Err(Error::InvalidEventName {
                event: event.to_owned(),
                reason: format!(
                    "{} characters long, the limit is {}",
                    event.len(),
                    self.event_name_len
                ),
            });
        }
        Ok(())
    }

    pub(crate) fn check_channel_count(&self, count: usize) -> Result<()> {
        if count == 0 {
            return Err(Error::NoChannels);
        }
        if count > self.channels_per_trigger {
            return Err(Error::TooManyChannels {
                count,
                max: self.channels_per_trigger,
            });
        }
        Ok(())
    }

    pub(crate) fn check_batch_size(&self, count: usize) -> Result<()> {
        if count == 0 {
            return Err(Error::EmptyBatch);
        }
        if count > self.batch_size {
            return Err(Error::BatchTooLarge {
                count,
                max: self.batch_size,
            });
        }
        Ok(())
    }

    pub(crate) fn check_payload(&self, data: &str) -> Result<()> {
        if data.len() > self.payload_bytes {
            return Err(Error::PayloadTooLarge {
                size: data.len(),
                max: self.payload_bytes,
            });
        }
        Ok(())
    }
}

fn is_channel_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'=' | b'@' | b',' | b'.' | b';')
}

/// Checks that a socket id has the `digits.digits` form Pusher issues.
///
/// ```
/// use pusher_client::validation::check_socket_id;
///
/// assert!(check_socket_id("1234.5678").is_ok());
/// assert!(check_socket_id("1234").is_err());
/// assert!(check_socket_id("1234.5678:private-x").is_err());
/// ```
pub fn check_socket_id(socket_id: &str) -> Result<()> {
    let valid = socket_id.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidSocketId {
            socket_id: socket_id.to_owned(),
        })
    }
}

/// Checks a user id for [`send_to_user`](crate::Client::send_to_user) and
/// [`terminate_user_connections`](crate::Client::terminate_user_connections): non-empty,
/// at most 200 characters, channel-name characters only.
///
/// ```
/// use pusher_client::validation::check_user_id;
///
/// assert!(check_user_id("user-42").is_ok());
/// assert!(check_user_id("").is_err());
/// assert!(check_user_id("a/b").is_err());
/// ```
pub fn check_user_id(user_id: &str) -> Result<()> {
    let reason = if user_id.is_empty() {
        "user ids cannot be empty"
    } else if user_id.len() > 200 {
        "user ids are at most 200 characters"
    } else if !user_id.bytes().all(is_channel_byte) {
        "only A-Z, a-z, 0-9 and `_ - = @ , . ;` are allowed"
    } else {
        return Ok(());
    };
    Err(Error::InvalidUserId {
        user_id: user_id.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        let l = Limits::default();
        for ok in [
            "a",
            "private-foo",
            "presence-room_1",
            "private-encrypted-x",
            "A-Za-z0-9_-=@,.;",
            "#server-to-user-42",
        ] {
            assert!(l.check_channel(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "a/b",
            "é",
            "a#b",
            "#server-to-user-",
            "a:b",
            "a*",
        ] {
            assert!(
                matches!(l.check_channel(bad), Err(Error::InvalidChannelName { .. })),
                "{bad}"
            );
        }
        assert!(l.check_channel(&"a".repeat(164)).is_ok());
        assert!(matches!(
            l.check_channel(&"a".repeat(165)),
            Err(Error::ChannelNameTooLong {
                len: 165,
                max: 164,
                ..
            })
        ));
        let l = l.max_channel_name_len(200);
        assert!(l.check_channel(&"a".repeat(200)).is_ok());
    }

    #[test]
    fn socket_ids() {
        for ok in ["1.1", "1234.1234", "123456789.987654321"] {
            assert!(check_socket_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "1", "1.", ".1", "a.1", "1.1.1", "1.1\n", " 1.1", "1.1:evil",
        ] {
            assert!(check_socket_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counts_and_sizes() {
        let l = Limits::default();
        assert!(matches!(l.check_channel_count(0), Err(Error::NoChannels)));
        assert!(l.check_channel_count(100).is_ok());
        assert!(matches!(
            l.check_channel_count(101),
            Err(Error::TooManyChannels {
                count: 101,
                max: 100
            })
        ));
        assert!(matches!(l.check_batch_size(0), Err(Error::EmptyBatch)));
        assert!(l.check_batch_size(10).is_ok());
        assert!(matches!(
            l.check_batch_size(11),
            Err(Error::BatchTooLarge { count: 11, max: 10 })
        ));
        assert!(l.check_payload(&"x".repeat(10240)).is_ok());
        assert!(matches!(
            l.check_payload(&"x".repeat(10241)),
            Err(Error::PayloadTooLarge {
                size: 10241,
                max: 10240
            })
        ));
    }
}
