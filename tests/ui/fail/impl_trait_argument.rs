use workflow_core::{StepError, step};

#[step]
async fn send_welcome(email: impl Into<String>) -> Result<(), StepError> {
    let _ = email.into();
    Ok(())
}

fn main() {}
