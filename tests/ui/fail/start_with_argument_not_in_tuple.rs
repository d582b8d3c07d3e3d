use workflow_core::{Engine, StepError, workflow};

#[workflow]
async fn signup(email: String) -> Result<u64, StepError> {
    Ok(email.len() as u64)
}

async fn start(engine: Engine) {
    let _ = engine.start(signup, "ada@example.com".to_string()).await;
}

fn main() {}
