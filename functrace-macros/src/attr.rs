//! Parsing and checking of the `#[trace(...)]` options.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, LitStr, Path, Token};

/// Which arguments the enter line shows.
#[derive(Clone)]
pub enum Shown {
    /// `args`: every named argument but `self` and those in `skip(...)`.
    All(Span),
    /// `args(a, b)`.
    Only(Vec<Ident>),
}

/// The options of one `#[trace(...)]`.
#[derive(Clone, Default)]
pub struct Args {
    /// `skip` alone: this item is not traced.
    pub skip_item: Option<Span>,
    /// `name = "..."`: the name printed instead of the path.
    pub name: Option<LitStr>,
    pub args: Option<Shown>,
    /// `skip(x, y)`: arguments `args` leaves out.
    pub skip: Vec<Ident>,
    /// `ret`: the exit line shows the returned value.
    pub ret: Option<Span>,
    /// `err`: the exit line of a call that returned `Err(e)` shows it.
    pub err: Option<Span>,
    /// `crate = path`: where `functrace` is, for users who reach it through a re-export.
    pub krate: Option<Path>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let key = if input.peek(Token![crate]) {
                let token: Token![crate] = input.parse()?;
                Ident::new("crate", token.span)
            } else {
                input.call(Ident::parse_any)?
            };
            let word = key.to_string();
            if seen.contains(&word) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("duplicate option `{word}`"),
                ));
            }
            seen.push(word.clone());
            match word.as_str() {
                "name" => {
                    input.parse::<Token![=]>()?;
                    args.name = Some(input.parse()?);
                }
                "args" if input.peek(syn::token::Paren) => {
                    args.args = Some(Shown::Only(idents(input)?));
                }
                "args" => args.args = Some(Shown::All(key.span())),
                "skip" if input.peek(syn::token::Paren) => args.skip = idents(input)?,
                "skip" => args.skip_item = Some(key.span()),
                "ret" => args.ret = Some(key.span()),
                "err" => args.err = Some(key.span()),
                "crate" => {
                    input.parse::<Token![=]>()?;
                    args.krate = Some(input.call(Path::parse_mod_style)?);
                }
                _ => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown #[trace] option `{word}`; expected one of: \
                             name = \"...\", args, args(...), skip, skip(...), ret, err, crate = path"
                        ),
                    ))
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        args.check()?;
        Ok(args)
    }
}

fn idents(input: ParseStream<'_>) -> syn::Result<Vec<Ident>> {
    let content;
    syn::parenthesized!(content in input);
    let list = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
    Ok(list.into_iter().collect())
}

impl Args {
    /// Contradictions among the options themselves (the fn is checked in `expand`).
    fn check(&self) -> syn::Result<()> {
        if self.skip_item.is_some() {
            if let Some(span) = self.other_than_skip() {
                return Err(syn::Error::new(
                    span,
                    "`skip` leaves the item untraced; it takes no other option",
                ));
            }
        }
        match (&self.args, self.skip.first()) {
            (None, Some(first)) => Err(syn::Error::new(
                first.span(),
                "`skip(...)` names arguments that `args` leaves out; add `args`",
            )),
            (Some(Shown::Only(shown)), Some(_)) => {
                match self.skip.iter().find(|s| shown.contains(s)) {
                    Some(both) => Err(syn::Error::new(
                        both.span(),
                        format!("`{both}` is both in `args(...)` and in `skip(...)`"),
                    )),
                    None => Err(syn::Error::new(
                        self.skip[0].span(),
                        "`skip(...)` goes with `args`, not with `args(...)`: list only what to show",
                    )),
                }
            }
            _ => Ok(()),
        }
    }

    fn other_than_skip(&self) -> Option<Span> {
        let shown = self.args.as_ref().map(|a| match a {
            Shown::All(span) => *span,
            Shown::Only(list) => list.first().map_or_else(Span::call_site, Ident::span),
        });
        self.name
            .as_ref()
            .map(LitStr::span)
            .or(shown)
            .or(self.skip.first().map(Ident::span))
            .or(self.ret)
            .or(self.err)
            .or(self.krate.as_ref().map(|p| p.segments[0].ident.span()))
    }

    /// The options of an item inside a container: its own where given, else the container's.
    pub fn within(&self, container: &Args) -> Args {
        Args {
            skip_item: self.skip_item,
            name: self.name.clone(),
            args: self.args.clone().or_else(|| container.args.clone()),
            skip: self.skip.clone(),
            ret: self.ret.or(container.ret),
            err: self.err,
            krate: self.krate.clone().or_else(|| container.krate.clone()),
        }
    }

    /// Options that only make sense on one fn, refused on an impl, trait or mod.
    pub fn check_container(&self) -> syn::Result<()> {
        let single = [
            (self.name.as_ref().map(LitStr::span), "name"),
            (self.err, "err"),
            (self.skip.first().map(Ident::span), "skip(...)"),
            (
                match &self.args {
                    Some(Shown::Only(list)) => list.first().map(Ident::span),
                    _ => None,
                },
                "args(...)",
            ),
        ];
        match single
            .into_iter()
            .find_map(|(span, what)| Some((span?, what)))
        {
            Some((span, what)) => Err(syn::Error::new(
                span,
                format!("`{what}` applies to one fn: put it on the fn inside"),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<Args> {
        syn::parse2(tokens)
    }

    #[test]
    fn every_option_parses() {
        let args = parse(quote!(
            name = "x",
            args,
            skip(a),
            ret,
            err,
            crate = ::my::functrace
        ))
        .unwrap();
        assert_eq!(args.name.unwrap().value(), "x");
        assert!(matches!(args.args, Some(Shown::All(_))));
        assert_eq!(args.skip.len(), 1);
        assert!(args.ret.is_some() && args.err.is_some() && args.krate.is_some());
        assert!(matches!(
            parse(quote!(args(a, b))).unwrap().args,
            Some(Shown::Only(v)) if v.len() == 2
        ));
        assert!(parse(quote!(skip)).unwrap().skip_item.is_some());
    }

    #[test]
    fn mistakes_are_refused() {
        for bad in [
            quote!(verbose),
            quote!(ret, ret),
            quote!(skip, ret),
            quote!(skip(a)),
            quote!(args(a), skip(a)),
            quote!(args(a), skip(b)),
            quote!(name = 1),
            quote!(name),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
