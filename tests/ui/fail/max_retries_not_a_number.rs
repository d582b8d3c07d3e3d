use workflow_core::{StepError, step};

#[step(max_retries = "x")]
async fn send_welcome(email: String) -> Result<(), StepError> {
    let _ = email;
    Ok(())
}

fn main() {}
