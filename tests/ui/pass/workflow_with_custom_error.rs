//! A workflow may return any error that converts into `StepError`.

use workflow_core::{FatalError, StepError, workflow};

#[derive(Debug)]
struct Invalid;

impl From<Invalid> for StepError {
    fn from(_: Invalid) -> Self {
        FatalError::new("invalid").into()
    }
}

#[workflow]
async fn check(n: u64) -> Result<u64, Invalid> {
    if n == 0 { Err(Invalid) } else { Ok(n) }
}

fn main() {
    let _ = check;
}
