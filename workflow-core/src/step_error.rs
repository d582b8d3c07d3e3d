//! The errors steps and workflows return: [`StepError`], [`FatalError`] and
//! [`RetryableError`].

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::journal::ErrorRecord;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An error that must not be retried.
///
/// Return it from a step when another attempt cannot succeed (invalid input,
/// a permission the caller does not have, a resource that is gone). The step
/// fails at once and its caller, the workflow, gets the error.
///
/// # Examples
///
/// ```
/// use workflow_core::{FatalError, StepError};
///
/// fn check(email: &str) -> Result<(), StepError> {
///     if !email.contains('@') {
///         return Err(FatalError::new("invalid email address").into());
///     }
///     Ok(())
/// }
/// assert!(check("nobody").unwrap_err().is_fatal());
/// ```
#[derive(Debug)]
pub struct FatalError {
    message: String,
    source: Option<BoxError>,
}

impl FatalError {
    /// A fatal error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A fatal error with a message and the error that caused it.
    pub fn with_source(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for FatalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for FatalError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// An error that should be retried, optionally after a given delay.
///
/// Any error a step returns through `?` is already retryable; use this type
/// when the step knows when to try again, for instance from a `Retry-After`
/// header. The delay replaces the step's backoff for that attempt.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workflow_core::{RetryableError, StepError};
///
/// let err: StepError = RetryableError::new("rate limited")
///     .retry_after(Duration::from_secs(2))
///     .into();
/// assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
/// ```
#[derive(Debug)]
pub struct RetryableError {
    message: String,
    retry_after: Option<Duration>,
    source: Option<BoxError>,
}

impl RetryableError {
    /// A retryable error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// A retryable error with a message and the error that caused it.
    pub fn with_source(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self {
            message: message.into(),
            retry_after: None,
            source: Some(source.into()),
        }
    }

    /// Try again after `delay` instead of the step's backoff.
    #[must_use]
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }
}

impl fmt::Display for RetryableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for RetryableError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// The error type of steps and workflows.
///
/// Steps return `Result<T, StepError>`. Any error type that implements
/// [`std::error::Error`] converts into it with `?` and is retried; a
/// [`FatalError`] is never retried; a [`RetryableError`] may set its own
/// delay.
///
/// When a step has used up its attempts (or failed fatally), the workflow that
/// called it receives a `StepError` describing the failure: the step's name,
/// the number of attempts and the last error's message. That error is the
/// same whether the step just failed or its failure is replayed from the
/// journal, so workflows can handle it deterministically.
///
/// Like `anyhow::Error`, `StepError` does not itself implement
/// [`std::error::Error`] (that would conflict with the blanket conversion);
/// use [`StepError::source`] or [`StepError::into_boxed`] to reach the cause.
pub struct StepError {
    inner: Box<Inner>,
}

struct Inner {
    message: String,
    fatal: bool,
    retry_after: Option<Duration>,
    source: Option<BoxError>,
    step: Option<FailedStep>,
}

#[derive(Debug, Clone)]
struct FailedStep {
    name: String,
    attempts: u32,
}

impl StepError {
    fn from_boxed(error: BoxError) -> Self {
        let (fatal, retry_after, message) = if let Some(fatal) = error.downcast_ref::<FatalError>()
        {
            (true, None, fatal.to_string())
        } else if let Some(retry) = error.downcast_ref::<RetryableError>() {
            (false, retry.retry_after, retry.to_string())
        } else {
            (false, None, error.to_string())
        };
        Self {
            inner: Box::new(Inner {
                message,
                fatal,
                retry_after,
                source: Some(error),
                step: None,
            }),
        }
    }

