use workflow_core::{StepError, step};

#[step(backoff_factor = 0.5)]
async fn send_welcome(email: String) -> Result<(), StepError> {
    let _ = email;
    Ok(())
}

fn main() {}
