use workflow_core::step;

#[step]
async fn send_welcome(email: String) {
    let _ = email;
}

fn main() {}
