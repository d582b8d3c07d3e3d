//! Deterministic replacements for the clock and randomness, for use in
//! workflow code.
//!
//! Workflow code is replayed after a suspension or a crash and must take the
//! same decisions each time. Read the time with [`now`] and draw random values
//! with [`random`], [`random_u64`] or [`uuid`]: inside a workflow they return
//! the same values on every replay; outside one they are the ordinary clock
//! and generator. (Steps are not replayed; they may use anything.)

use std::time::SystemTime;

use crate::context;
use crate::journal::EventKind;
use crate::replay::OpKind;
use crate::time::Timestamp;

/// The current time, recorded in the journal on first execution and replayed
/// from it afterwards (millisecond resolution).
///
/// # Examples
///
/// ```
/// use workflow_core::{now, workflow, StepError};
///
/// #[workflow]
/// async fn stamp() -> Result<u128, StepError> {
///     let t = now();
///     Ok(t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis())
/// }
/// ```
#[must_use]
pub fn now() -> SystemTime {
    let Some(ctx) = context::current() else {
        return SystemTime::now();
    };
    let Some(op) = ctx.reserve(OpKind::Now, "") else {
        // The run has failed with a non-determinism error; the value is moot.
        return SystemTime::now();
    };
    if let Some(EventKind::TimeRecorded { time, .. }) = ctx.take_now(op) {
        return time.to_system_time();
    }
    let time = Timestamp::now();
    ctx.enqueue(EventKind::TimeRecorded { op, time });
    time.to_system_time()
}

/// A random `u64`, the same on every replay of the run.
#[must_use]
pub fn random_u64() -> u64 {
    match context::current() {
        Some(ctx) => ctx.next_random(),
        None => rand::random(),
    }
}

/// A random `f64` in `[0, 1)`, the same on every replay of the run.
///
/// # Examples
///
/// ```
/// let x = workflow_core::random();
/// assert!((0.0..1.0).contains(&x));
/// ```
#[must_use]
pub fn random() -> f64 {
    (random_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A random (version 4) UUID, the same on every replay of the run.
#[must_use]
pub fn uuid() -> uuid::Uuid {
    let bytes = ((random_u64() as u128) << 64 | random_u64() as u128).to_le_bytes();
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
