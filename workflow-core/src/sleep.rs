//! Durable sleep.

use std::future::{Future, poll_fn};
use std::time::{Duration, SystemTime};

use crate::context::{self, Failure};
use crate::journal::EventKind;
use crate::replay::OpKind;
use crate::step::wait_until;
use crate::time::Timestamp;

/// How long to sleep, or until when: what [`sleep`] accepts.
///
/// Converts from a [`Duration`], a duration string such as `"5s"`, `"250ms"`
/// or `"1h 30m"` (see [`humantime`]), a [`SystemTime`] or a [`Timestamp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SleepFor(Spec);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Spec {
    For(Duration),
    Until(Timestamp),
    Invalid(String),
}

impl SleepFor {
    /// Sleep until a point in time.
    #[must_use]
    pub fn until(t: impl Into<Timestamp>) -> Self {
        Self(Spec::Until(t.into()))
    }

    fn wake_at(&self, now: Timestamp) -> Result<Timestamp, String> {
        match &self.0 {
            Spec::For(d) => Ok(now + *d),
            Spec::Until(t) => Ok(*t),
            Spec::Invalid(message) => Err(message.clone()),
        }
    }
}

impl From<Duration> for SleepFor {
    fn from(d: Duration) -> Self {
        Self(Spec::For(d))
    }
}

impl From<&str> for SleepFor {
    fn from(s: &str) -> Self {
        match humantime::parse_duration(s) {
            Ok(d) => Self(Spec::For(d)),
            Err(e) => Self(Spec::Invalid(format!(
                "`sleep(\"{s}\")`: {e}; write a duration such as \"5s\", \"250ms\" or \"1h 30m\""
            ))),
        }
    }
}

impl From<String> for SleepFor {
    fn from(s: String) -> Self {
        Self::from(s.as_str())
    }
}

impl From<SystemTime> for SleepFor {
    fn from(t: SystemTime) -> Self {
        Self::until(t)
    }
}

impl From<Timestamp> for SleepFor {
    fn from(t: Timestamp) -> Self {
        Self::until(t)
    }
}

/// Sleeps durably: for a duration (`"5s"`, a [`Duration`]) or until a time.
///
/// Inside a workflow the wake-up time is journaled when the sleep starts. A
/// run that only waits holds no task: the engine unloads it and wakes it at
/// the recorded time, also after a restart. Outside a workflow this is an
/// ordinary timer.
///
/// An unparsable duration string fails the run with an error that quotes it
/// (outside a workflow it is logged and the sleep returns at once).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workflow_core::{sleep, workflow, StepError};
///
/// #[workflow]
/// async fn reminder(name: String) -> Result<String, StepError> {
///     sleep("10ms").await;
///     sleep(Duration::from_millis(5)).await;
///     Ok(format!("reminded {name}"))
/// }
/// ```
pub fn sleep(duration: impl Into<SleepFor>) -> impl Future<Output = ()> + Send {
    let spec = duration.into();
    let ctx = context::current();
    let op = ctx.as_ref().map(|c| c.reserve(OpKind::Sleep, ""));
    async move {
        let (ctx, op) = match (ctx, op) {
            (Some(ctx), Some(Some(op))) => (ctx, op),
            (Some(_), _) => return std::future::pending().await,
            (None, _) => {
                match spec.wake_at(Timestamp::now()) {
                    Ok(at) => tokio::time::sleep(Timestamp::now().until(at)).await,
                    Err(message) => tracing::error!("{message}"),
                }
                return;
            }
        };
        let mut wake_at = None;
        while let Some(event) = poll_fn(|cx| ctx.poll_take(op, cx)).await {
            match event {
                EventKind::WaitCreated { wake_at: at, .. } => wake_at = Some(at),
                EventKind::WaitCompleted { .. } => return,
                other => {
                    ctx.fail(Failure::Journal(format!(
                        "journal event `{}` for operation #{op} does not belong to a sleep",
                        other.name()
                    )));
                    return std::future::pending().await;
                }
            }
        }
        let at = match wake_at {
            Some(at) => at,
            None => match spec.wake_at(Timestamp::now()) {
                Ok(at) => {
                    ctx.enqueue(EventKind::WaitCreated { op, wake_at: at });
                    at
                }
                Err(message) => {
                    ctx.fail(Failure::Invalid(message));
                    return std::future::pending().await;
                }
            },
        };
        wait_until(&ctx, op, at).await;
        ctx.enqueue(EventKind::WaitCompleted { op });
    }
}

/// Sleeps durably until a point in time; see [`sleep`].
pub fn sleep_until(t: impl Into<Timestamp>) -> impl Future<Output = ()> + Send {
    sleep(SleepFor::until(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_strings_parse() {
        let now = Timestamp::from_millis(0);
        assert_eq!(
            SleepFor::from("5s").wake_at(now),
            Ok(Timestamp::from_millis(5_000))
        );
        assert_eq!(
            SleepFor::from("1m 30s").wake_at(now),
            Ok(Timestamp::from_millis(90_000))
        );
        let err = SleepFor::from("5 parsecs").wake_at(now).unwrap_err();
        assert!(err.contains("5 parsecs") && err.contains("\"5s\""), "{err}");
    }
}
