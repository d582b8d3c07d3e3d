use workflow_core::{StepError, step};

struct User {
    email: String,
}

#[step]
async fn send_welcome(user: User) -> Result<(), StepError> {
    let _ = user.email;
    Ok(())
}

fn main() {}
