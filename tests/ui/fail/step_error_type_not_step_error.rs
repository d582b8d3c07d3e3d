use workflow_core::step;

#[derive(Debug)]
struct MyError;

#[step]
async fn create_user(email: String) -> Result<u64, MyError> {
    let _ = email;
    Err(MyError)
}

fn main() {}
