use workflow_core::{StepError, step};

#[step]
async fn store<T: serde::Serialize>(value: T) -> Result<(), StepError> {
    let _ = value;
    Ok(())
}

fn main() {}
