use workflow_core::step;

#[step]
async fn find_user(email: String) -> Option<u64> {
    let _ = email;
    None
}

fn main() {}
