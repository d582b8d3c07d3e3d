//! Compile-time behaviour of `#[workflow]` and `#[step]`: what they reject,
//! with which message, and what they accept.
//!
//! Each file in `ui/fail` holds one mistake and its expected diagnostics in
//! the `.stderr` beside it; `ui/pass` holds code that must compile cleanly.
//! After changing a message, bless with
//! `TRYBUILD=overwrite cargo test -p tests --test ui` and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
    t.pass("ui/pass/*.rs");
}
