//! Parsing and validating the annotated function into a [`Function`].

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{FnArg, GenericParam, Item, ItemFn, Pat, ReturnType, Type};

use crate::expand;
use crate::model::{Arg, Function, Kind};
use crate::options::{self, Errors};

/// The macro's entry point on `proc_macro2` streams.
pub(crate) fn entry(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    match parse(kind, args, item.clone()) {
        Ok(function) => expand::expand(&function),
        Err(error) => {
            // Keep the user's item so that the rest of the crate (and
            // rust-analyzer) still sees it; add the errors beside it.
            let mut out = item;
            out.extend(error.into_compile_error());
            out
        }
    }
}

fn parse(kind: Kind, args: TokenStream, item: TokenStream) -> syn::Result<Function> {
    let item: Item = syn::parse2(item)?;
    let Item::Fn(func) = item else {
        return Err(syn::Error::new(
            item_span(&item),
            format!("`{}` can only be applied to an `async fn`", kind.attr()),
        ));
    };
    let mut errors = Errors::default();
    let options = options::parse(kind, args.clone(), &mut errors);
    options::validate(&options, &args, &mut errors);
    let function = validate(kind, func, options, &mut errors);
    errors.into_result()?;
    Ok(function.expect("a function is built whenever there are no errors"))
}

fn item_span(item: &Item) -> proc_macro2::Span {
    // Point at the item's keyword and name rather than its whole body.
    let tokens = item.to_token_stream();
    let mut iter = tokens.into_iter();
    let first = iter.next().map(|t| t.span());
    first.unwrap_or_else(proc_macro2::Span::call_site)
}

fn validate(
    kind: Kind,
    func: ItemFn,
    options: crate::model::Options,
    errors: &mut Errors,
) -> Option<Function> {
    let attr = kind.attr();
    let sig = &func.sig;
    let what = match kind {
        Kind::Workflow => "workflow",
        Kind::Step => "step",
    };
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            format!(
                "`{attr}` functions must be `async`; write `async fn {}`",
                sig.ident
            ),
        ));
    }
    if let Some(c) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            c,
            format!("`{attr}` functions cannot be `const`"),
        ));
    }
    if let Some(u) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            u,
            format!("`{attr}` functions cannot be `unsafe`"),
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            format!("`{attr}` functions cannot declare an ABI"),
        ));
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            v,
            format!("`{attr}` functions cannot be variadic"),
        ));
    }
    if !sig.generics.params.is_empty() {
        let kinds = sig.generics.params.iter().map(|p| match p {
            GenericParam::Lifetime(_) => "lifetime",
            GenericParam::Type(_) => "type",
            GenericParam::Const(_) => "const",
        });
        let has_lifetime = kinds.clone().any(|k| k == "lifetime");
        let hint = if has_lifetime {
            "arguments are stored in the journal and must be owned, so lifetimes have no use here"
        } else {
            "a run must find the same code by name after a restart; use concrete types"
        };
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!("`{attr}` functions cannot have generic parameters: {hint}"),
        ));
    } else if let Some(w) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(
            w,
            format!("`{attr}` functions cannot have a `where` clause"),
        ));
    }

    let mut args = Vec::new();
    for (i, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(r) => errors.push(syn::Error::new_spanned(
                r,
                format!(
                    "`{attr}` functions cannot take `self`; make it a free function and pass the \
                     data it needs as arguments"
                ),
            )),
            FnArg::Typed(pt) => {
                check_arg_type(attr, what, &pt.ty, errors);
                let ident = match &*pt.pat {
                    Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                        syn::Ident::new(&p.ident.to_string(), p.ident.span())
                    }
                    _ => quote::format_ident!("__wf_arg{}", i),
                };
                args.push(Arg {
                    ident,
                    pat: (*pt.pat).clone(),
                    ty: (*pt.ty).clone(),
                });
            }
        }
    }

    let output = match &sig.output {
        ReturnType::Default => {
            let message = match kind {
                Kind::Step => format!(
                    "`#[step]` functions must return `Result<T, StepError>`; add `-> Result<(), StepError>` to `{}`",
                    sig.ident
                ),
                Kind::Workflow => format!(
                    "`#[workflow]` functions must return `Result<T, StepError>`; add `-> Result<(), StepError>` to `{}`",
                    sig.ident
                ),
            };
            errors.push(syn::Error::new_spanned(&sig.ident, message));
            None
        }
        ReturnType::Type(_, ty) => {
            if !is_result(ty) {
                errors.push(syn::Error::new_spanned(
                    ty,
                    format!(
                        "`{attr}` functions must return `Result<T, StepError>`, not `{}`",
                        ty.to_token_stream()
                            .to_string()
                            .replace(" < ", "<")
                            .replace(" >", ">")
                            .replace(" ,", ",")
                    ),
                ));
            }
            Some((**ty).clone())
        }
    };
    let output = output?;
    Some(Function {
        kind,
        options,
        attrs: func.attrs,
        vis: func.vis,
        ident: func.sig.ident.clone(),
        args,
        output,
        block: *func.block,
    })
}

