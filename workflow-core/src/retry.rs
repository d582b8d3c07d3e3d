//! Retry policy: how many attempts a step gets and how long to wait between
//! them.

use std::time::Duration;

/// How a step is retried: the number of retries and an exponential backoff
/// with jitter and a cap.
///
/// The delay before retry `n` (after `n` failed attempts) is
/// `min(max_backoff, initial_backoff * factor^(n-1))`; with jitter on, a
/// random point in the upper half of that. A [`RetryableError`] with
/// `retry_after` overrides the delay for one attempt.
///
/// [`RetryableError`]: crate::RetryableError
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workflow_core::RetryPolicy;
///
/// let policy = RetryPolicy::default().without_jitter();
/// assert_eq!(policy.max_attempts(), 4);
/// assert_eq!(policy.delay(1, None), Duration::from_secs(1));
/// assert_eq!(policy.delay(3, None), Duration::from_secs(4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The delay before the first retry.
    pub initial_backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
    /// The factor by which the delay grows with each retry.
    pub factor: f64,
    /// Whether to randomise delays (so that many failing runs do not retry in
    /// lockstep).
    pub jitter: bool,
}

impl RetryPolicy {
    /// The default number of retries of a step.
    pub const DEFAULT_MAX_RETRIES: u32 = 3;

    /// Attempts in all: `max_retries + 1`.
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.max_retries.saturating_add(1)
    }

    /// The same policy without jitter.
    #[must_use]
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// The delay after `failed_attempts` failed attempts (from 1), or
    /// `retry_after` when the error asked for one.
    #[must_use]
    pub fn delay(&self, failed_attempts: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(delay) = retry_after {
            return delay;
        }
        let exponent = failed_attempts.saturating_sub(1).min(64) as i32;
        let raw = self.initial_backoff.as_secs_f64() * self.factor.max(1.0).powi(exponent);
        let capped = raw.min(self.max_backoff.as_secs_f64()).max(0.0);
        let secs = if self.jitter {
            capped / 2.0 + rand::random::<f64>() * capped / 2.0
        } else {
            capped
        };
        Duration::try_from_secs_f64(secs).unwrap_or(self.max_backoff)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: Self::DEFAULT_MAX_RETRIES,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            factor: 2.0,
            jitter: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            factor: 2.0,
            jitter: false,
        };
        let delays: Vec<_> = (1..=5).map(|n| p.delay(n, None).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let p = RetryPolicy {
            jitter: true,
            ..RetryPolicy::default()
        };
        for _ in 0..100 {
            let d = p.delay(2, None);
            assert!(
                d >= Duration::from_secs(1) && d <= Duration::from_secs(2),
                "{d:?}"
            );
        }
    }

    #[test]
    fn retry_after_overrides_backoff() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(3, Some(Duration::from_millis(7))),
            Duration::from_millis(7)
        );
    }
}
