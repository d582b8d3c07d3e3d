use workflow_core::{StepError, step};

struct User {
    email: String,
}

#[step]
async fn create_user(email: String) -> Result<User, StepError> {
    Ok(User { email })
}

fn main() {}