    /// A retryable error with only a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                message: message.into(),
                fatal: false,
                retry_after: None,
                source: None,
                step: None,
            }),
        }
    }

    /// Whether this error stops retries.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        self.inner.fatal
    }

    /// The delay the error asked for before the next attempt, if any.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The name of the step that failed, when this error is a step's final
    /// failure as seen by the workflow.
    #[must_use]
    pub fn step_name(&self) -> Option<&str> {
        self.inner.step.as_ref().map(|s| s.name.as_str())
    }

    /// How many attempts the failed step made, when this error is a step's
    /// final failure as seen by the workflow.
    #[must_use]
    pub fn attempts(&self) -> Option<u32> {
        self.inner.step.as_ref().map(|s| s.attempts)
    }

    /// The message of the underlying error (without the step context).
    #[must_use]
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The underlying error, when it is still in memory.
    ///
    /// Errors replayed from the journal carry only their message.
    #[must_use]
    pub fn source(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.inner.source.as_deref()
    }

    /// Converts into a boxed standard error.
    #[must_use]
    pub fn into_boxed(self) -> BoxError {
        Box::new(Boxed(self.to_string(), self.inner.source))
    }

    /// The record stored in the journal for this error.
    pub(crate) fn to_record(&self) -> ErrorRecord {
        let mut message = self.inner.message.clone();
        let mut source = self.inner.source.as_deref().and_then(|e| e.source());
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        ErrorRecord {
            message,
            fatal: self.inner.fatal,
            step: self.inner.step.as_ref().map(|s| s.name.clone()),
            attempts: self.inner.step.as_ref().map(|s| s.attempts),
        }
    }

    /// The error a workflow sees for a failed step, rebuilt from the journal.
    pub(crate) fn from_step_record(record: &ErrorRecord, step: &str, attempts: u32) -> Self {
        Self {
            inner: Box::new(Inner {
                message: record.message.clone(),
                fatal: record.fatal,
                retry_after: None,
                source: None,
                step: Some(FailedStep {
                    name: step.to_owned(),
                    attempts,
                }),
            }),
        }
    }
}

impl<E> From<E> for StepError
where
    E: StdError + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        Self::from_boxed(Box::new(error))
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.step {
            Some(step) => {
                let how = if self.inner.fatal {
                    "failed fatally"
                } else {
                    "failed"
                };
                let plural = if step.attempts == 1 { "" } else { "s" };
                write!(
                    f,
                    "step `{}` {how} after {} attempt{plural}: {}",
                    step.name, step.attempts, self.inner.message
                )
            }
            None => f.write_str(&self.inner.message),
        }
    }
}

impl fmt::Debug for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StepError");
        d.field("message", &self.inner.message)
            .field("fatal", &self.inner.fatal);
        if let Some(step) = &self.inner.step {
            d.field("step", &step.name)
                .field("attempts", &step.attempts);
        }
        if let Some(retry_after) = self.inner.retry_after {
            d.field("retry_after", &retry_after);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

struct Boxed(String, Option<BoxError>);

impl fmt::Debug for Boxed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Boxed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Boxed {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.1.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_mark_errors_are_retryable() {
        let io = std::io::Error::other("connection reset");
        let err = StepError::from(io);
        assert!(!err.is_fatal());
        assert_eq!(err.message(), "connection reset");
        assert!(err.source().is_some());
    }

    #[test]
    fn fatal_and_retryable_are_recognised_through_from() {
        let fatal: StepError = FatalError::new("bad input").into();
        assert!(fatal.is_fatal());
        let retry: StepError = RetryableError::new("busy")
            .retry_after(Duration::from_millis(250))
            .into();
        assert!(!retry.is_fatal());
        assert_eq!(retry.retry_after(), Some(Duration::from_millis(250)));
    }

    #[test]
    fn record_keeps_the_cause_chain() {
        let err: StepError =
            FatalError::with_source("could not send", std::io::Error::other("refused")).into();
        let record = err.to_record();
        assert_eq!(record.message, "could not send: refused");
        assert!(record.fatal);
    }

    #[test]
    fn replayed_failure_names_the_step() {
        let record = ErrorRecord {
            message: "smtp down".into(),
            fatal: false,
            step: None,
            attempts: None,
        };
        let err = StepError::from_step_record(&record, "send_mail", 4);
        assert_eq!(
            err.to_string(),
            "step `send_mail` failed after 4 attempts: smtp down"
        );
        assert_eq!(err.step_name(), Some("send_mail"));
        assert_eq!(err.attempts(), Some(4));
    }
}
