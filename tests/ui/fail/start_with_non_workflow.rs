use workflow_core::{Engine, StepError, step};

#[step]
async fn create_user(email: String) -> Result<u64, StepError> {
    Ok(email.len() as u64)
}

async fn start(engine: Engine) {
    let _ = engine.start(create_user, ("ada@example.com".to_string(),)).await;
}

fn main() {}
