use workflow_core::{StepError, workflow};

#[workflow]
fn signup(email: String) -> Result<u64, StepError> {
    Ok(email.len() as u64)
}

fn main() {}
