//! `crate = "..."` also accepts a `use` alias of `workflow_core`.

use workflow_core as flows;

#[flows::step(crate = "flows")]
async fn double(n: u64) -> Result<u64, flows::StepError> {
    Ok(n * 2)
}

#[flows::workflow(crate = "flows", name = "doubled_v1")]
async fn doubled(n: u64) -> Result<u64, flows::StepError> {
    double(n).await
}

fn main() {
    let _ = doubled;
}
