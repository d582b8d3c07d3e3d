use workflow_core::{StepError, workflow};

struct User {
    email: String,
}

#[workflow]
async fn invite(team: String, users: Vec<User>) -> Result<usize, StepError> {
    Ok(team.len() + users.iter().map(|u| u.email.len()).sum::<usize>())
}

fn main() {}
