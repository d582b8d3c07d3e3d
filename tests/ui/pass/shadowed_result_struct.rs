//! A local `struct Result` does not break the generated code.
#![allow(dead_code)]

use workflow_core::{StepError, step, workflow};

struct Result;

#[step]
async fn double(n: u64) -> ::core::result::Result<u64, StepError> {
    Ok(n * 2)
}

#[workflow]
async fn doubled(n: u64) -> ::core::result::Result<u64, StepError> {
    double(n).await
}

fn main() {
    let _ = (doubled, Result);
}
