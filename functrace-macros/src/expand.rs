//! Code generation for `#[trace]`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, ReturnType, Signature};

use crate::attr::Args;

/// Expands `#[trace(args)] item`. With `enabled == false` the item comes back unchanged (its
/// very tokens), after the same validation as when enabled, so that code which compiles with
/// tracing off also compiles with it on.
pub fn expand(args: TokenStream, item: TokenStream, enabled: bool) -> TokenStream {
    if let Err(err) = syn::parse2::<Args>(args) {
        return with_error(item, err);
    }
    let function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => return with_error(item.clone(), unsupported(&item)),
    };
    if let Some(constness) = &function.sig.constness {
        return with_error(
            item,
            syn::Error::new(constness.span, "cannot trace a const fn"),
        );
    }
    if !enabled {
        return item;
    }
    instrument(function)
}

/// The original tokens plus the error: the item still exists, so one mistake does not
/// cascade into "cannot find function" errors at every call site.
fn with_error(item: TokenStream, err: syn::Error) -> TokenStream {
    let err = err.to_compile_error();
    quote!(#err #item)
}

fn unsupported(item: &TokenStream) -> syn::Error {
    let first = item.clone().into_iter().next();
    let span = first.map_or_else(Span::call_site, |t| t.span());
    syn::Error::new(span, "#[trace] applies to a fn or an async fn")
}

/// Rewrites the body: a sync fn opens a guard as its first statement (dropped on return, `?`,
/// early `return` and unwinding); an async fn wraps its body in a future that carries its frame.
fn instrument(function: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let name = sig.ident.to_string();
    let path = quote!(::core::concat!(::core::module_path!(), "::", #name));
    let stmts = &block.stmts;
    let body = if sig.asyncness.is_some() {
        let fake_return = fake_return_edge(&sig);
        quote! {
            ::functrace::__private::Traced::new(#path, async move {
                #fake_return
                #(#stmts)*
            })
            .await
        }
    } else {
        let guard = Ident::new("__functrace_guard", Span::mixed_site());
        quote! {
            let #guard = ::functrace::__private::Guard::enter(#path);
            #(#stmts)*
        }
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    }
}

/// An unreachable `return` of the declared type, so that `?` and `return` inside the async
/// block infer the fn's return type (the technique of `tracing-attributes`). Omitted for
/// `impl Trait` returns, whose type cannot be named in a `let`.
fn fake_return_edge(sig: &Signature) -> TokenStream {
    let ReturnType::Type(_, ty) = &sig.output else {
        return TokenStream::new();
    };
    if quote!(#ty).into_iter().any(|t| t.to_string() == "impl") {
        return TokenStream::new();
    }
    quote_spanned! {ty.span()=>
        #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::let_unit_value, clippy::empty_loop)]
        if false {
            let __functrace_fake_return: #ty = loop {};
            return __functrace_fake_return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(item: TokenStream) -> TokenStream {
        expand(TokenStream::new(), item, false)
    }

    /// Token trees compared one by one, spans aside: the item must come back as written.
    fn same_tokens(a: TokenStream, b: TokenStream) -> bool {
        let a: Vec<String> = a.into_iter().map(|t| t.to_string()).collect();
        let b: Vec<String> = b.into_iter().map(|t| t.to_string()).collect();
        a == b
    }

    #[test]
    fn off_returns_the_item_token_for_token() {
        let items = [
            quote!(
                fn plain() {}
            ),
            quote!(
                pub(crate) fn args<'a, T: Clone>(x: &'a T, y: u8) -> &'a T
                where
                    T: Default,
                {
                    let _ = y;
                    x
                }
            ),
            quote!(
                #[inline]
                /// doc
                async fn fetch(id: u64) -> Result<u64, String> {
                    let v = id.checked_add(1).ok_or("overflow")?;
                    Ok(v)
                }
            ),
            quote!(
                unsafe extern "C" fn ffi(p: *const u8) -> u8 {
                    *p
                }
            ),
            quote!(
                fn never() -> ! {
                    loop {}
                }
            ),
        ];
        for item in items {
            let out = off(item.clone());
            assert!(same_tokens(out.clone(), item.clone()), "{out} != {item}");
        }
    }

    #[test]
    fn on_inserts_a_guard_first_in_sync_bodies() {
        let out = expand(
            TokenStream::new(),
            quote!(
                fn f(x: u8) -> u8 {
                    x + 1
                }
            ),
            true,
        );
        let text = out.to_string();
        assert!(
            text.contains(":: functrace :: __private :: Guard :: enter"),
            "{text}"
        );
        assert!(text.ends_with("; x + 1 }"), "{text}");
    }

    #[test]
    fn on_wraps_async_bodies_in_a_traced_future() {
        let out = expand(
            TokenStream::new(),
            quote!(
                async fn f() -> u8 {
                    1
                }
            ),
            true,
        );
        let text = out.to_string();
        assert!(text.contains("Traced :: new"), "{text}");
        assert!(text.contains("let __functrace_fake_return : u8"), "{text}");
    }

    #[test]
    fn errors_are_the_same_in_both_modes() {
        let cases = [
            (
                quote!(bogus),
                quote!(
                    fn f() {}
                ),
            ),
            (
                quote!(),
                quote!(
                    const fn f() {}
                ),
            ),
            (
                quote!(),
                quote!(
                    struct S;
                ),
            ),
        ];
        for (args, item) in cases {
            let on = expand(args.clone(), item.clone(), true).to_string();
            let off = expand(args, item, false).to_string();
            assert!(on.contains("compile_error"), "{on}");
            assert_eq!(on, off);
        }
    }
}
