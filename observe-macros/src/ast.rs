//! A typed model of the annotated function: its shape (async, sync, or a sync
//! fn returning a future, as `#[async_trait]` leaves it) and what it returns.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{
    Expr, ExprAsync, ExprCall, GenericArgument, ItemFn, PathArguments, ReturnType, Stmt, Type,
    TypeParamBound,
};

/// The annotated function.
pub(crate) struct Function<'a> {
    pub(crate) item: &'a ItemFn,
    pub(crate) shape: Shape<'a>,
    pub(crate) output: Output<'a>,
}

/// How the function's work runs.
pub(crate) enum Shape<'a> {
    /// `async fn`: the body becomes an instrumented `async move` block.
    Async,
    /// A plain `fn`: the body runs in a closure inside the span.
    Sync,
    /// A sync fn whose last expression is a future, either
    /// `Box::pin(async move { .. })` (what `#[async_trait]` expands to) or a
    /// bare `async move { .. }`: that future is instrumented instead.
    AsyncLike {
        /// The future's statement (the block's last).
        tail: usize,
        /// The `Box::pin(..)` call around it, if any.
        boxed: Option<&'a ExprCall>,
        future: &'a ExprAsync,
    },
}

impl Shape<'_> {
    /// Whether the work is a future (so a timeout can apply).
    pub(crate) fn is_async(&self) -> bool {
        !matches!(self, Shape::Sync)
    }
}

/// What the work produces (for an async-like fn: the future's `Output`).
pub(crate) enum Output<'a> {
    /// Nothing, or `()`: the function cannot fail.
    Unit,
    /// A type that can be named inside the body.
    Type(&'a Type),
    /// A type containing `impl Trait`, or an async-like fn whose `Output`
    /// is not written out: left to inference.
    Opaque,
    /// `!`: the function never returns.
    Never,
}

impl Output<'_> {
    pub(crate) fn can_fail(&self) -> bool {
        !matches!(self, Output::Unit)
    }
}

impl<'a> Function<'a> {
    pub(crate) fn from_syn(item: &'a ItemFn) -> Self {
        let shape = if item.sig.asyncness.is_some() {
            Shape::Async
        } else {
            async_like(item).unwrap_or(Shape::Sync)
        };
        let output = match (&item.sig.output, &shape) {
            (ReturnType::Default, _) => Output::Unit,
            (ReturnType::Type(_, ty), Shape::AsyncLike { .. }) => {
                future_output(ty).map_or(Output::Opaque, output_of)
            }
            (ReturnType::Type(_, ty), _) => output_of(ty),
        };
        Function {
            item,
            shape,
            output,
        }
    }
}

fn output_of(ty: &Type) -> Output<'_> {
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => Output::Unit,
        Type::Paren(p) => output_of(&p.elem),
        Type::Never(_) => Output::Never,
        _ if mentions_impl(ty.to_token_stream()) => Output::Opaque,
        _ => Output::Type(ty),
    }
}

fn mentions_impl(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == "impl",
        TokenTree::Group(g) => mentions_impl(g.stream()),
        _ => false,
    })
}

/// The shape tracing-attributes recognises: the block's last expression is
/// `Box::pin(async move { .. })` or `async move { .. }`.
fn async_like(item: &ItemFn) -> Option<Shape<'_>> {
    let tail = item.block.stmts.len().checked_sub(1)?;
    let Stmt::Expr(expr, None) = &item.block.stmts[tail] else {
        return None;
    };
    match expr {
        Expr::Async(future) => Some(Shape::AsyncLike {
            tail,
            boxed: None,
            future,
        }),
        Expr::Call(call) => {
            let Expr::Path(p) = &*call.func else {
                return None;
            };
            let segs: Vec<String> = p
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            let is_box_pin = segs.len() >= 2 && segs[segs.len() - 2..] == ["Box", "pin"];
            match (is_box_pin, call.args.len(), call.args.first()) {
                (true, 1, Some(Expr::Async(future))) => Some(Shape::AsyncLike {
                    tail,
                    boxed: Some(call),
                    future,
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `T` in `Pin<Box<dyn Future<Output = T> + Send + 'a>>`, `impl Future<Output = T>`, ...
fn future_output(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Paren(p) => future_output(&p.elem),
        Type::Group(g) => future_output(&g.elem),
        Type::Path(p) => path_output(&p.path),
        Type::TraitObject(t) => bounds_output(t.bounds.iter()),
        Type::ImplTrait(t) => bounds_output(t.bounds.iter()),
        _ => None,
    }
}

fn bounds_output<'a>(mut bounds: impl Iterator<Item = &'a TypeParamBound>) -> Option<&'a Type> {
    bounds.find_map(|b| match b {
        TypeParamBound::Trait(t) => path_output(&t.path),
        _ => None,
    })
}

fn path_output(path: &syn::Path) -> Option<&Type> {
    path.segments.iter().find_map(|seg| {
        let PathArguments::AngleBracketed(args) = &seg.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(a) if a.ident == "Output" => Some(&a.ty),
            GenericArgument::Type(t) => future_output(t),
            _ => None,
        })
    })
}
