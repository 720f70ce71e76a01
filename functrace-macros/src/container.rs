//! `#[trace]` on an `impl` block, a `trait` or an inline `mod`: every fn inside is traced as if
//! it carried the attribute, with its name qualified by the type or trait. A fn's own
//! `#[trace(...)]` adds to (or, with `skip`, opts out of) the container's options; a `const fn`,
//! functions in `extern` blocks and macro invocations are left alone.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{
    Attribute, Block, ImplItem, Item, ItemImpl, ItemMod, ItemTrait, Meta, ReturnType, Signature,
    TraitItem, Type,
};

use crate::attr::Args;
use crate::expand::{check_fn, compact, instrument, Context};

pub fn expand(mut item: Item, args: &Args, enabled: bool) -> syn::Result<Option<TokenStream>> {
    if let Item::Mod(ItemMod {
        content: None,
        semi,
        ..
    }) = &item
    {
        return Err(syn::Error::new(
            semi.map_or_else(proc_macro2::Span::call_site, |s| s.span),
            "#[trace] sees only an inline `mod name { ... }`, not a module in its own file",
        ));
    }
    if args.skip_item.is_some() {
        return Ok(None);
    }
    args.check_container()?;
    let mut walk = Walk {
        enabled,
        error: None,
        taken: false,
    };
    match &mut item {
        Item::Impl(block) => impl_block(block, args, &mut walk),
        Item::Trait(block) => trait_block(block, args, &mut walk),
        Item::Mod(module) => inline_mod(module, args, &mut walk),
        _ => unreachable!("expand dispatches only containers here"),
    }
    match walk.error {
        Some(err) => Err(err),
        // Off, and no fn inside had its own attribute: the very tokens come back.
        None if !enabled && !walk.taken => Ok(None),
        None => Ok(Some(item.into_token_stream())),
    }
}

/// The state of one walk through a container. The fns' own attributes are checked and taken
/// off in both modes, so that they need not resolve on their own, with tracing on or off.
struct Walk {
    enabled: bool,
    error: Option<syn::Error>,
    taken: bool,
}

impl Walk {
    fn push(&mut self, err: syn::Error) {
        match &mut self.error {
            Some(all) => all.combine(err),
            None => self.error = Some(err),
        }
    }

    /// Takes the item's own `#[trace(...)]` off and returns its options.
    fn take_own(&mut self, attrs: &mut Vec<Attribute>) -> Option<syn::Result<Args>> {
        let own = take_own(attrs);
        self.taken |= own.is_some();
        own
    }
}

fn impl_block(block: &mut ItemImpl, args: &Args, walk: &mut Walk) {
    let context = Context::Impl {
        ty: compact(block.self_ty.to_token_stream()),
        of_trait: block
            .trait_
            .as_ref()
            .map(|(_, path, _)| compact(path.to_token_stream())),
    };
    for item in &mut block.items {
        if let ImplItem::Fn(f) = item {
            traced_fn(&mut f.attrs, &f.sig, &mut f.block, &context, args, walk);
        }
    }
}

fn trait_block(block: &mut ItemTrait, args: &Args, walk: &mut Walk) {
    let context = Context::Trait {
        name: block.ident.to_string(),
    };
    for item in &mut block.items {
        if let TraitItem::Fn(f) = item {
            if let Some(body) = &mut f.default {
                traced_fn(&mut f.attrs, &f.sig, body, &context, args, walk);
            }
        }
    }
}

fn inline_mod(module: &mut ItemMod, args: &Args, walk: &mut Walk) {
    let Some((_, items)) = &mut module.content else {
        return;
    };
    for item in items {
        match item {
            Item::Fn(f) => traced_fn(
                &mut f.attrs,
                &f.sig,
                &mut f.block,
                &Context::Free,
                args,
                walk,
            ),
            Item::Impl(inner) => {
                if let Some(args) = nested(&mut inner.attrs, args, walk) {
                    impl_block(inner, &args, walk);
                }
            }
            Item::Trait(inner) => {
                if let Some(args) = nested(&mut inner.attrs, args, walk) {
                    trait_block(inner, &args, walk);
                }
            }
            Item::Mod(inner) => {
                if let Some(args) = nested(&mut inner.attrs, args, walk) {
                    inline_mod(inner, &args, walk);
                }
            }
            _ => {}
        }
    }
}

/// The options for a container inside a traced mod, with its own attribute if it has one;
/// `None` if it opts out or its attribute is wrong.
fn nested(attrs: &mut Vec<Attribute>, outer: &Args, walk: &mut Walk) -> Option<Args> {
    let own = match walk.take_own(attrs) {
        None => return Some(outer.clone()),
        Some(Err(err)) => {
            walk.push(err);
            return None;
        }
        Some(Ok(own)) if own.skip_item.is_some() => return None,
        Some(Ok(own)) => own,
    };
    match own.check_container() {
        Ok(()) => Some(own.within(outer)),
        Err(err) => {
            walk.push(err);
            None
        }
    }
}

fn traced_fn(
    attrs: &mut Vec<Attribute>,
    sig: &Signature,
    block: &mut Block,
    context: &Context,
    container: &Args,
    walk: &mut Walk,
) {
    let (mut args, explicit) = match walk.take_own(attrs) {
        None => (Args::default().within(container), false),
        Some(Ok(own)) => (own.within(container), true),
        Some(Err(err)) => return walk.push(err),
    };
    if args.skip_item.is_some() || (sig.constness.is_some() && !explicit) {
        return;
    }
    // The container's `ret` shows values where there are values.
    if container.ret.is_some() && !returns_a_value(sig) {
        args.ret = None;
    }
    match check_fn(sig, &args, explicit) {
        Ok(()) if !walk.enabled => {}
        Ok(()) => {
            let traced = instrument(sig, block, &args, context);
            *block = syn::parse2(traced).expect("instrument emits a block");
        }
        Err(err) => walk.push(err),
    }
}

fn returns_a_value(sig: &Signature) -> bool {
    match &sig.output {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) => !matches!(**ty, Type::Never(_)),
    }
}

/// Removes the item's own `#[trace(...)]` (`trace`, `functrace::trace`, `::functrace::trace`)
/// and returns its options.
fn take_own(attrs: &mut Vec<Attribute>) -> Option<syn::Result<Args>> {
    let position = attrs.iter().position(is_trace)?;
    let attr = attrs.remove(position);
    Some(match attr.meta {
        Meta::Path(_) => Ok(Args::default()),
        Meta::List(list) => syn::parse2(list.tokens),
        Meta::NameValue(pair) => Err(syn::Error::new_spanned(
            pair,
            "expected #[trace] or #[trace(...)]",
        )),
    })
}

fn is_trace(attr: &Attribute) -> bool {
    let segments: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    matches!(segments.as_slice(), [one] if one == "trace")
        || matches!(segments.as_slice(), [first, last] if first == "functrace" && last == "trace")
}
