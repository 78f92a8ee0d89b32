//! Parsing of `#[observed(...)]` arguments: syntax only. What the values
//! mean (a literal where one is needed, a valid duration, snake_case field
//! names) is checked in `valid.rs`.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitStr, Token};

pub(crate) mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(gateway);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(log_errors);
    syn::custom_keyword!(fields);
}

/// The arguments as written, each with its keyword (for error spans).
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<(kw::name, Expr)>,
    pub(crate) gateway: Option<(kw::gateway, Expr)>,
    pub(crate) timeout: Option<(kw::timeout, Expr)>,
    pub(crate) log_errors: Option<(kw::log_errors, Expr)>,
    pub(crate) fields: Option<(kw::fields, Punctuated<Field, Token![,]>)>,
}

const OPTIONS: &str = "#[observed] takes `name = \"...\"`, `gateway = \"bank\"`, \
                       `timeout = \"30s\"`, `log_errors = false` and `fields(key = value, ...)`";

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            if input.peek(kw::name) {
                let key = input.parse::<kw::name>()?;
                let value = value_of(input, &key, "name = \"checkout\"")?;
                set_once(&mut args.name, key, value, "name")?;
            } else if input.peek(kw::gateway) {
                let key = input.parse::<kw::gateway>()?;
                let value = value_of(input, &key, "gateway = \"bank\"")?;
                set_once(&mut args.gateway, key, value, "gateway")?;
            } else if input.peek(kw::timeout) {
                let key = input.parse::<kw::timeout>()?;
                let value = value_of(input, &key, "timeout = \"30s\"")?;
                set_once(&mut args.timeout, key, value, "timeout")?;
            } else if input.peek(kw::log_errors) {
                let key = input.parse::<kw::log_errors>()?;
                let value = value_of(input, &key, "log_errors = false")?;
                set_once(&mut args.log_errors, key, value, "log_errors")?;
            } else if input.peek(kw::fields) {
                let key = input.parse::<kw::fields>()?;
                if !input.peek(syn::token::Paren) {
                    return Err(input.error(
                        "`fields` takes a list in parentheses: write `fields(order_id = %order.id)`",
                    ));
                }
                let content;
                syn::parenthesized!(content in input);
                let list = content.parse_terminated(Field::parse, Token![,])?;
                set_once(&mut args.fields, key, list, "fields")?;
            } else if input.peek(Ident::peek_any) {
                let unknown = input.call(Ident::parse_any)?;
                return Err(syn::Error::new(unknown.span(), unknown_option(&unknown)));
            } else {
                return Err(input.error(OPTIONS));
            }
            if input.is_empty() {
                break;
            }
            if !input.peek(Token![,]) {
                return Err(input.error("expected `,` between options"));
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

fn value_of(input: ParseStream<'_>, key: &impl Spanned, example: &str) -> syn::Result<Expr> {
    if !input.peek(Token![=]) {
        return Err(syn::Error::new(
            key.span(),
            format!("this option takes a value: write `{example}`"),
        ));
    }
    input.parse::<Token![=]>()?;
    input.parse()
}

/// Keeps the first occurrence of an option; a second one is an error
/// pointing at its key.
fn set_once<K: Spanned, V>(
    slot: &mut Option<(K, V)>,
    key: K,
    value: V,
    name: &str,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            key.span(),
            format!("`{name}` is given twice: keep one"),
        ));
    }
    *slot = Some((key, value));
    Ok(())
}

fn unknown_option(key: &Ident) -> String {
    let hint = match key.unraw().to_string().as_str() {
        "skip" | "skip_all" => {
            "; #[observed] records no arguments by default, so there is nothing to skip: \
             name what to record with `fields(...)`"
        }
        "err" | "ret" => "; the result is recorded already: errors set the span status, `error.type` and one error line",
        "level" => "; #[observed] spans are INFO",
        _ => "",
    };
    format!("unknown option `{key}`: {OPTIONS}{hint}")
}

/// `%` (Display) or `?` (Debug) before a field's name or value.
pub(crate) enum Sigil {
    Display(Token![%]),
    Debug(Token![?]),
}

impl Sigil {
    fn parse_opt(input: ParseStream<'_>) -> syn::Result<Option<Sigil>> {
        Ok(if input.peek(Token![%]) {
            Some(Sigil::Display(input.parse()?))
        } else if input.peek(Token![?]) {
            Some(Sigil::Debug(input.parse()?))
        } else {
            None
        })
    }
}

impl ToTokens for Sigil {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Sigil::Display(t) => t.to_tokens(tokens),
            Sigil::Debug(t) => t.to_tokens(tokens),
        }
    }
}

/// A field's name: dotted identifiers, or a string literal (rejected later).
pub(crate) enum FieldName {
    Path(Punctuated<Ident, Token![.]>),
    Lit(LitStr),
}

impl FieldName {
    /// The name as tracing records it (`order.id`).
    pub(crate) fn dotted(&self) -> String {
        match self {
            FieldName::Path(p) => p
                .iter()
                .map(|i| i.unraw().to_string())
                .collect::<Vec<_>>()
                .join("."),
            FieldName::Lit(l) => l.value(),
        }
    }
}

impl ToTokens for FieldName {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            FieldName::Path(p) => p.to_tokens(tokens),
            FieldName::Lit(l) => l.to_tokens(tokens),
        }
    }
}

/// One `fields(...)` entry, in tracing's syntax: `name = value`,
/// `name = %value`, `name = ?value`, or the shorthands `name`, `%name`, `?name`.
pub(crate) struct Field {
    pub(crate) sigil: Option<Sigil>,
    pub(crate) name: FieldName,
    pub(crate) value: Option<(Token![=], Option<Sigil>, Expr)>,
}

impl Parse for Field {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let sigil = Sigil::parse_opt(input)?;
        let name = if input.peek(LitStr) {
            FieldName::Lit(input.parse()?)
        } else if input.peek(Ident::peek_any) {
            FieldName::Path(Punctuated::parse_separated_nonempty_with(
                input,
                Ident::parse_any,
            )?)
        } else {
            return Err(input.error(
                "expected a field name: write `fields(order_id = %order.id, amount_cents = amount)`",
            ));
        };
        let value = if input.peek(Token![=]) {
            let eq = input.parse()?;
            let value_sigil = Sigil::parse_opt(input)?;
            Some((eq, value_sigil, input.parse()?))
        } else {
            None
        };
        Ok(Field { sigil, name, value })
    }
}

impl ToTokens for Field {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.sigil.to_tokens(tokens);
        self.name.to_tokens(tokens);
        if let Some((eq, sigil, value)) = &self.value {
            eq.to_tokens(tokens);
            sigil.to_tokens(tokens);
            value.to_tokens(tokens);
        }
    }
}
