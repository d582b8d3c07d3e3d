use workflow_core::{StepError, step};

struct Mailer;

impl Mailer {
    #[step]
    async fn send(&self, to: String) -> Result<(), StepError> {
        let _ = to;
        Ok(())
    }
}

fn main() {}
