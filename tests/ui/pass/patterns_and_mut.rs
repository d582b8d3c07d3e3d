//! Tuple patterns, struct patterns and `mut` bindings in arguments.

use serde::{Deserialize, Serialize};
use workflow_core::{StepError, step, workflow};

#[derive(Serialize, Deserialize)]
struct Point {
    x: i64,
    y: i64,
}

#[step]
async fn add((a, b): (u64, u64)) -> Result<u64, StepError> {
    Ok(a + b)
}

#[step]
async fn length(Point { x, y }: Point) -> Result<i64, StepError> {
    Ok(x.abs() + y.abs())
}

#[step]
async fn push(mut items: Vec<u64>, item: u64) -> Result<Vec<u64>, StepError> {
    items.push(item);
    Ok(items)
}

#[workflow]
async fn total(mut n: u64, (a, b): (u64, u64)) -> Result<u64, StepError> {
    n += add((a, b)).await?;
    n += length(Point { x: 1, y: -2 }).await? as u64;
    Ok(n + push(vec![], 1).await?.len() as u64)
}

fn main() {
    let _ = total;
}
