//! Attribute macros `#[workflow]` and `#[step]`.
//!
//! Use them through `workflow_core`, which re-exports them and documents
//! them. The work happens on `proc_macro2` token streams in `parse` (options
//! and signature, into a typed model) and `expand` (code generation, which
//! cannot fail), so both can be unit-tested.

mod expand;
mod model;
mod options;
mod parse;

use proc_macro::TokenStream;

/// Marks an async function as a durable workflow. See `workflow_core::workflow`.
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    parse::entry(model::Kind::Workflow, args.into(), item.into()).into()
}

/// Marks an async function as a journaled, retried step. See `workflow_core::step`.
#[proc_macro_attribute]
pub fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    parse::entry(model::Kind::Step, args.into(), item.into()).into()
}
