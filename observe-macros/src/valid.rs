//! Every semantic check of `#[observed(...)]`, each error pointing at the
//! offending token and saying what to write instead. All errors are reported
//! together.

use crate::ast::{Function, Output};
use crate::attr::{Args, Field, FieldName};
use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{Expr, Lit, LitStr, ReturnType};

/// Validated options, ready for generation.
pub(crate) struct Options {
    pub(crate) name: Option<LitStr>,
    pub(crate) gateway: Option<LitStr>,
    pub(crate) timeout: Option<Timeout>,
    pub(crate) log_errors: bool,
    pub(crate) fields: Vec<Field>,
}

/// A `timeout = "..."` in milliseconds, with the literal's span (the
/// conversion of the elapsed error into the function's error points at it).
pub(crate) struct Timeout {
    pub(crate) millis: u64,
    pub(crate) span: Span,
}

/// `code.function` and `otel.kind` plus `gateway` leave this many of
/// tracing's 32 fields per span.
const MAX_FIELDS: usize = 29;

#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, span: Span, message: impl std::fmt::Display) {
        let e = syn::Error::new(span, message);
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    /// An error covering all of `tokens` (a dotted field name).
    fn push_spanned(&mut self, tokens: impl quote::ToTokens, message: impl std::fmt::Display) {
        let e = syn::Error::new_spanned(tokens, message);
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn ok<T>(&mut self, r: syn::Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                match &mut self.0 {
                    Some(all) => all.combine(e),
                    None => self.0 = Some(e),
                }
                None
            }
        }
    }
}

pub(crate) fn check(args: Args, func: &Function<'_>) -> syn::Result<Options> {
    let mut errors = Errors::default();
    let sig = &func.item.sig;
    if let Some(c) = &sig.constness {
        errors.push(
            c.span,
            "#[observed] cannot instrument a `const fn`: remove `const`, or remove #[observed]",
        );
    }

    if let (Output::Never, ReturnType::Type(_, ty)) = (&func.output, &sig.output) {
        errors.push_spanned(
            ty,
            "a function that never returns (`-> !`) has no result to observe: \
             put #[observed] on the function it runs for each unit of work",
        );
    }

    let name = args.name.as_ref().and_then(|(_, e)| {
        errors.ok(non_empty_str(
            e,
            "the span name",
            "it is fixed at compile time",
            "name = \"checkout\"",
        ))
    });

    let gateway = args.gateway.as_ref().and_then(|(key, e)| {
        if !func.output.can_fail() {
            errors.push(
                key.span,
                "`gateway` needs a function that can fail, so that its error rate means something: \
                 return a `Result`, like `-> Result<Reply, BankError>`",
            );
        }
        errors.ok(non_empty_str(
            e,
            "the gateway name",
            "it becomes a metric label",
            "gateway = \"bank\"",
        ))
    });

    let timeout = args.timeout.as_ref().and_then(|(key, e)| {
        if !func.shape.is_async() {
            errors.push(
                key.span,
                "`timeout` works only on async functions (a sync call cannot be interrupted): \
                 make the function `async`, or remove `timeout` and set a timeout on the client it calls",
            );
        } else if !func.output.can_fail() {
            errors.push(
                key.span,
                "`timeout` needs a function returning `Result<_, E>` with \
                 `E: From<tokio::time::error::Elapsed>`, to return the timeout as an error",
            );
        }
        errors.ok(duration(e))
    });

    let log_errors = match &args.log_errors {
        None => true,
        Some((_, Expr::Lit(l))) if matches!(l.lit, Lit::Bool(_)) => {
            matches!(&l.lit, Lit::Bool(b) if b.value)
        }
        Some((_, e)) => {
            errors.push_spanned(
                e,
                "`log_errors` takes `true` or `false`: write `log_errors = false`",
            );
            true
        }
    };

    let fields: Vec<Field> = args
        .fields
        .map(|(_, list)| list.into_iter().collect())
        .unwrap_or_default();
    let mut seen: Vec<String> = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        if i == MAX_FIELDS {
            errors.push_spanned(
                &field.name,
                format!("at most {MAX_FIELDS} fields fit on a span: record fewer, or log the rest"),
            );
        }
        check_field_name(&field.name, gateway.is_some(), &mut errors);
        let dotted = field.name.dotted();
        if seen.contains(&dotted) {
            errors.push_spanned(
                &field.name,
                format!("field `{dotted}` is given twice: keep one"),
            );
        }
        seen.push(dotted);
    }

    match errors.0 {
        Some(e) => Err(e),
        None => Ok(Options {
            name,
            gateway,
            timeout,
            log_errors,
            fields,
        }),
    }
}

fn non_empty_str(e: &Expr, what: &str, why: &str, example: &str) -> syn::Result<LitStr> {
    match e {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) if s.value().trim().is_empty() => Err(syn::Error::new(
            s.span(),
            format!("{what} is empty: write one, like `{example}`"),
        )),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!("{what} must be a string literal ({why}): write `{example}`"),
        )),
    }
}

