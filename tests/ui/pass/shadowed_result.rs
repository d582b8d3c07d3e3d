//! Generated code uses absolute paths, so local items named like prelude
//! and std items do not break it.
#![allow(dead_code)]

use workflow_core::{StepError, step, workflow};

type Result<T> = core::result::Result<T, StepError>;

struct Option;
struct Some;
struct None;
struct Ok;
struct Err;
struct Box;
struct Send;
struct Future;
struct String;
mod core {
    pub mod result {
        pub use ::core::result::Result;
    }
}
mod std {}

#[step]
async fn double(n: u64) -> Result<u64> {
    Result::Ok(n * 2)
}

#[workflow]
async fn doubled(n: u64) -> Result<u64> {
    double(n).await
}

fn main() {
    let _ = doubled;
}
