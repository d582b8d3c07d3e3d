//! Who is subscribed to what: channels, their connections and, for presence
//! channels, their members. Fan-out never waits: each connection has a bounded
//! outbox, and a connection whose outbox is full is told to close.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use super::protocol::frame;

/// Where frames for one connection go.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    pub(crate) frames: mpsc::Sender<Utf8Bytes>,
    /// Notified when the connection cannot keep up and must close.
    pub(crate) overflow: Arc<Notify>,
}

impl Outbox {
    /// Queues a frame; false (and the connection told to close) when it is full.
    pub(crate) fn push(&self, frame: Utf8Bytes) -> bool {
        match self.frames.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.notify_one();
                false
            }
            // The connection is going away; its subscriptions go with it.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// A presence member: the `user_id` and `user_info` of a `channel_data`.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) user_id: String,
    pub(crate) user_info: Option<Value>,
}

#[derive(Debug)]
struct Subscription {
    outbox: Outbox,
    user_id: Option<String>,
}

#[derive(Debug, Default)]
struct Channel {
    /// Socket id to subscription.
    subscriptions: HashMap<String, Subscription>,
    /// Presence channels: user id to (user info, number of connections).
    members: HashMap<String, (Option<Value>, usize)>,
}

impl Channel {
    fn presence_data(&self) -> Value {
        let ids: Vec<&str> = self.members.keys().map(String::as_str).collect();
        let hash: serde_json::Map<String, Value> = self
            .members
            .iter()
            .map(|(id, (info, _))| (id.clone(), info.clone().unwrap_or(Value::Null)))
            .collect();
        serde_json::json!({
            "presence": { "ids": ids, "hash": hash, "count": self.members.len() }
        })
    }

    fn broadcast(&self, frame: &Utf8Bytes, except: Option<&str>) -> usize {
        let mut sent = 0;
        for (socket_id, sub) in &self.subscriptions {
            if Some(socket_id.as_str()) != except && sub.outbox.push(frame.clone()) {
                sent += 1;
            }
        }
        sent
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code holding these locks can panic half-way through an update that
    // matters, so a poisoned lock is still consistent.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The state of one channel as the HTTP API reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Occupancy {
    pub(crate) subscription_count: usize,
    pub(crate) user_count: usize,
}

/// Every occupied channel of the hosted app, and the signed-in users.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    channels: Mutex<HashMap<String, Channel>>,
    /// User id to the connections signed in as that user (socket id to the
    /// signal that closes the connection).
    users: Mutex<HashMap<String, HashMap<String, Arc<Notify>>>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Channel>> {
        lock(&self.channels)
    }

    /// Records that `socket_id` signed in as `user_id`.
    pub(crate) fn sign_in(&self, user_id: &str, socket_id: &str, terminate: Arc<Notify>) {
        lock(&self.users)
            .entry(user_id.to_owned())
            .or_default()
            .insert(socket_id.to_owned(), terminate);
    }

    /// Forgets the sign-in of a closed connection.
    pub(crate) fn sign_out(&self, user_id: &str, socket_id: &str) {
        let mut users = lock(&self.users);
        if let Some(sockets) = users.get_mut(user_id) {
            sockets.remove(socket_id);
            if sockets.is_empty() {
                users.remove(user_id);
            }
        }
    }

    /// Tells every connection signed in as `user_id` to close; returns how many.
    pub(crate) fn terminate_user(&self, user_id: &str) -> usize {
        let users = lock(&self.users);
        let sockets = users
            .get(user_id)
            .map(HashMap::values)
            .into_iter()
            .flatten();
        sockets.map(|terminate| terminate.notify_one()).count()
    }

    /// Subscribes a connection and returns the `data` of its
    /// `subscription_succeeded` (the member list on presence channels). A new
    /// presence member is announced to the channel's other connections.
    pub(crate) fn subscribe(
        &self,
        channel: &str,
        socket_id: &str,
        outbox: &Outbox,
        member: Option<Member>,
    ) -> String {
        let mut channels = self.lock();
        let state = channels.entry(channel.to_owned()).or_default();
        let user_id = member.as_ref().map(|m| m.user_id.clone());
        let previous = state.subscriptions.insert(
            socket_id.to_owned(),
            Subscription {
                outbox: outbox.clone(),
                user_id: user_id.clone(),
            },
        );
        if let Some(previous_user) = previous.and_then(|p| p.user_id) {
            // A repeated subscribe replaces the earlier one.
            Self::leave(state, channel, socket_id, &previous_user);
        }
        let Some(member) = member else {
            return "{}".to_owned();
        };
        match state.members.entry(member.user_id.clone()) {
            Entry::Occupied(mut e) => e.get_mut().1 += 1,
            Entry::Vacant(e) => {
                e.insert((member.user_info.clone(), 1));
                let mut data = serde_json::json!({ "user_id": member.user_id });
                if let Some(info) = member.user_info {
                    data["user_info"] = info;
                }
                let added = frame(
                    "pusher_internal:member_added",
                    Some(channel),
                    &data.to_string(),
                );
                state.broadcast(&added, Some(socket_id));
            }
        }
        state.presence_data().to_string()
    }

    /// Removes a presence connection of `user_id`; announces the member's
    /// departure when it was their last connection.
    fn leave(state: &mut Channel, channel: &str, socket_id: &str, user_id: &str) {
        if let Entry::Occupied(mut e) = state.members.entry(user_id.to_owned()) {
            e.get_mut().1 -= 1;
            if e.get().1 == 0 {
                e.remove();
                let data = serde_json::json!({ "user_id": user_id }).to_string();
                let removed = frame("pusher_internal:member_removed", Some(channel), &data);
                state.broadcast(&removed, Some(socket_id));
            }
        }
    }

