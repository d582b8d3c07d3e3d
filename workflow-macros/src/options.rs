//! Parsing the attribute's options (`max_retries = 5`, `name = "..."`, ...).

use std::collections::HashSet;
use std::time::Duration;

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, ExprLit, Lit, Path};

use crate::model::{Kind, Options, Retry};

const STEP_OPTIONS: &[&str] = &[
    "max_retries",
    "initial_backoff",
    "max_backoff",
    "backoff_factor",
    "jitter",
    "name",
    "crate",
];
const WORKFLOW_OPTIONS: &[&str] = &["name", "crate"];

/// Collects every error instead of stopping at the first.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(e) => e.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn into_result(self) -> Result<(), syn::Error> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn list(options: &[&str]) -> String {
    options
        .iter()
        .map(|o| format!("`{o}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses the attribute's arguments, adding problems to `errors`.
pub(crate) fn parse(kind: Kind, args: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options {
        name: None,
        krate: None,
        retry: Retry::default(),
    };
    let mut seen = HashSet::new();
    let allowed = match kind {
        Kind::Step => STEP_OPTIONS,
        Kind::Workflow => WORKFLOW_OPTIONS,
    };
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_else(|| {
                let p = &meta.path;
                quote::quote!(#p).to_string().replace(' ', "")
            });
        if !allowed.contains(&key.as_str()) {
            let hint = if kind == Kind::Workflow && STEP_OPTIONS.contains(&key.as_str()) {
                "; retry options belong on `#[step]` functions, not on the workflow".to_owned()
            } else {
                String::new()
            };
            errors.push(meta.error(format!(
                "unknown `{}` option `{key}`; expected one of {}{hint}",
                kind.attr(),
                list(allowed)
            )));
            skip_value(&meta);
            return Ok(());
        }
        if !seen.insert(key.clone()) {
            errors.push(meta.error(format!("duplicate option `{key}`; give it once")));
            skip_value(&meta);
            return Ok(());
        }
        let value = match value(&meta, &key) {
            Ok(v) => v,
            Err(e) => {
                errors.push(e);
                return Ok(());
            }
        };
        if let Err(e) = apply(&mut options, &key, &value) {
            errors.push(e);
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(args) {
        errors.push(e);
    }
    options
}

/// Consumes `= value` after an option that is being rejected.
fn skip_value(meta: &ParseNestedMeta<'_>) {
    if meta.input.peek(syn::Token![=]) {
        let _ = meta.value().and_then(|v| v.parse::<Expr>());
    }
}

fn value(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<Expr> {
    if !meta.input.peek(syn::Token![=]) {
        return Err(meta.error(format!(
            "option `{key}` needs a value, as in `{}`",
            example(key)
        )));
    }
    meta.value()?.parse::<Expr>()
}

fn example(key: &str) -> &'static str {
    match key {
        "max_retries" => "max_retries = 5",
        "initial_backoff" => "initial_backoff = \"500ms\"",
        "max_backoff" => "max_backoff = \"30s\"",
        "backoff_factor" => "backoff_factor = 2.0",
        "jitter" => "jitter = false",
        "name" => "name = \"send_welcome_email\"",
        "crate" => "crate = \"my_workflow_core\"",
        _ => "key = value",
    }
}

fn bad(expr: &Expr, key: &str, what: &str) -> syn::Error {
    syn::Error::new_spanned(
        expr,
        format!("`{key}` must be {what}, as in `{}`", example(key)),
    )
}

fn lit(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        _ => None,
    }
}

fn duration_ms(expr: &Expr, key: &str) -> syn::Result<u64> {
    let Some(Lit::Str(s)) = lit(expr) else {
        return Err(bad(expr, key, "a duration string"));
    };
    let d: Duration = humantime::parse_duration(&s.value()).map_err(|e| {
        syn::Error::new_spanned(
            s,
            format!("invalid duration for `{key}`: {e}; write e.g. \"500ms\", \"2s\" or \"1m\""),
        )
    })?;
    u64::try_from(d.as_millis())
        .map_err(|_| syn::Error::new_spanned(s, format!("`{key}` is too long")))
}

fn apply(options: &mut Options, key: &str, expr: &Expr) -> syn::Result<()> {
    let retry = &mut options.retry;
    match key {
        "max_retries" => {
            let Some(Lit::Int(i)) = lit(expr) else {
                return Err(bad(expr, key, "a whole number"));
            };
            let n: u32 = i.base10_parse().map_err(|_| {
                syn::Error::new_spanned(
                    i,
                    "`max_retries` must be a whole number between 0 and 4294967295",
                )
            })?;
            if n > 1000 {
                return Err(syn::Error::new_spanned(
                    i,
                    "`max_retries` above 1000 is almost certainly a mistake; use at most 1000",
                ));
            }
            retry.max_retries = Some(n);
        }
        "initial_backoff" => retry.initial_backoff_ms = Some(duration_ms(expr, key)?),
        "max_backoff" => retry.max_backoff_ms = Some(duration_ms(expr, key)?),
        "backoff_factor" => {
            let factor = match lit(expr) {
                Some(Lit::Float(f)) => f.base10_parse::<f64>()?,
                Some(Lit::Int(i)) => i.base10_parse::<f64>()?,
                _ => return Err(bad(expr, key, "a number")),
            };
            if !(1.0..=100.0).contains(&factor) {
                return Err(syn::Error::new_spanned(
                    expr,
                    "`backoff_factor` must be between 1.0 and 100.0",
                ));
            }
            retry.backoff_factor = Some(factor);
        }
        "jitter" => {
            let Some(Lit::Bool(b)) = lit(expr) else {
                return Err(bad(expr, key, "`true` or `false`"));
            };
            retry.jitter = Some(b.value);
        }
        "name" => {
            let Some(Lit::Str(s)) = lit(expr) else {
                return Err(bad(expr, key, "a string"));
            };
            let name = s.value();
            if name.trim().is_empty() {
                return Err(syn::Error::new_spanned(s, "`name` must not be empty"));
            }
            options.name = Some(name);
        }
        "crate" => {
            let Some(Lit::Str(s)) = lit(expr) else {
                return Err(bad(expr, key, "a string with a path"));
            };
            let path: Path = s.parse().map_err(|_| {
                syn::Error::new_spanned(
                    s,
                    "`crate` must be a path, as in `crate = \"my_workflow_core\"`",
                )
            })?;
            options.krate = Some(path);
        }
        _ => unreachable!("checked against the allowed options"),
    }
    Ok(())
}

/// Cross-option checks.
pub(crate) fn validate(options: &Options, args: &TokenStream, errors: &mut Errors) {
    let r = &options.retry;
    if let (Some(initial), Some(max)) = (r.initial_backoff_ms, r.max_backoff_ms)
        && initial > max
    {
        errors.push(syn::Error::new_spanned(
            args,
            "`initial_backoff` is longer than `max_backoff`; make `max_backoff` at least as long",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse_step(tokens: TokenStream) -> (Options, Result<(), syn::Error>) {
        let mut errors = Errors::default();
        let options = parse(Kind::Step, tokens, &mut errors);
        (options, errors.into_result())
    }

    #[test]
    fn parses_every_step_option() {
        let (o, r) = parse_step(quote!(
            max_retries = 5,
            initial_backoff = "250ms",
            max_backoff = "1m",
            backoff_factor = 3.0,
            jitter = false,
            name = "send",
            crate = "wf"
        ));
        r.unwrap();
        assert_eq!(o.retry.max_retries, Some(5));
        assert_eq!(o.retry.initial_backoff_ms, Some(250));
        assert_eq!(o.retry.max_backoff_ms, Some(60_000));
        assert_eq!(o.retry.backoff_factor, Some(3.0));
        assert_eq!(o.retry.jitter, Some(false));
        assert_eq!(o.name.as_deref(), Some("send"));
        assert!(o.krate.is_some());
    }

    #[test]
    fn reports_every_problem_at_once() {
        let (_, r) = parse_step(quote!(retries = 3, max_retries = "x", jitter = 1));
        let messages: Vec<String> = r.unwrap_err().into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].contains("unknown `#[step]` option `retries`"));
        assert!(messages[1].contains("`max_retries` must be a whole number"));
        assert!(messages[2].contains("`jitter` must be `true` or `false`"));
    }

    #[test]
    fn duplicate_options_are_rejected() {
        let (_, r) = parse_step(quote!(name = "a", name = "b"));
        assert!(
            r.unwrap_err()
                .to_string()
                .contains("duplicate option `name`")
        );
    }

    #[test]
    fn workflow_rejects_retry_options_with_a_hint() {
        let mut errors = Errors::default();
        parse(Kind::Workflow, quote!(max_retries = 2), &mut errors);
        let msg = errors.into_result().unwrap_err().to_string();
        assert!(msg.contains("belong on `#[step]`"), "{msg}");
    }
}
