//! Public, documented steps and workflows compile without any warning under
//! strict lints.
#![deny(warnings, unused, missing_docs, missing_debug_implementations)]
#![deny(rust_2018_idioms, unreachable_pub, unused_qualifications)]
#![deny(clippy::all, clippy::pedantic)]

use workflow_core::{StepError, step, workflow};

/// Adds one.
///
/// # Errors
///
/// Never.
#[step(max_retries = 2, initial_backoff = "10ms", max_backoff = "1s")]
#[allow(clippy::unused_async)]
pub async fn increment(n: u64) -> Result<u64, StepError> {
    Ok(n + 1)
}

/// Adds two.
///
/// # Errors
///
/// When a step fails.
#[workflow(name = "add_two")]
#[allow(clippy::needless_pass_by_value)]
pub async fn add_two(n: u64, _label: String) -> Result<u64, StepError> {
    let n = increment(n).await?;
    increment(n).await
}

/// Entry point.
pub fn main() {
    let _ = add_two;
}
