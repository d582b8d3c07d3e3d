use workflow_core::{StepError, step};

#[step]
async fn create_user(email: &str) -> Result<u64, StepError> {
    Ok(email.len() as u64)
}

fn main() {}
