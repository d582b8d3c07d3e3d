use workflow_core::{StepError, workflow};

#[workflow(max_retries = 3)]
async fn signup(email: String) -> Result<u64, StepError> {
    Ok(email.len() as u64)
}

fn main() {}