/// Whether `ty` is spelled as a `Result<..>` (any path ending in `Result`).
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => {
            p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Result")
        }
        Type::Group(g) => is_result(&g.elem),
        Type::Paren(p) => is_result(&p.elem),
        _ => false,
    }
}

fn check_arg_type(attr: &str, what: &str, ty: &Type, errors: &mut Errors) {
    match ty {
        Type::Reference(r) => errors.push(syn::Error::new_spanned(
            r,
            format!(
                "`{attr}` arguments must be owned: {what} arguments are stored in the journal and \
                 replayed, so they cannot borrow; take an owned type (`String` for `&str`, \
                 `Vec<T>` for `&[T]`, `T` for `&T`)"
            ),
        )),
        Type::ImplTrait(i) => errors.push(syn::Error::new_spanned(
            i,
            format!("`{attr}` arguments cannot be `impl Trait`; use a concrete serializable type"),
        )),
        Type::Ptr(p) => errors.push(syn::Error::new_spanned(
            p,
            format!("`{attr}` arguments cannot be raw pointers; use an owned serializable type"),
        )),
        Type::BareFn(f) => errors.push(syn::Error::new_spanned(
            f,
            format!(
                "`{attr}` arguments cannot be functions: they are stored as JSON in the journal"
            ),
        )),
        Type::TraitObject(t) => errors.push(syn::Error::new_spanned(
            t,
            format!(
                "`{attr}` arguments cannot be trait objects: they are stored as JSON in the journal"
            ),
        )),
        Type::Group(g) => check_arg_type(attr, what, &g.elem, errors),
        Type::Paren(p) => check_arg_type(attr, what, &p.elem, errors),
        Type::Tuple(t) => t
            .elems
            .iter()
            .for_each(|e| check_arg_type(attr, what, e, errors)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors_of(kind: Kind, args: TokenStream, item: TokenStream) -> Vec<String> {
        match parse(kind, args, item) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn accepts_a_plain_step() {
        let item = quote!(
            async fn create_user(email: String) -> Result<u64, StepError> {
                Ok(1)
            }
        );
        let f = parse(Kind::Step, quote!(), item).unwrap();
        assert_eq!(f.name(), "create_user");
        assert_eq!(f.args.len(), 1);
    }

    #[test]
    fn reports_all_signature_problems() {
        let item = quote!(
            fn f<T>(&self, a: &str) {}
        );
        let errors = errors_of(Kind::Step, quote!(), item);
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].contains("must be `async`"));
        assert!(errors[1].contains("generic parameters"));
        assert!(errors[2].contains("cannot take `self`"));
        assert!(errors[3].contains("must be owned"));
        assert!(errors[4].contains("must return `Result<T, StepError>`"));
    }

    #[test]
    fn rejects_non_result_returns() {
        let errors = errors_of(
            Kind::Step,
            quote!(),
            quote!(
                async fn f() -> Option<u8> {
                    None
                }
            ),
        );
        assert!(
            errors[0].contains("must return `Result<T, StepError>`, not `Option<u8>`"),
            "{errors:?}"
        );
    }

    #[test]
    fn rejects_non_functions() {
        let errors = errors_of(
            Kind::Workflow,
            quote!(),
            quote!(
                struct S;
            ),
        );
        assert!(errors[0].contains("can only be applied to an `async fn`"));
    }

    #[test]
    fn names_complex_patterns() {
        let item = quote!(
            async fn f((a, b): (u8, u8), mut c: u8) -> Result<u8, StepError> {
                Ok(a)
            }
        );
        let f = parse(Kind::Step, quote!(), item).unwrap();
        assert_eq!(f.args[0].ident, "__wf_arg0");
        assert_eq!(f.args[1].ident, "c");
    }
}