const DURATION_HELP: &str = "write a whole number followed by `ms`, `s`, `m` or `h`, \
                             like `timeout = \"30s\"` or `timeout = \"500ms\"`";

fn duration(e: &Expr) -> syn::Result<Timeout> {
    let Expr::Lit(syn::ExprLit {
        lit: Lit::Str(s), ..
    }) = e
    else {
        return Err(syn::Error::new_spanned(
            e,
            format!("`timeout` takes a string literal: {DURATION_HELP}"),
        ));
    };
    let text = s.value();
    let millis = parse_millis(&text).ok_or_else(|| {
        syn::Error::new(
            s.span(),
            format!("`{text}` is not a valid timeout: {DURATION_HELP}"),
        )
    })?;
    if millis == 0 {
        return Err(syn::Error::new(
            s.span(),
            format!("a zero timeout fails every call: {DURATION_HELP}"),
        ));
    }
    Ok(Timeout {
        millis,
        span: s.span(),
    })
}

/// `"500ms"`, `"30s"`, `"2m"`, `"1h"` in milliseconds.
fn parse_millis(text: &str) -> Option<u64> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return None;
    }
    let n: u64 = number.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

fn check_field_name(name: &FieldName, gateway_mode: bool, errors: &mut Errors) {
    let segments = match name {
        FieldName::Lit(l) => {
            let suggestion = to_snake_case(&l.value().replace(['.', ' '], "_"));
            errors.push(
                l.span(),
                format!(
                    "field names are identifiers, not strings: write `{}`",
                    if is_snake_case(&suggestion) {
                        suggestion
                    } else {
                        "order_id".to_owned()
                    }
                ),
            );
            return;
        }
        FieldName::Path(p) => p,
    };
    let dotted = name.dotted();
    if dotted == "code.function" || dotted == "code.namespace" || dotted.starts_with("otel.") {
        let hint = if dotted == "otel.name" {
            "; to name the span, write `name = \"...\"`"
        } else {
            ""
        };
        errors.push_spanned(
            name,
            format!("`{dotted}` is set by #[observed]: remove it{hint}"),
        );
        return;
    }
    if gateway_mode && dotted == "gateway" {
        errors.push_spanned(
            name,
            "`gateway` is set by #[observed] from `gateway = \"...\"`: remove it",
        );
        return;
    }
    for segment in segments {
        let text = segment.unraw().to_string();
        if !is_snake_case(&text) {
            let fixed = to_snake_case(&text);
            let message = if is_snake_case(&fixed) {
                format!("field name `{text}` is not snake_case: write `{fixed}`")
            } else {
                format!(
                    "field name `{text}` is not snake_case: use lowercase letters, digits and \
                     single underscores, starting with a letter, like `order_id`"
                )
            };
            errors.push(segment.span(), message);
        }
    }
}

/// The rule observe's log macros apply to event names
/// (`observe_core::__private::is_snake_case`).
fn is_snake_case(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 64 || !b[0].is_ascii_lowercase() || b[b.len() - 1] == b'_' {
        return false;
    }
    b.iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        && !s.contains("__")
}

/// `orderId` → `order_id`, `Order-ID` → `order_id`, `__x` → `x`.
fn to_snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1);
            let boundary = prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
                || (prev.is_some_and(|p| p.is_ascii_uppercase())
                    && next.is_some_and(|n| n.is_ascii_lowercase()));
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '-' || c == '_' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    let mut collapsed = String::with_capacity(out.len());
    for c in out.chars() {
        if !(c == '_' && (collapsed.is_empty() || collapsed.ends_with('_'))) {
            collapsed.push(c);
        }
    }
    collapsed.trim_end_matches('_').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_millis("500ms"), Some(500));
        assert_eq!(parse_millis("30s"), Some(30_000));
        assert_eq!(parse_millis("2m"), Some(120_000));
        assert_eq!(parse_millis("1h"), Some(3_600_000));
        for bad in [
            "",
            "30",
            "s",
            "1.5s",
            "30 s",
            "-1s",
            "30sec",
            "99999999999999999999s",
        ] {
            assert_eq!(parse_millis(bad), None, "{bad}");
        }
        assert_eq!(parse_millis("18446744073709551615h"), None);
    }

    #[test]
    fn snake_case() {
        for ok in ["order_id", "a", "amount_cents", "v2"] {
            assert!(is_snake_case(ok), "{ok}");
        }
        for bad in ["orderId", "_x", "x_", "a__b", "2x", "Order", ""] {
            assert!(!is_snake_case(bad), "{bad}");
        }
        assert_eq!(to_snake_case("orderId"), "order_id");
        assert_eq!(to_snake_case("OrderID"), "order_id");
        assert_eq!(to_snake_case("HTTPStatus"), "http_status");
        assert_eq!(to_snake_case("order-id"), "order_id");
        assert_eq!(to_snake_case("__order__id_"), "order_id");
    }
}
