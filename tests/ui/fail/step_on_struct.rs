use workflow_core::step;

#[step]
struct SendWelcome {
    email: String,
}

fn main() {}
