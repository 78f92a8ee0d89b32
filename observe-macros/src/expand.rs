//! Code generation only: the function keeps its attributes, docs and
//! signature; its body is wrapped in a call of observe's runtime
//! (`__private::observed`), which records the result, the metrics, the error
//! line and panics or cancellations.

use crate::ast::{Function, Output, Shape};
use crate::valid::Options;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{Block, Ident, ItemFn};

/// The runtime crate as the user depends on it: the `observe` facade
/// (also for the facade's own tests and examples) or `observe-core`.
fn runtime_path() -> TokenStream {
    use proc_macro_crate::{crate_name, FoundCrate};
    let named = |name: &str| {
        let ident = Ident::new(name, Span::call_site());
        quote!(::#ident)
    };
    match crate_name("observe") {
        Ok(FoundCrate::Itself) => quote!(::observe),
        Ok(FoundCrate::Name(name)) => named(&name),
        Err(_) => match crate_name("observe-core") {
            Ok(FoundCrate::Itself) => quote!(::observe_core),
            Ok(FoundCrate::Name(name)) => named(&name),
            Err(_) => quote!(::observe),
        },
    }
}

/// The instrumented function.
pub(crate) fn function(func: &Function<'_>, opts: &Options) -> TokenStream {
    let rt = runtime_path();
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func.item;
    let body = match &func.shape {
        Shape::Async => {
            let work = quote!(async move #block);
            let observed = observed_future(&rt, func, opts, &work);
            quote!({ #observed })
        }
        Shape::Sync => sync_body(&rt, func, opts, block),
        Shape::AsyncLike {
            tail,
            boxed,
            future,
        } => {
            let observed = observed_future(&rt, func, opts, &quote!(#future));
            let wrapped = quote!(async move { #observed });
            let tail_expr = match boxed {
                Some(call) => {
                    let pin = &call.func;
                    quote!(#pin(#wrapped))
                }
                None => wrapped,
            };
            let head = &block.stmts[..*tail];
            quote!({ #(#head)* #tail_expr })
        }
    };
    quote! {
        #(#attrs)*
        #vis #sig #body
    }
}

/// `static __OBSERVE_SITE` and `let __observe_call = start(..)`.
fn prologue(rt: &TokenStream, func: &Function<'_>, opts: &Options) -> TokenStream {
    let fn_name = func.item.sig.ident.unraw().to_string();
    let log_errors = opts.log_errors;
    let gateway_site = match &opts.gateway {
        Some(g) => quote!(::core::option::Option::Some(#g)),
        None => quote!(::core::option::Option::None),
    };
    let span_name = match (&opts.name, &opts.gateway) {
        (Some(name), _) => quote!(#name),
        (None, Some(g)) => {
            let name = format!("gateway {}", g.value());
            quote!(#name)
        }
        (None, None) => {
            let suffix = format!("::{fn_name}");
            quote!(::core::concat!(::core::module_path!(), #suffix))
        }
    };
    let names = opts.fields.iter().map(|f| f.name.dotted());
    let values = opts.fields.iter().map(|f| field_value(rt, f));
    let record = if opts.fields.is_empty() {
        quote!(|_| {})
    } else {
        quote!(|__observe_fields| __observe_fields.record([#(#values),*]))
    };

    let tracing = quote!(#rt::__private::tracing);
    let core = quote!(#rt::__private::tracing_core);
    quote! {
        static __OBSERVE_SITE: #rt::__private::observed::Site = #rt::__private::observed::Site::new(
            #fn_name,
            ::core::module_path!(),
            #gateway_site,
            #log_errors,
        );
        // The span's name and field names (its values are recorded per
        // call). Target `observe::observed`: level filters never disable
        // observe's own spans. `code.function`, `gateway` and the client
        // kind come from the site (encoded once), not from fields.
        static __OBSERVE_CALLSITE: #core::callsite::DefaultCallsite =
            #core::callsite::DefaultCallsite::new(&__OBSERVE_META);
        static __OBSERVE_META: #tracing::Metadata<'static> = #tracing::Metadata::new(
            #span_name,
            "observe::observed",
            #tracing::Level::INFO,
            ::core::option::Option::Some(::core::file!()),
            ::core::option::Option::Some(::core::line!()),
            ::core::option::Option::Some(::core::module_path!()),
            #core::field::FieldSet::new(
                &[#(#names),*],
                #core::identify_callsite!(&__OBSERVE_CALLSITE),
            ),
            #core::metadata::Kind::SPAN,
        );
        // `mut`: async calls lend the call to their future (`instrument`),
        // and `finish` records into it.
        let mut __observe_call = #rt::__private::observed::start(
            &__OBSERVE_SITE,
            &__OBSERVE_META,
            #record,
        );
    }
}

/// One field's value as `&dyn tracing::Value`, in tracing's syntax:
/// `%` records `Display`, `?` records `Debug`, a bare name records the
/// variable (or field access) of that name.
fn field_value(rt: &TokenStream, field: &crate::attr::Field) -> TokenStream {
    use crate::attr::{FieldName, Sigil};
    let (sigil, expr) = match &field.value {
        Some((_, sigil, expr)) => (sigil.as_ref().or(field.sigil.as_ref()), quote!(#expr)),
        None => match &field.name {
            FieldName::Path(p) => (field.sigil.as_ref(), quote!(#p)),
            FieldName::Lit(l) => (field.sigil.as_ref(), quote!(#l)),
        },
    };
    let tracing = quote!(#rt::__private::tracing);
    let span = syn::spanned::Spanned::span(&expr);
    match sigil {
        Some(Sigil::Display(_)) => quote_spanned!(span=>
            &#tracing::field::display(&(#expr)) as &dyn #tracing::Value
        ),
        Some(Sigil::Debug(_)) => quote_spanned!(span=>
            &#tracing::field::debug(&(#expr)) as &dyn #tracing::Value
        ),
        None => quote_spanned!(span=> &(#expr) as &dyn #tracing::Value),
    }
}

/// `__observe_call.finish(classify(&__observe_out)); __observe_out`.
fn epilogue(rt: &TokenStream) -> TokenStream {
    quote! {
        __observe_call.finish({
            #[allow(unused_imports)]
            use #rt::__private::classify::{
                ClassifyAny as _, ClassifyL1 as _, ClassifyL2 as _, ClassifyL3 as _,
                ClassifyL4 as _, ClassifyOutcome as _,
            };
            (&&&&#rt::__private::classify::Probe(&__observe_out)).observe_classify()
        });
        __observe_out
    }
}

/// `: R` on `__observe_out` when `R` can be named (so the classification
/// sees a known type even when the body only returns through `?`).
fn out_type(output: &Output<'_>) -> Option<TokenStream> {
    match output {
        Output::Type(ty) => Some(quote!(: #ty)),
        Output::Unit | Output::Opaque | Output::Never => None,
    }
}

/// The statements of an async body: start, await `work` inside the span
/// (with the timeout, if any), finish.
fn observed_future(
    rt: &TokenStream,
    func: &Function<'_>,
    opts: &Options,
    work: &TokenStream,
) -> TokenStream {
    let prologue = prologue(rt, func, opts);
    let epilogue = epilogue(rt);
    let ty = out_type(&func.output);
    let instrumented = quote!(__observe_call.instrument(#work));
    let run = match &opts.timeout {
        None => quote!(#instrumented.await),
        Some(t) => {
            let millis = t.millis;
            let into_error =
                quote_spanned!(t.span=> ::core::convert::From::from(__observe_elapsed));
            // The timed future borrows the call: it ends before `timed_out`.
            quote! {{
                let __observe_timed = #rt::__private::tokio::time::timeout(
                    ::core::time::Duration::from_millis(#millis),
                    #instrumented,
                )
                .await;
                match __observe_timed {
                    ::core::result::Result::Ok(__observe_value) => __observe_value,
                    ::core::result::Result::Err(__observe_elapsed) => {
                        __observe_call.timed_out();
                        ::core::result::Result::Err(#into_error)
                    }
                }
            }}
        }
    };
    quote! {
        #prologue
        let __observe_out #ty = #run;
        #epilogue
    }
}

/// A sync body: the original block runs as a closure inside the span, so
/// `return` and `?` still reach `finish`.
fn sync_body(rt: &TokenStream, func: &Function<'_>, opts: &Options, block: &Block) -> TokenStream {
    let prologue = prologue(rt, func, opts);
    let epilogue = epilogue(rt);
    let closure = match &func.output {
        Output::Type(ty) => quote!(move || -> #ty #block),
        Output::Unit | Output::Opaque | Output::Never => quote!(move || #block),
    };
    let ty = out_type(&func.output);
    quote! {{
        #prologue
        let __observe_out #ty = __observe_call.in_scope(#closure);
        #epilogue
    }}
}

#[cfg(test)]
mod tests {
    use super::runtime_path;

    /// Runs `runtime_path` as if expanding in a crate with this manifest.
    fn path_for(tag: &str, manifest: &str) -> String {
        let dir =
            std::env::temp_dir().join(format!("observe-macros-path-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("Cargo.toml"), manifest).expect("manifest");
        std::env::set_var("CARGO_MANIFEST_DIR", &dir);
        let path = runtime_path().to_string().replace(' ', "");
        let _ = std::fs::remove_dir_all(&dir);
        path
    }

    #[test]
    fn runtime_path_follows_the_users_dependency() {
        // No `cargo locate-project`: each manifest is its own workspace root.
        std::env::remove_var("CARGO");
        std::env::remove_var("CARGO_TARGET_TMPDIR");
        let pkg = "[package]\nname = \"app\"\nversion = \"0.1.0\"\n";
        assert_eq!(
            path_for(
                "facade",
                &format!("{pkg}[dependencies]\nobserve = \"0.1\"\nobserve-core = \"0.1\"\n")
            ),
            "::observe"
        );
        assert_eq!(
            path_for(
                "core",
                &format!("{pkg}[dependencies]\nobserve-core = \"0.1\"\n")
            ),
            "::observe_core"
        );
        assert_eq!(
            path_for(
                "renamed",
                &format!(
                    "{pkg}[dependencies]\nobs = {{ package = \"observe\", version = \"0.1\" }}\n"
                )
            ),
            "::obs"
        );
        assert_eq!(
            path_for(
                "dev",
                &format!("{pkg}[dev-dependencies]\nobserve-core = \"0.1\"\n")
            ),
            "::observe_core"
        );
        assert_eq!(
            path_for(
                "itself",
                "[package]\nname = \"observe\"\nversion = \"0.1.0\"\n"
            ),
            "::observe"
        );
        assert_eq!(path_for("neither", pkg), "::observe");
    }
}
