//! Code generation from a validated [`Function`]. Nothing here can fail.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::Type;

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

/// What the generated code needs from the user's types, as `where`
/// clauses: `for<'__wf> User: Journaled` for each argument and
/// `for<'__wf> Output: StepOutput` (or `WorkflowOutput`).
///
/// The binder keeps rustc from rejecting a false clause where it is written;
/// code under the clauses type-checks by assuming them, so it adds no errors
/// of its own. The clauses are proved by one call, built by [`proof_call`],
/// where rustc reports each type that falls short once, under that type.
fn bounds(f: &Function, krate: &TokenStream) -> TokenStream {
    let args = unique_types(f)
        .into_iter()
        .map(|ty| quote!(for<'__wf> #ty: #krate::__private::Journaled,));
    let output = &f.output;
    let output_trait = match f.kind {
        Kind::Step => quote!(StepOutput),
        Kind::Workflow => quote!(WorkflowOutput),
    };
    quote! {
        #(#args)*
        for<'__wf> #output: #krate::__private::#output_trait,
    }
}

/// The argument types, each once (two clauses on one type would make rustc
/// point at the call rather than at the type).
fn unique_types(f: &Function) -> Vec<&Type> {
    let mut seen = Vec::new();
    let mut types = Vec::new();
    for a in &f.args {
        let key = a.ty.to_token_stream().to_string();
        if !seen.contains(&key) {
            seen.push(key);
            types.push(&a.ty);
        }
    }
    types
}

/// The spans of the first and the last token of `tokens`: generated tokens
/// spanned at these two cover exactly the user's tokens in a message.
fn outer_spans(tokens: &impl ToTokens) -> (Span, Span) {
    let mut iter = tokens.to_token_stream().into_iter();
    let first = iter.next().map_or_else(Span::call_site, |t| t.span());
    let last = iter.last().map_or(first, |t| t.span());
    (first, last)
}

/// `::core::marker::PhantomData::<Ty>`, spanned over the user's `Ty`.
fn phantom(ty: &Type) -> TokenStream {
    let (first, last) = outer_spans(ty);
    let open = quote_spanned!(first=> ::core::marker::PhantomData::<);
    let close = quote_spanned!(last=> >);
    quote!(#open #ty #close)
}

/// The parameters that stand for the argument types in a function under
/// [`bounds`]; see [`proof_call`].
fn proof_params(f: &Function) -> TokenStream {
    let params = unique_types(f)
        .into_iter()
        .map(|ty| quote!(_: ::core::marker::PhantomData<#ty>,));
    quote!(#(#params)*)
}

/// A call of `Holder::function` (declared with [`proof_params`] and under
/// [`bounds`]) that proves the clauses.
///
/// rustc blames an unmet clause on an argument whose type holds the type in
/// question, here a `PhantomData` spanned at the user's argument type. The
/// return type's clause matches no argument (adding one would make clauses on
/// argument types ambiguous when the return type names them), so rustc
/// blames the path of the function, which is spanned over the return type.
fn proof_call(f: &Function, holder: &Ident, function: &Ident) -> TokenStream {
    let (first, last) = outer_spans(&f.output);
    let mut holder = holder.clone();
    holder.set_span(first);
    let mut function = function.clone();
    function.set_span(last);
    let sep = quote_spanned!(last=> ::);
    let proofs = unique_types(f).into_iter().map(phantom);
    // The parentheses too: the call's span must not reach into generated
    // code, or rustc shows the attribute instead of the return type.
    let args = quote_spanned!(last=> (#(#proofs,)*));
    quote!(#holder #sep #function #args)
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
    let bounds = bounds(f, &krate);
    let proof_params = proof_params(f);
    let holder = format_ident!("__WfStep");
    let checked = format_ident!("checked");
    let call = proof_call(f, &holder, &checked);
    let body = body_fn(f);
    quote! {
        #(#attrs)*
        #vis fn #ident(#(#idents: #tys),*)
            -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
        {
            #body
            static __WF_STEP: #krate::__private::StepSpec = #spec;
            struct #holder;
            impl #holder {
                fn #checked(#proof_params)
                    -> fn(#(#tys),*) -> #krate::__private::BoxFuture<'static, #output>
                where
                    #bounds
                {
                    |#(#idents: #tys),*| #krate::__private::step(
                        &__WF_STEP,
                        (#(#idents,)*),
                        |(#(#idents,)*): (#(#tys,)*)| __wf_body(#(#idents),*),
                    )
                }
            }
            #call(#(#idents),*)
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
    let bounds = bounds(f, &krate);
    let proof_params = proof_params(f);
    let holder = format_ident!("__WfWorkflow");
    let registration = format_ident!("registration");
    let call = proof_call(f, &holder, &registration);
    let body = body_fn(f);
    quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, Default)]
        #vis struct #ident;

        const _: () = {
            #(#other_attrs)*
            #body

            impl #krate::Workflow for #ident
            where
                #bounds
            {
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

            struct #holder;
            impl #holder {
                const fn #registration(#proof_params) -> #krate::__private::Registration
                where
                    #bounds
                {
                    #krate::__private::Registration::of::<#ident>()
                }
            }

            #krate::__private::inventory::submit! {
                #call
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
