use workflow_core::{StepError, step};

struct User {
    email: String,
}

#[step]
async fn verify(user: User) -> Result<User, StepError> {
    let _ = &user.email;
    Ok(user)
}

fn main() {}
