//! Code generation from a validated [`Function`]. Nothing here can fail.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::model::{Function, Kind};

pub(crate) fn expand(f: &Function) -> TokenStream {
    match f.kind {
        Kind::Workflow => workflow(f),
        Kind::Step => step(f),
    }
}

fn krate(f: &Function) -> TokenStream {
    match &f.options.krate {
        Some(path) => quote!(#path),
        None => quote!(::workflow_core),
    }
}

/// Compile-time checks that point at the user's types.
fn checks(f: &Function, krate: &TokenStream) -> TokenStream {
    let args = f.args.iter().map(|a| {
        let ty = &a.ty;
        quote_spanned! {ty.span()=>
            const _: fn() = #krate::__private::assert_journaled::<#ty>;
        }
    });
    let output = &f.output;
    let output_check = match f.kind {
        Kind::Step => quote_spanned! {f.output_span=>
            const _: fn() = #krate::__private::assert_step_output::<#output>;
        },
        Kind::Workflow => quote_spanned! {f.output_span=>
            const _: fn() = #krate::__private::assert_workflow_output::<#output>;
        },
    };
    quote! { #(#args)* #output_check }
}

/// The body as an inner `async fn` with the user's own signature, so that
/// `return`, `?` and type inference behave exactly as written.
fn body_fn(f: &Function) -> TokenStream {
    let pats = f.args.iter().map(|a| &a.pat);
    let tys = f.args.iter().map(|a| &a.ty);
    let output = &f.output;
    let block = &f.block;
    quote! {
        #[allow(clippy::unused_async)]
        async fn __wf_body(#(#pats: #tys),*) -> #output #block
    }
}

fn step(f: &Function) -> TokenStream {
    let krate = krate(f);
    let attrs = &f.attrs;
    let vis = &f.vis;
    let ident = &f.ident;
    let output = &f.output;
    let idents: Vec<_> = f.args.iter().map(|a| &a.ident).collect();
    let tys: Vec<_> = f.args.iter().map(|a| &a.ty).collect();
    let name = f.name();
    let r = &f.options.retry;
    let mut spec = quote!(#krate::__private::StepSpec::new(#name));
    if let Some(n) = r.max_retries {
        spec.extend(quote!(.max_retries(#n)));
    }
    if let Some(ms) = r.initial_backoff_ms {
        spec.extend(quote!(.initial_backoff_ms(#ms)));
    }
    if let Some(ms) = r.max_backoff_ms {
        spec.extend(quote!(.max_backoff_ms(#ms)));
    }
    if let Some(x) = r.backoff_factor {
        spec.extend(quote!(.backoff_factor(#x)));
    }
    if let Some(j) = r.jitter {
        spec.extend(quote!(.jitter(#j)));
    }
    let checks = checks(f, &krate);
    let body = body_fn(f);
    quote! {
        #(#attrs)*
        #vis fn #ident(#(#idents: #tys),*)
            -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
        {
            #checks
            #body
            static __WF_STEP: #krate::__private::StepSpec = #spec;
            #krate::__private::step(
                &__WF_STEP,
                (#(#idents,)*),
                |(#(#idents,)*): (#(#tys,)*)| __wf_body(#(#idents),*),
            )
        }
    }
}

fn workflow(f: &Function) -> TokenStream {
    let krate = krate(f);
    let (docs, other_attrs): (Vec<_>, Vec<_>) =
        f.attrs.iter().partition(|a| a.path().is_ident("doc"));
    let vis = &f.vis;
    let ident = &f.ident;
    let output = &f.output;
    let idents: Vec<_> = f.args.iter().map(|a| &a.ident).collect();
    let tys: Vec<_> = f.args.iter().map(|a| &a.ty).collect();
    let name = f.name();
    let checks = checks(f, &krate);
    let body = body_fn(f);
    quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, Default)]
        #vis struct #ident;

        const _: () = {
            #checks
            #(#other_attrs)*
            #body

            impl #krate::Workflow for #ident {
                const NAME: &'static str = #name;
                type Input = (#(#tys,)*);
                type Output = <#output as #krate::__private::WorkflowOutput>::Ok;

                fn run(
                    __wf_input: Self::Input,
                ) -> #krate::__private::BoxFuture<
                    'static,
                    ::core::result::Result<Self::Output, #krate::StepError>,
                > {
                    let (#(#idents,)*) = __wf_input;
                    ::std::boxed::Box::pin(async move {
                        #krate::__private::WorkflowOutput::into_step_result(
                            __wf_body(#(#idents),*).await,
                        )
                    })
                }
            }

            #krate::__private::inventory::submit! {
                #krate::__private::Registration::of::<#ident>()
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use crate::model::Kind;
    use crate::parse;

    #[test]
    fn step_expansion_calls_the_runtime_with_the_spec() {
        let out = parse::entry(
            Kind::Step,
            quote!(max_retries = 5, name = "welcome"),
            quote!(
                pub async fn send(email: String) -> Result<(), StepError> {
                    Ok(())
                }
            ),
        )
        .to_string();
        assert!(
            out.contains("StepSpec :: new (\"welcome\") . max_retries (5u32)"),
            "{out}"
        );
        assert!(
            out.contains(":: workflow_core :: __private :: step"),
            "{out}"
        );
        assert!(out.contains("pub fn send (email : String)"), "{out}");
    }

    #[test]
    fn workflow_expansion_registers_under_its_name() {
        let out = parse::entry(
            Kind::Workflow,
            quote!(crate = "wf"),
            quote!(
                async fn signup(email: String) -> Result<u8, StepError> {
                    Ok(1)
                }
            ),
        )
        .to_string();
        assert!(out.contains("struct signup ;"), "{out}");
        assert!(
            out.contains("const NAME : & 'static str = \"signup\""),
            "{out}"
        );
        assert!(
            out.contains("wf :: __private :: inventory :: submit !"),
            "{out}"
        );
    }

    #[test]
    fn errors_keep_the_item() {
        let out = parse::entry(
            Kind::Step,
            quote!(),
            quote!(
                fn plain() {}
            ),
        )
        .to_string();
        assert!(out.starts_with("fn plain () { }"), "{out}");
        assert!(out.contains("compile_error !"), "{out}");
    }
}
