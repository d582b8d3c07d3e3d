use workflow_core::{StepError, step};

#[step(name = "")]
async fn send_welcome(email: String) -> Result<(), StepError> {
    let _ = email;
    Ok(())
}

fn main() {}
