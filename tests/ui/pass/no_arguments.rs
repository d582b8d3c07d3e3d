use workflow_core::{StepError, step, workflow};

#[step]
async fn answer() -> Result<u64, StepError> {
    Ok(42)
}

#[workflow]
async fn ask() -> Result<u64, StepError> {
    answer().await
}

async fn start(engine: workflow_core::Engine) -> workflow_core::Result<u64> {
    engine.start(ask, ()).await?.result().await
}

fn main() {
    let _ = start;
}
