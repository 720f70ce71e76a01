//! Parsing of the `#[trace(...)]` arguments.

use syn::parse::{Parse, ParseStream};

/// The arguments of one `#[trace]`. None are accepted yet; every token is rejected with an
/// error pointing at it, identically whether tracing is compiled in or not.
#[derive(Debug, Default)]
pub struct Args {}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Ok(Args {});
        }
        let unknown: proc_macro2::TokenTree = input.parse()?;
        Err(syn::Error::new(
            unknown.span(),
            format!("unknown #[trace] argument `{unknown}`: #[trace] takes no arguments"),
        ))
    }
}
