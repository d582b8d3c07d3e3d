use workflow_core::{StepError, step};

#[step(max_retries = 3, max_retries = 5)]
async fn send_welcome(email: String) -> Result<(), StepError> {
    let _ = email;
    Ok(())
}

fn main() {}
