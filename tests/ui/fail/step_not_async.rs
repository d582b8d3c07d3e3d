use workflow_core::{StepError, step};

#[step]
fn create_user(email: String) -> Result<u64, StepError> {
    Ok(email.len() as u64)
}

fn main() {}
