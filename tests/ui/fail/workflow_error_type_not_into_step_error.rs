use workflow_core::workflow;

#[derive(Debug)]
struct MyError;

#[workflow]
async fn signup(email: String) -> Result<u64, MyError> {
    let _ = email;
    Err(MyError)
}

fn main() {}
