//! `crate = "..."` finds `workflow_core` under another name.

extern crate workflow_core as wf;

use wf::StepError;

#[wf::step(crate = "wf", max_retries = 1)]
async fn double(n: u64) -> Result<u64, StepError> {
    Ok(n * 2)
}

#[wf::workflow(crate = "wf")]
async fn doubled(n: u64) -> Result<u64, StepError> {
    double(n).await
}

fn main() {
    let _ = doubled;
}
