//! The validated description of an annotated function that the expander
//! works from.

use syn::{Attribute, Block, Ident, Pat, Path, Type, Visibility};

/// Which attribute is being expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Workflow,
    Step,
}

impl Kind {
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Kind::Workflow => "#[workflow]",
            Kind::Step => "#[step]",
        }
    }
}

/// Retry settings of a step, as given in the attribute.
#[derive(Debug, Default, Clone)]
pub(crate) struct Retry {
    pub(crate) max_retries: Option<u32>,
    pub(crate) initial_backoff_ms: Option<u64>,
    pub(crate) max_backoff_ms: Option<u64>,
    pub(crate) backoff_factor: Option<f64>,
    pub(crate) jitter: Option<bool>,
}

/// The attribute's options after validation.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) name: Option<String>,
    pub(crate) krate: Option<Path>,
    pub(crate) retry: Retry,
}

/// One argument of the function.
#[derive(Debug, Clone)]
pub(crate) struct Arg {
    /// The name used in the generated signature.
    pub(crate) ident: Ident,
    /// The user's pattern (kept for the body).
    pub(crate) pat: Pat,
    pub(crate) ty: Type,
}

/// A validated `#[workflow]` or `#[step]` function.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    pub(crate) kind: Kind,
    pub(crate) options: Options,
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) ident: Ident,
    pub(crate) args: Vec<Arg>,
    /// The declared return type (always present after validation).
    pub(crate) output: Type,
    pub(crate) block: Block,
}

impl Function {
    /// The registered or journaled name.
    pub(crate) fn name(&self) -> String {
        self.options
            .name
            .clone()
            .unwrap_or_else(|| self.ident.to_string())
    }
}
