//! Code generation for `#[trace]` on one fn.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Block, Expr, FnArg, Ident, ItemFn, Pat, ReturnType, Signature, Stmt, Type};

use crate::attr::{Args, Shown};

/// `#[trace]` on one fn; `None` when it is skipped (`#[trace(skip)]`).
pub(crate) fn expand_fn(
    function: ItemFn,
    args: &Args,
    enabled: bool,
) -> syn::Result<Option<TokenStream>> {
    if args.skip_item.is_some() {
        return Ok(None);
    }
    check_fn(&function.sig, args, true)?;
    if !enabled {
        return Ok(None);
    }
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let block = instrument(&sig, &block, args, &Context::Free);
    Ok(Some(quote!(#(#attrs)* #vis #sig #block)))
}

/// Where a fn stands, for the name it prints.
pub enum Context {
    /// A free fn, or one inside a traced mod: `path::f`.
    Free,
    /// A method of `impl Type` (`path::Type::f`) or `impl Trait for Type`
    /// (`<path::Type as Trait>::f`).
    Impl {
        ty: String,
        of_trait: Option<String>,
    },
    /// A default method of `trait Trait`: `path::Trait::f`.
    Trait { name: String },
}

/// Checks the options against the fn. `explicit` is false for a fn that only inherits a
/// container's attribute, which skips a `const fn` instead of refusing it.
pub fn check_fn(sig: &Signature, args: &Args, explicit: bool) -> syn::Result<()> {
    if let Some(constness) = &sig.constness {
        if explicit {
            return Err(syn::Error::new(constness.span, "cannot trace a const fn"));
        }
    }
    let names = argument_names(sig);
    let listed = match &args.args {
        Some(Shown::Only(list)) => list.iter().chain(&args.skip).collect::<Vec<_>>(),
        _ => args.skip.iter().collect(),
    };
    if let Some(unknown) = listed.into_iter().find(|id| !names.contains(id)) {
        return Err(syn::Error::new(
            unknown.span(),
            format!("no argument named `{unknown}`"),
        ));
    }
    for (span, what) in [(args.ret, "ret"), (args.err, "err")] {
        let Some(span) = span else { continue };
        match &sig.output {
            ReturnType::Default => {
                return Err(syn::Error::new(
                    span,
                    format!("`{what}` needs a fn that returns a value"),
                ))
            }
            ReturnType::Type(_, ty) if matches!(**ty, Type::Never(_)) => {
                return Err(syn::Error::new(
                    span,
                    format!("`{what}` on a fn that never returns"),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The arguments bound to a plain name (`x: T`, `mut x: T`), in order; `self` and
/// destructuring patterns are not among them.
fn argument_names(sig: &Signature) -> Vec<Ident> {
    sig.inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(pat) => Some(pat.ident.clone()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// The name printed for a call: `name = "..."`, else the path, fixed at compile time.
fn name(sig: &Signature, args: &Args, context: &Context) -> TokenStream {
    if let Some(name) = &args.name {
        return quote!(#name);
    }
    let f = sig.ident.to_string();
    let f = f.strip_prefix("r#").unwrap_or(&f);
    match context {
        Context::Free => quote!(::core::concat!(::core::module_path!(), "::", #f)),
        Context::Impl { ty, of_trait: None } => {
            quote!(::core::concat!(::core::module_path!(), "::", #ty, "::", #f))
        }
        Context::Impl {
            ty,
            of_trait: Some(of_trait),
        } => quote!(::core::concat!(
            "<", ::core::module_path!(), "::", #ty, " as ", #of_trait, ">::", #f
        )),
        Context::Trait { name } => {
            quote!(::core::concat!(::core::module_path!(), "::", #name, "::", #f))
        }
    }
}

/// The body of a traced fn: a sync fn opens a guard as its first statement (dropped on
/// return, `?`, early `return` and unwinding); an async fn wraps its body in a future that
/// carries its frame; an `#[async_trait]` method (a sync fn returning `Box::pin(async move
/// {...})`) gets that future wrapped.
pub fn instrument(sig: &Signature, block: &Block, args: &Args, context: &Context) -> TokenStream {
    let krate = match &args.krate {
        Some(path) => quote!(#path),
        None => quote!(::functrace),
    };
    let name = name(sig, args, context);
    let stmts = &block.stmts;
    // One per traced fn: its name, module, and the filter's cached decision.
    let site = Ident::new("__FUNCTRACE_CALLSITE", Span::mixed_site());
    let callsite = quote! {
        static #site: #krate::__private::Callsite =
            #krate::__private::Callsite::new(#name, ::core::module_path!());
    };
    if sig.asyncness.is_some() {
        let fake_return = fake_return_edge(sig);
        let (render, future) = traced_future(
            &krate,
            &site,
            sig,
            args,
            quote!(async move { #fake_return #(#stmts)* }),
        );
        let future = in_tracing_span(&krate, &name, future);
        return quote!({ #callsite #render #future.await });
    }
    if let Some((stmts, call, body)) = async_trait_future(block) {
        let func = &call.func;
        let (render, future) = traced_future(&krate, &site, sig, args, body.to_token_stream());
        let future = in_tracing_span(&krate, &name, future);
        return quote!({ #(#stmts)* #callsite #render #func(#future) });
    }
    let guard = Ident::new("__functrace_guard", Span::mixed_site());
    let enter = match shown(sig, args) {
        Some((format, values)) => quote! {
            #krate::__private::Guard::enter_args(&#site, ::core::format_args!(#format, #(#values),*))
        },
        None => quote!(#krate::__private::Guard::enter(&#site)),
    };
    let span = Ident::new("__functrace_span", Span::mixed_site());
    let enter = match tracing_span(&krate, &name) {
        Some(tracing_span) => quote!(#enter; let #span = #tracing_span.entered()),
        None => enter,
    };
    if args.ret.is_none() && args.err.is_none() {
        return quote!({ #callsite let #guard = #enter; #(#stmts)* });
    }
    // The value is needed for the exit line: run the body as a closure that may only be called
    // once, so that it may hand out borrows of its arguments as the fn itself could.
    let value = format_ident!("__functrace_ret", span = Span::mixed_site());
    let annotation = match &sig.output {
        ReturnType::Type(arrow, ty) if !mentions_impl(ty) => quote!(#arrow #ty),
        _ => TokenStream::new(),
    };
    let note = match (args.ret.is_some(), args.err.is_some()) {
        (true, false) => quote!(#guard.returned(::core::format_args!("= {:?}", #value));),
        (false, true) => quote! {
            if let ::core::result::Result::Err(err) = &#value {
                #guard.failed(::core::format_args!("{:?}", err));
            }
        },
        _ => quote! {
            match &#value {
                ::core::result::Result::Ok(ok) => #guard.returned(::core::format_args!("= {:?}", ok)),
                ::core::result::Result::Err(err) => #guard.failed(::core::format_args!("{:?}", err)),
            }
        },
    };
    quote!({
        #callsite
        let #guard = #enter;
        let #value = #krate::__private::once(move || #annotation { #(#stmts)* });
        #note
        #value
    })
}

/// With the `tracing` feature: a `tracing` span (INFO) named like the traced call.
fn tracing_span(krate: &TokenStream, name: &TokenStream) -> Option<TokenStream> {
    cfg!(feature = "tracing").then(
        || quote!(#krate::__private::own_span(|| #krate::__private::tracing::info_span!(target: ::core::module_path!(), #name))),
    )
}

/// `future` instrumented with the `tracing` span, with the `tracing` feature.
fn in_tracing_span(krate: &TokenStream, name: &TokenStream, future: TokenStream) -> TokenStream {
    match tracing_span(krate, name) {
        Some(span) => quote!(#krate::__private::tracing::Instrument::instrument(#future, #span)),
        None => future,
    }
}

/// `Traced::new(&site, future)` with the arguments rendered beforehand (they move into the
/// future) and the note for the exit line.
fn traced_future(
    krate: &TokenStream,
    site: &Ident,
    sig: &Signature,
    args: &Args,
    future: TokenStream,
) -> (TokenStream, TokenStream) {
    let rendered = Ident::new("__functrace_args", Span::mixed_site());
    let (render, with_args) = match shown(sig, args) {
        Some((format, values)) => (
            quote! {
                let #rendered = #krate::__private::render(::core::format_args!(#format, #(#values),*));
            },
            quote!(.with_args(#rendered)),
        ),
        None => (TokenStream::new(), TokenStream::new()),
    };
    let with_ret = match (args.ret.is_some(), args.err.is_some()) {
        (false, _) => None,
        (true, false) => Some(quote!(|ret| ::std::format!("= {:?}", ret))),
        // An `Err` is shown by `with_err`; this shows the `Ok` value.
        (true, true) => Some(quote! {
            |ret| match ret {
                ::core::result::Result::Ok(ok) => ::std::format!("= {:?}", ok),
                ::core::result::Result::Err(_) => ::std::string::String::new(),
            }
        }),
    }
    .map(|ret| quote!(.with_ret(#ret)));
    let with_err = args.err.map(|_| {
        quote! {
            .with_err(|ret| match ret {
                ::core::result::Result::Err(err) => ::core::option::Option::Some(::std::format!("{:?}", err)),
                _ => ::core::option::Option::None,
            })
        }
    });
    (
        render,
        quote!(#krate::__private::Traced::new(&#site, #future) #with_args #with_ret #with_err),
    )
}

/// The format string and values of the arguments the enter line shows, if any.
fn shown(sig: &Signature, args: &Args) -> Option<(String, Vec<Ident>)> {
    let names = match args.args.as_ref()? {
        Shown::All(_) => argument_names(sig)
            .into_iter()
            .filter(|name| !args.skip.contains(name))
            .collect(),
        Shown::Only(list) => list.clone(),
    };
    let format = names
        .iter()
        .map(|name| format!("{} = {{:?}}", name.to_string().trim_start_matches("r#")))
        .collect::<Vec<_>>()
        .join(", ");
    Some((format, names))
}

/// The statements before, the `Box::pin(...)` call and the `async move` block of a body that
/// `#[async_trait]` generated, if it is one.
fn async_trait_future(block: &Block) -> Option<(&[Stmt], &syn::ExprCall, &syn::ExprAsync)> {
    let (Stmt::Expr(Expr::Call(call), None), before) = block.stmts.split_last()? else {
        return None;
    };
    let Expr::Path(func) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = func
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if !segments.ends_with(&["Box".to_owned(), "pin".to_owned()]) || call.args.len() != 1 {
        return None;
    }
    match &call.args[0] {
        Expr::Async(body) => Some((before, call, body)),
        _ => None,
    }
}

fn mentions_impl(ty: &Type) -> bool {
    fn any_impl(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|t| match t {
            TokenTree::Ident(ident) => ident == "impl",
            TokenTree::Group(group) => any_impl(group.stream()),
            _ => false,
        })
    }
    any_impl(ty.to_token_stream())
}

/// An unreachable `return` of the declared type, so that `?` and `return` inside the async
/// block infer the fn's return type (the technique of `tracing-attributes`). Omitted for
/// `impl Trait` returns, whose type cannot be named in a `let`.
fn fake_return_edge(sig: &Signature) -> TokenStream {
    let ReturnType::Type(_, ty) = &sig.output else {
        return TokenStream::new();
    };
    if mentions_impl(ty) {
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

/// Tokens as a person writes them: `Stack<T>`, `HashMap<K, V>`, `&'a mut [u8; 4]`.
pub fn compact(tokens: TokenStream) -> String {
    let mut out = String::new();
    let mut after_word = false;
    for token in tokens {
        match token {
            TokenTree::Ident(_) | TokenTree::Literal(_) => {
                if after_word {
                    out.push(' ');
                }
                out.push_str(&token.to_string());
                after_word = true;
            }
            TokenTree::Punct(punct) => {
                out.push(punct.as_char());
                if matches!(punct.as_char(), ',' | ';') {
                    out.push(' ');
                }
                if out.ends_with("->") {
                    out.truncate(out.len() - 2);
                    out.push_str(" -> ");
                }
                after_word = false;
            }
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                // `&mut [T]`, but `Fn(u8)`: a word before brackets is a keyword in a type.
                if after_word && group.delimiter() == Delimiter::Bracket {
                    out.push(' ');
                }
                out.push_str(open);
                out.push_str(&compact(group.stream()));
                out.push_str(close);
                after_word = false;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand;

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
            quote!(
                impl<T> Stack<T> {
                    const fn new() -> Self {
                        todo!()
                    }
                    fn push(&mut self, t: T) {}
                }
            ),
            quote!(
                trait Shape {
                    fn area(&self) -> f64;
                    fn twice(&self) -> f64 {
                        2.0 * self.area()
                    }
                }
            ),
            quote!(
                mod inner {
                    fn f() {}
                    extern "C" {
                        fn g();
                    }
                    m! {}
                }
            ),
        ];
        for item in items {
            let out = off(item.clone());
            assert!(same_tokens(out.clone(), item.clone()), "{out} != {item}");
        }
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
            (
                quote!(args(y)),
                quote!(
                    fn f(x: u8) {}
                ),
            ),
            (
                quote!(ret),
                quote!(
                    fn f() {}
                ),
            ),
            (quote!(name = "x"), quote!(impl S {})),
            (
                quote!(),
                quote!(
                    mod file;
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

    /// The expansion of each main shape, pinned in `tests/snapshots/` (pretty-printed), and with
    /// the `tracing` feature (each call also opens a `tracing` span) in
    /// `tests/snapshots-tracing/`. `FUNCTRACE_BLESS=1 cargo test -p functrace-macros` (with
    /// `--features tracing` for the second) rewrites them after a deliberate change.
    #[test]
    fn expansions_match_snapshots() {
        let cases = [
            (
                "sync_fn",
                quote!(),
                quote!(
                    fn f(x: u8) -> u8 {
                        x + 1
                    }
                ),
            ),
            (
                "async_fn",
                quote!(),
                quote!(
                    async fn f(x: u8) -> Result<u8, E> {
                        g(x).await?;
                        Ok(x)
                    }
                ),
            ),
            (
                "args_ret",
                quote!(args, skip(b), ret),
                quote!(
                    fn add(a: u8, b: u8) -> u8 {
                        a + b
                    }
                ),
            ),
            (
                "err_async",
                quote!(err),
                quote!(
                    async fn get(id: u8) -> Result<u8, E> {
                        find(id)
                    }
                ),
            ),
            (
                "impl_block",
                quote!(),
                quote!(
                    impl<T> Stack<T> {
                        fn push(&mut self, t: T) {
                            self.0.push(t)
                        }
                        const fn new() -> Self {
                            Stack(Vec::new())
                        }
                        #[trace(skip)]
                        fn len(&self) -> usize {
                            self.0.len()
                        }
                    }
                ),
            ),
            (
                "trait_impl",
                quote!(),
                quote!(impl Display for Point {
                    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result { write!(f, "{}", self.0) }
                }),
            ),
            (
                "trait_defaults",
                quote!(),
                quote!(
                    trait Shape {
                        fn area(&self) -> f64;
                        fn twice(&self) -> f64 {
                            2.0 * self.area()
                        }
                    }
                ),
            ),
            (
                "inline_mod",
                quote!(crate = my::functrace),
                quote!(
                    mod m {
                        fn f() {}
                        extern "C" {
                            fn abs(x: i32) -> i32;
                        }
                        #[trace(ret)]
                        mod n {
                            fn g() -> u8 {
                                1
                            }
                        }
                    }
                ),
            ),
            (
                "async_trait_method",
                quote!(),
                quote!(
                    fn greet<'a>(&'a self) -> Pin<Box<dyn Future<Output = String> + Send + 'a>> {
                        Box::pin(async move {
                            let __self = self;
                            let __ret: String = { hello() };
                            __ret
                        })
                    }
                ),
            ),
        ];
        let dir = match cfg!(feature = "tracing") {
            false => "tests/snapshots",
            true => "tests/snapshots-tracing",
        };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let bless = std::env::var_os("FUNCTRACE_BLESS").is_some();
        for (name, args, item) in cases {
            let expanded = expand(args, item, true);
            let file = syn::parse2::<syn::File>(expanded.clone())
                .unwrap_or_else(|e| panic!("{name} does not parse ({e}): {expanded}"));
            let pretty = prettyplease::unparse(&file);
            let path = dir.join(format!("{name}.rs"));
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &pretty).unwrap();
            }
            let pinned = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            assert_eq!(pretty, pinned, "{name}: expansion changed");
        }
    }

    #[test]
    fn a_body_that_does_not_parse_comes_back_with_the_error() {
        let item = quote!(fn half_typed() { let x = ; });
        for enabled in [true, false] {
            let out = expand(TokenStream::new(), item.clone(), enabled).to_string();
            assert!(out.starts_with(":: core :: compile_error !"), "{out}");
            assert!(out.ends_with(&item.to_string()), "{out}");
        }
    }

    #[test]
    fn compact_type_names() {
        let cases = [
            (quote!(Stack<T>), "Stack<T>"),
            (quote!(HashMap<K, V>), "HashMap<K, V>"),
            (quote!(&'a mut [u8; 4]), "&'a mut [u8; 4]"),
            (
                quote!(Wrapper<dyn Fn(u8) -> u8>),
                "Wrapper<dyn Fn(u8) -> u8>",
            ),
        ];
        for (tokens, want) in cases {
            assert_eq!(compact(tokens), want);
        }
    }
}
