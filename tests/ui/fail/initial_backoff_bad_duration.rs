use workflow_core::{StepError, step};

#[step(initial_backoff = "5 parsecs")]
async fn send_welcome(email: String) -> Result<(), StepError> {
    let _ = email;
    Ok(())
}

fn main() {}