    /// Unsubscribes a connection; false when it was not subscribed.
    pub(crate) fn unsubscribe(&self, channel: &str, socket_id: &str) -> bool {
        let mut channels = self.lock();
        let Some(state) = channels.get_mut(channel) else {
            return false;
        };
        let Some(sub) = state.subscriptions.remove(socket_id) else {
            return false;
        };
        if let Some(user_id) = sub.user_id {
            Self::leave(state, channel, socket_id, &user_id);
        }
        if state.subscriptions.is_empty() {
            channels.remove(channel);
        }
        true
    }

    /// Whether `socket_id` is subscribed to `channel`, and as which presence user.
    pub(crate) fn subscriber(&self, channel: &str, socket_id: &str) -> Option<Option<String>> {
        let channels = self.lock();
        let sub = channels.get(channel)?.subscriptions.get(socket_id)?;
        Some(sub.user_id.clone())
    }

    /// Sends `frame` to every connection subscribed to `channel` but `except`;
    /// returns how many it was queued for.
    pub(crate) fn publish(&self, channel: &str, frame: &Utf8Bytes, except: Option<&str>) -> usize {
        self.lock()
            .get(channel)
            .map_or(0, |state| state.broadcast(frame, except))
    }

    /// Subscriptions and presence users of one channel (zero when unoccupied).
    pub(crate) fn occupancy(&self, channel: &str) -> Occupancy {
        self.lock()
            .get(channel)
            .map_or_else(Occupancy::default, |state| Occupancy {
                subscription_count: state.subscriptions.len(),
                user_count: state.members.len(),
            })
    }

    /// Occupied channels whose name starts with `prefix`, sorted by name.
    pub(crate) fn list(&self, prefix: &str) -> Vec<(String, Occupancy)> {
        let mut list: Vec<(String, Occupancy)> = self
            .lock()
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, state)| {
                (
                    name.clone(),
                    Occupancy {
                        subscription_count: state.subscriptions.len(),
                        user_count: state.members.len(),
                    },
                )
            })
            .collect();
        list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// The user ids present in a presence channel, sorted.
    pub(crate) fn users(&self, channel: &str) -> Vec<String> {
        let mut users: Vec<String> = self
            .lock()
            .get(channel)
            .map(|state| state.members.keys().cloned().collect())
            .unwrap_or_default();
        users.sort_unstable();
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox() -> (Outbox, mpsc::Receiver<Utf8Bytes>) {
        let (frames, rx) = mpsc::channel(4);
        (
            Outbox {
                frames,
                overflow: Arc::new(Notify::new()),
            },
            rx,
        )
    }

    fn member(id: &str) -> Option<Member> {
        Some(Member {
            user_id: id.to_owned(),
            user_info: Some(serde_json::json!({ "name": id })),
        })
    }

    #[test]
    fn presence_members_join_and_leave_once_per_user() {
        let registry = Registry::default();
        let (a, mut rx_a) = outbox();
        let (b, _rx_b) = outbox();
        let (c, _rx_c) = outbox();
        registry.subscribe("presence-x", "1.1", &a, member("alice"));
        let data = registry.subscribe("presence-x", "1.2", &b, member("bob"));
        let data: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(data["presence"]["count"], 2);
        assert_eq!(data["presence"]["hash"]["bob"]["name"], "bob");
        let added = rx_a.try_recv().unwrap();
        assert!(
            added.as_str().contains("member_added"),
            "{}",
            added.as_str()
        );

        // A second connection of bob is not a new member.
        registry.subscribe("presence-x", "1.3", &c, member("bob"));
        assert!(rx_a.try_recv().is_err());
        assert_eq!(
            registry.occupancy("presence-x"),
            Occupancy {
                subscription_count: 3,
                user_count: 2
            }
        );

        assert!(registry.unsubscribe("presence-x", "1.2"));
        assert!(rx_a.try_recv().is_err());
        assert!(registry.unsubscribe("presence-x", "1.3"));
        let removed = rx_a.try_recv().unwrap();
        assert!(removed.as_str().contains("member_removed"));
        assert_eq!(registry.users("presence-x"), ["alice"]);

        assert!(registry.unsubscribe("presence-x", "1.1"));
        assert!(!registry.unsubscribe("presence-x", "1.1"));
        assert!(registry.list("").is_empty());
    }

    #[test]
    fn publish_skips_the_excluded_socket_and_flags_full_outboxes() {
        let registry = Registry::default();
        let (a, mut rx_a) = outbox();
        let (b, mut rx_b) = outbox();
        registry.subscribe("news", "1.1", &a, None);
        registry.subscribe("news", "1.2", &b, None);
        let f = frame("e", Some("news"), "{}");
        assert_eq!(registry.publish("news", &f, Some("1.1")), 1);
        assert!(rx_a.try_recv().is_err());
        assert!(rx_b.try_recv().is_ok());
        for _ in 0..4 {
            registry.publish("news", &f, None);
        }
        // b's outbox (capacity 4) is full now: the next frame is refused and b
        // is told to close.
        assert_eq!(registry.publish("news", &f, Some("1.1")), 0);
        assert!(has_permit(&b.overflow));
        assert_eq!(registry.publish("nobody", &f, None), 0);
    }

    fn has_permit(notify: &Notify) -> bool {
        let notified = notify.notified();
        let mut notified = std::pin::pin!(notified);
        // A stored permit completes the first poll.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        notified.as_mut().poll(&mut cx).is_ready()
    }
}
