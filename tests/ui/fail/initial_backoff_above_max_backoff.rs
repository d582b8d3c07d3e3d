use workflow_core::{StepError, step};

#[step(initial_backoff = "10s", max_backoff = "1s")]
async fn send_welcome(email: String) -> Result<(), StepError> {
    let _ = email;
    Ok(())
}

fn main() {}
