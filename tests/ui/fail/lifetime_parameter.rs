use workflow_core::{StepError, step};

#[step]
async fn greet<'a>(name: std::borrow::Cow<'a, str>) -> Result<String, StepError> {
    Ok(format!("hello {name}"))
}

fn main() {}
