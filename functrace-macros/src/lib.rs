//! The `#[trace]` attribute of [functrace](https://docs.rs/functrace).
//!
//! Use it through the `functrace` crate (`use functrace::trace;`), which documents the output.
//! With the `trace` feature off the attribute validates its arguments and returns the item
//! token-for-token unchanged (a container only takes its fns' own `#[trace(...)]` off, after
//! checking them), so a build without the feature is the build without the attribute.
//!
//! Layout follows `tracing-attributes`: the entry and the dispatch by item kind are here, `attr`
//! parses the options, `expand` generates the code
//! for one fn, `container` walks impl blocks, traits and inline mods.

mod attr;
mod container;
mod expand;

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::Item;

use attr::Args;

/// Traces every call of the function it is put on (or of every fn in the impl block, trait or
/// inline mod it is put on): an enter line, and an exit line with the elapsed time, indented by
/// call depth and prefixed with the task id. Options: `name = "..."`, `args`, `args(a, b)`,
/// `skip(x)`, `skip`, `ret`, `err`, `crate = path`. See the `functrace` crate.
#[proc_macro_attribute]
pub fn trace(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand(args.into(), item.into(), cfg!(feature = "trace")).into()
}

/// Expands `#[trace(args)] item`. With `enabled == false` the item comes back unchanged (its
/// very tokens), after the same validation as when enabled, so that code which compiles with
/// tracing off also compiles with it on.
fn expand(args: TokenStream, item: TokenStream, enabled: bool) -> TokenStream {
    let args = match syn::parse2::<Args>(args) {
        Ok(args) => args,
        Err(err) => return with_error(item, err),
    };
    // A body that does not parse (half-typed code in an editor) comes back as written, with
    // the error, so that rust-analyzer still sees the item.
    let parsed = match syn::parse2::<Item>(item.clone()) {
        Ok(parsed) => parsed,
        Err(err) => return with_error(item, err),
    };
    let expanded = match parsed {
        Item::Fn(function) => expand::expand_fn(function, &args, enabled),
        Item::Impl(_) | Item::Trait(_) | Item::Mod(_) => container::expand(parsed, &args, enabled),
        other => Err(syn::Error::new(
            first_token_span(&other),
            "#[trace] applies to a fn, an impl block, a trait or an inline mod",
        )),
    };
    match expanded {
        Ok(Some(tokens)) => tokens,
        Ok(None) => item,
        Err(err) => with_error(item, err),
    }
}

/// The original tokens plus the error: the item still exists, so one mistake does not
/// cascade into "cannot find function" errors at every call site.
fn with_error(item: TokenStream, err: syn::Error) -> TokenStream {
    let err = err.to_compile_error();
    quote!(#err #item)
}

fn first_token_span(item: &Item) -> Span {
    item.to_token_stream()
        .into_iter()
        .find(|t| !matches!(t, TokenTree::Punct(p) if p.as_char() == '#'))
        .map_or_else(Span::call_site, |t| match t {
            TokenTree::Group(g) if g.delimiter() == Delimiter::Bracket => Span::call_site(),
            t => t.span(),
        })
}
