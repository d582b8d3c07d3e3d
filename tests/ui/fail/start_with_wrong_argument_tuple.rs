use workflow_core::{Engine, StepError, workflow};

#[workflow]
async fn signup(email: String, plan: u8) -> Result<u64, StepError> {
    Ok(email.len() as u64 + u64::from(plan))
}

async fn start(engine: Engine) {
    let _ = engine.start(signup, ("ada@example.com".to_string(), "pro")).await;
}

fn main() {}
