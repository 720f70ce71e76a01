//! The `#[trace]` attribute of [functrace](https://docs.rs/functrace).
//!
//! Use it through the `functrace` crate (`use functrace::trace;`), which documents the output.
//! With the `trace` feature off the attribute validates its arguments and returns the item
//! token-for-token unchanged (a container only takes its fns' own `#[trace(...)]` off, after
//! checking them), so a build without the feature is the build without the attribute.
//!
//! Layout follows `tracing-attributes`: `attr` parses the options, `expand` generates the code
//! for one fn, `container` walks impl blocks, traits and inline mods.

mod attr;
mod container;
mod expand;

use proc_macro::TokenStream;

/// Traces every call of the function it is put on (or of every fn in the impl block, trait or
/// inline mod it is put on): an enter line, and an exit line with the elapsed time, indented by
/// call depth and prefixed with the task id. Options: `name = "..."`, `args`, `args(a, b)`,
/// `skip(x)`, `skip`, `ret`, `err`, `crate = path`. See the `functrace` crate.
#[proc_macro_attribute]
pub fn trace(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args.into(), item.into(), cfg!(feature = "trace")).into()
}
