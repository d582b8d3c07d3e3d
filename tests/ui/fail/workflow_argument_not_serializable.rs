use workflow_core::{StepError, workflow};

struct Order {
    id: u64,
}

#[workflow]
async fn checkout(order: Order) -> Result<u64, StepError> {
    Ok(order.id)
}

fn main() {}
