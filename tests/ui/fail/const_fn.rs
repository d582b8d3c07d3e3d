use workflow_core::{StepError, step};

#[step]
const async fn answer() -> Result<u64, StepError> {
    Ok(42)
}

fn main() {}
