use workflow_core::{StepError, step};

#[step]
async unsafe fn read_raw(address: usize) -> Result<u64, StepError> {
    Ok(address as u64)
}

fn main() {}
