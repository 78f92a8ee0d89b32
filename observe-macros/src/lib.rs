//! The `#[observed]` attribute macro of observe. Use it through the facade,
//! as `observe::observed`.
//!
//! The macro is a pipeline in four files: `attr.rs` parses the arguments,
//! `ast.rs` models the function, `valid.rs` checks both (every error points
//! at the offending token), `expand.rs` generates calls to the runtime in
//! `observe_core::__private::observed`. When anything fails, the function is
//! emitted unchanged beside one `compile_error!`, so the user sees that error
//! and not a cascade of "cannot find function" errors.

use proc_macro::TokenStream;

mod ast;
mod attr;
mod expand;
mod valid;

/// Observes a function: one span per call, `observed.calls`,
/// `observed.duration` and `observed.active` metrics, and on failure the span
/// status Error with `error.type`, an `exception` event and one error log line.
///
/// Works on `async` and sync functions, methods, associated and generic
/// functions, functions returning `impl Trait`, and methods of
/// `#[async_trait]` impls. The signature, attributes and docs are kept.
///
/// ```ignore
/// #[observe::observed]
/// async fn load_order(id: u64) -> Result<Order, DbError> { /* ... */ }
///
/// #[observe::observed(gateway = "bank", timeout = "30s", fields(order_id = %order.id))]
/// async fn charge(order: &Order) -> Result<Receipt, BankError> { /* ... */ }
/// ```
///
/// | option | default | effect |
/// |---|---|---|
/// | `name = "..."` | `module::function` | the span name |
/// | `gateway = "bank"` | none | a client-kind span `gateway bank` and `external_gateway.*` metrics |
/// | `timeout = "30s"` | none | async fns only: the call fails with the function's error built `From<tokio::time::error::Elapsed>` (`ms`, `s`, `m`, `h`) |
/// | `log_errors = false` | `true` | no error line on failure (metrics and span status stay) |
/// | `fields(k = v, ...)` | none | span fields in tracing's syntax (`%` Display, `?` Debug); names are snake_case |
///
/// No argument is recorded unless named in `fields(...)`.
///
/// A result is a failure when it is `Err` (its `error.type` comes from
/// `observe::ErrorType` when the error implements it, else the type's name) or
/// a value whose `observe::Outcome` reports one. A panic records
/// `error.type = "panic"`; an async call dropped before it finished records
/// `"cancelled"`.
///
/// The call's span is observe's own, not a `tracing` span (so it costs a
/// fraction of one). While the body runs it is the current span for
/// everything observe does: log lines (ids and fields), spans opened inside
/// the call (`tracing` spans, the client layer's, nested `#[observed]`
/// calls are its children), `observe::current_trace_id()` and the other
/// `current_*` helpers, `observe::mark_failed`, and outbound `traceparent`
/// headers (the client layer's, and `propagation::inject_current` for
/// clients observe does not wrap). Other `tracing` layers do not see it,
/// and `tracing::Span::current()` inside the call is the span around the
/// call: a task spawned with `.in_current_span()` belongs to that span.
#[proc_macro_attribute]
pub fn observed(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_with(args.into(), item.into()).into()
}

fn expand_with(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let func: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) if looks_like_fn(item.clone()) => {
            // A syntax error inside the body: the compiler reports it on the
            // function as written.
            return item;
        }
        Err(_) => {
            let e = syn::Error::new(
                proc_macro2::Span::call_site(),
                "#[observed] goes on a function with a body: an `fn`, an `async fn` or a method \
                 (on a trait, put it on the implementation's method)",
            );
            return fallback(e, item);
        }
    };
    let expanded = syn::parse2::<attr::Args>(args).and_then(|args| {
        let model = ast::Function::from_syn(&func);
        let opts = valid::check(args, &model)?;
        Ok(expand::function(&model, &opts))
    });
    expanded.unwrap_or_else(|e| fallback(e, item))
}

/// The error beside the item as written.
fn fallback(e: syn::Error, item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let mut out = e.into_compile_error();
    out.extend(item);
    out
}

/// Attributes, visibility, a signature and a braced body (not parsed).
fn looks_like_fn(item: proc_macro2::TokenStream) -> bool {
    use syn::parse::Parser;
    let parser = |input: syn::parse::ParseStream<'_>| {
        input.call(syn::Attribute::parse_outer)?;
        input.parse::<syn::Visibility>()?;
        input.parse::<syn::Signature>()?;
        let body;
        syn::braced!(body in input);
        body.parse::<proc_macro2::TokenStream>()?;
        Ok(())
    };
    parser.parse2(item).is_ok()
}
