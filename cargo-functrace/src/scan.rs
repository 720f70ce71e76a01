//! Finding the functions to annotate: a syn visitor that walks a parsed file
//! and reports, for each function, the byte offset of its first signature
//! token together with the attribute form that applies in its scope.
//!
//! Macro invocations and `macro_rules!` bodies are opaque token streams to
//! syn, so functions written inside them are never reported.

use proc_macro2::{LineColumn, Span};
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{
    Attribute, Block, ImplItemFn, Item, ItemFn, ItemImpl, ItemMod, ItemTrait, Meta, Signature,
    Stmt, Token, TraitItemFn, UseTree, Visibility,
};

/// The attribute `add` inserts where `trace` is not imported.
pub const FULL_ATTR: &str = "#[functrace::trace]";
/// The attribute `add` inserts where `use functrace::trace;` is in scope.
pub const SHORT_ATTR: &str = "#[trace]";

/// What the scan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Report the functions `add` annotates; `tests` also includes test code.
    Add { tests: bool },
    /// Report every function `add` could ever have annotated, whatever its
    /// context, so that `remove` undoes `add --tests` as well.
    Remove,
}

/// A function found by the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// Byte offset of the function's first token: its visibility, or the
    /// first keyword of its signature (`default`, `async`, `unsafe`, `extern`, `fn`).
    pub offset: usize,
    /// `use functrace::trace;` is in scope, so `add` inserts the short form.
    pub imported: bool,
}

impl Site {
    /// The attribute `add` inserts at this site.
    pub fn attr(&self) -> &'static str {
        if self.imported {
            SHORT_ATTR
        } else {
            FULL_ATTR
        }
    }
}

/// A syntax error, located at a 1-based line and 1-based column (in chars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Parses `src` and returns the sites for `mode`, sorted by offset.
pub fn scan(src: &str, mode: Mode) -> Result<Vec<Site>, ParseError> {
    let (bom, body) = split_bom(src);
    let result = syn::parse_file(body).map_err(parse_error).map(|file| {
        let index = LineIndex::new(body, bom);
        let mut scanner = Scanner {
            index: &index,
            mode,
            imported: imports_trace(&file.items),
            quiet: false,
            sites: Vec::new(),
        };
        scanner.visit_file(&file);
        scanner.sites
    });
    // proc-macro2 keeps the text of every parsed file in a thread-local map
    // for span locations; free it, all spans have been converted by now.
    proc_macro2::extra::invalidate_current_thread_spans();
    let mut sites = result?;
    sites.sort_by_key(|s| s.offset);
    Ok(sites)
}

/// Checks that `src` parses as a Rust file.
pub fn check(src: &str) -> Result<(), ParseError> {
    let result = syn::parse_file(split_bom(src).1)
        .map(drop)
        .map_err(parse_error);
    proc_macro2::extra::invalidate_current_thread_spans();
    result
}

// syn strips a BOM itself but then reports columns on line 1 without it;
// stripping it here keeps the offset arithmetic in one place.
fn split_bom(src: &str) -> (usize, &str) {
    match src.strip_prefix('\u{feff}') {
        Some(body) => (src.len() - body.len(), body),
        None => (0, src),
    }
}

fn parse_error(err: syn::Error) -> ParseError {
    let start = err.span().start();
    ParseError {
        line: start.line,
        column: start.column + 1,
        message: err.to_string(),
    }
}

/// Converts proc-macro2 line/column positions (columns count chars) to byte offsets.
struct LineIndex<'a> {
    text: &'a str,
    base: usize,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str, base: usize) -> Self {
        // proc-macro2 only counts '\n' as a line break; a '\r' before it is
        // just the last char of the line, which is what we want for CRLF.
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex {
            text,
            base,
            line_starts,
        }
    }

    fn offset(&self, pos: LineColumn) -> usize {
        let start = self.line_starts[pos.line - 1];
        let line = &self.text[start..];
        let within = line
            .char_indices()
            .nth(pos.column)
            .map_or(line.len(), |(i, _)| i);
        self.base + start + within
    }
}

struct Scanner<'a> {
    index: &'a LineIndex<'a>,
    mode: Mode,
    /// `use functrace::trace;` is in scope here.
    imported: bool,
    /// Inside code `add` leaves alone entirely (a traced container, or test
    /// code without `--tests`). Never set in `Mode::Remove`.
    quiet: bool,
    sites: Vec<Site>,
}

impl Scanner<'_> {
    fn function(&mut self, attrs: &[Attribute], first: Span, sig: &Signature) {
        if sig.constness.is_some() {
            return;
        }
        if let Mode::Add { tests } = self.mode {
            let test = !tests && is_test_code(attrs);
            if self.quiet || test || attrs.iter().any(is_trace_attr) {
                return;
            }
        }
        self.sites.push(Site {
            offset: self.index.offset(first.start()),
            imported: self.imported,
        });
    }

    /// Whether nothing inside an item with `attrs` gets annotated.
    fn quiet_inside(&self, attrs: &[Attribute], container: bool) -> bool {
        match self.mode {
            Mode::Add { tests } => {
                self.quiet
                    || (container && attrs.iter().any(is_trace_attr))
                    || (!tests && is_test_code(attrs))
            }
            Mode::Remove => false,
        }
    }

    fn within(&mut self, quiet: bool, imported: bool, f: impl FnOnce(&mut Self)) {
        let saved = (self.quiet, self.imported);
        (self.quiet, self.imported) = (quiet, imported);
        f(self);
        (self.quiet, self.imported) = saved;
    }
}

impl<'ast> Visit<'ast> for Scanner<'_> {
    fn visit_item_fn(&mut self, f: &'ast ItemFn) {
        self.function(&f.attrs, first_token(&f.vis, None, &f.sig), &f.sig);
        // A traced fn does not trace the fn items nested in its body, so only
        // test code makes its body quiet.
        let quiet = self.quiet_inside(&f.attrs, false);
        self.within(quiet, self.imported, |s| visit::visit_item_fn(s, f));
    }

    fn visit_impl_item_fn(&mut self, f: &'ast ImplItemFn) {
        let first = first_token(&f.vis, f.defaultness.as_ref(), &f.sig);
        self.function(&f.attrs, first, &f.sig);
        let quiet = self.quiet_inside(&f.attrs, false);
        self.within(quiet, self.imported, |s| visit::visit_impl_item_fn(s, f));
    }

    fn visit_trait_item_fn(&mut self, f: &'ast TraitItemFn) {
        if f.default.is_some() {
            let first = first_token(&Visibility::Inherited, None, &f.sig);
            self.function(&f.attrs, first, &f.sig);
        }
        let quiet = self.quiet_inside(&f.attrs, false);
        self.within(quiet, self.imported, |s| visit::visit_trait_item_fn(s, f));
    }

    fn visit_item_impl(&mut self, i: &'ast ItemImpl) {
        let quiet = self.quiet_inside(&i.attrs, true);
        self.within(quiet, self.imported, |s| visit::visit_item_impl(s, i));
    }

    fn visit_item_trait(&mut self, t: &'ast ItemTrait) {
        let quiet = self.quiet_inside(&t.attrs, true);
        self.within(quiet, self.imported, |s| visit::visit_item_trait(s, t));
    }

    fn visit_item_mod(&mut self, m: &'ast ItemMod) {
        let quiet = self.quiet_inside(&m.attrs, true);
        // A module does not see its parent's imports: `#[trace]` only works
        // in a module that imports `trace` itself.
        let imported = m
            .content
            .as_ref()
            .is_some_and(|(_, items)| imports_trace(items));
        self.within(quiet, imported, |s| visit::visit_item_mod(s, m));
    }

    fn visit_block(&mut self, b: &'ast Block) {
        // Items in a block see the enclosing module's imports plus the block's own.
        let imported = self.imported
            || b.stmts.iter().any(|stmt| match stmt {
                Stmt::Item(Item::Use(u)) => tree_imports_trace(&u.tree, &[]),
                _ => false,
            });
        self.within(self.quiet, imported, |s| visit::visit_block(s, b));
    }
}

fn first_token(vis: &Visibility, default: Option<&Token![default]>, sig: &Signature) -> Span {
    match vis {
        Visibility::Public(token) => return token.span,
        Visibility::Restricted(r) => return r.pub_token.span,
        Visibility::Inherited => {}
    }
    default
        .map(|t| t.span)
        .or(sig.constness.map(|t| t.span))
        .or(sig.asyncness.map(|t| t.span))
        .or(sig.unsafety.map(|t| t.span))
        .or(sig.abi.as_ref().map(|abi| abi.extern_token.span))
        .unwrap_or(sig.fn_token.span)
}

/// `#[trace]`, `#[functrace::trace]` or `#[::functrace::trace]`, with or without arguments.
fn is_trace_attr(attr: &Attribute) -> bool {
    let path = attr.path();
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match segments.as_slice() {
        [name] => path.leading_colon.is_none() && name == "trace",
        [krate, name] => krate == "functrace" && name == "trace",
        _ => false,
    }
}

/// `#[test]`, `#[tokio::test]`, `#[rstest]`, ... (last path segment ends in
/// `test`) or a `#[cfg(...)]` that only holds under `cfg(test)`.
fn is_test_code(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        if path.is_ident("cfg") {
            return attr
                .parse_args::<Meta>()
                .is_ok_and(|m| cfg_requires_test(&m));
        }
        path.segments
            .last()
            .is_some_and(|s| s.ident.to_string().ends_with("test"))
    })
}

/// Whether the cfg predicate can only be true when `test` is set.
fn cfg_requires_test(meta: &Meta) -> bool {
    let nested = |list: &syn::MetaList| {
        list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
            .map(|p| p.into_iter().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    match meta {
        Meta::Path(p) => p.is_ident("test"),
        Meta::List(l) if l.path.is_ident("all") => nested(l).iter().any(cfg_requires_test),
        Meta::List(l) if l.path.is_ident("any") => {
            let preds = nested(l);
            !preds.is_empty() && preds.iter().all(cfg_requires_test)
        }
        _ => false,
    }
}

/// Whether `items` contain `use functrace::trace;` or `use functrace::{.., trace, ..};`.
fn imports_trace(items: &[Item]) -> bool {
    items.iter().any(|item| match item {
        Item::Use(u) => tree_imports_trace(&u.tree, &[]),
        _ => false,
    })
}

fn tree_imports_trace(tree: &UseTree, prefix: &[String]) -> bool {
    let under_functrace = prefix.len() == 1 && prefix[0] == "functrace";
    match tree {
        UseTree::Path(p) => {
            let mut prefix = prefix.to_vec();
            prefix.push(p.ident.to_string());
            tree_imports_trace(&p.tree, &prefix)
        }
        UseTree::Name(n) => under_functrace && n.ident == "trace",
        UseTree::Rename(r) => under_functrace && r.ident == "trace" && r.rename == "trace",
        UseTree::Group(g) => g.items.iter().any(|t| tree_imports_trace(t, prefix)),
        UseTree::Glob(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADD: Mode = Mode::Add { tests: false };
    const ADD_TESTS: Mode = Mode::Add { tests: true };

    /// The name of the function at each site, in order.
    fn names(src: &str, mode: Mode) -> Vec<String> {
        scan(src, mode)
            .unwrap()
            .iter()
            .map(|site| {
                let rest = &src[site.offset..];
                let after_fn = &rest[rest.find("fn ").expect("site is not a fn") + 3..];
                after_fn
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    fn added(src: &str) -> Vec<String> {
        names(src, ADD)
    }

    #[test]
    fn free_functions_of_every_kind() {
        let src = r#"
fn a() {}
pub fn b() {}
pub(crate) async fn c() {}
unsafe fn d() {}
extern "C" fn e() {}
pub(in crate::x) async unsafe extern "C" fn f<T>(t: T) -> T { t }
"#;
        assert_eq!(added(src), ["a", "b", "c", "d", "e", "f"]);
    }

    #[test]
    fn site_is_first_token_after_attributes_and_docs() {
        let src = "/// doc\n#[inline]\n#[allow(dead_code)] pub async fn a() {}\n";
        let sites = scan(src, ADD).unwrap();
        assert_eq!(sites.len(), 1);
        assert!(src[sites[0].offset..].starts_with("pub async fn a"));
        let src = "#[inline]\nasync unsafe fn a() {}\n";
        assert!(src[scan(src, ADD).unwrap()[0].offset..].starts_with("async unsafe fn"));
        let src = "impl A {\n    pub default fn a() {}\n    default unsafe fn b() {}\n}\n";
        let sites = scan(src, ADD).unwrap();
        assert!(src[sites[0].offset..].starts_with("pub default fn a"));
        assert!(src[sites[1].offset..].starts_with("default unsafe fn b"));
    }

    #[test]
    fn impl_methods_and_trait_default_methods() {
        let src = r#"
struct S;
impl S {
    fn new() -> Self { S }
    pub fn get(&self) -> u8 { 0 }
}
impl Clone for S {
    fn clone(&self) -> Self { S }
}
trait T {
    fn required(&self);
    fn provided(&self) {}
    type X;
    const C: u8;
}
"#;
        assert_eq!(added(src), ["new", "get", "clone", "provided"]);
    }

    #[test]
    fn nested_modules_and_nested_fns() {
        let src = r#"
mod a {
    fn in_a() {}
    pub mod b {
        fn in_b() {
            fn nested() {
                fn deeper() {}
            }
            struct L;
            impl L { fn local_method(&self) {} }
        }
    }
}
"#;
        assert_eq!(
            added(src),
            ["in_a", "in_b", "nested", "deeper", "local_method"]
        );
    }

    #[test]
    fn already_annotated_functions_are_skipped() {
        let src = r#"
#[trace] fn a() {}
#[functrace::trace] fn b() {}
#[::functrace::trace] fn c() {}
#[trace(level = "debug")] fn d() {}
#[functrace::trace(skip)] fn e() {}
#[other::trace] fn f() {}
#[::trace] fn g() {}
#[tracing::instrument] fn h() {}
"#;
        assert_eq!(added(src), ["f", "g", "h"]);
    }

    #[test]
    fn nested_fn_in_traced_fn_is_still_included() {
        let src = "#[trace]\nfn outer() { fn inner() {} }\n";
        assert_eq!(added(src), ["inner"]);
    }

    #[test]
    fn traced_containers_are_skipped_entirely() {
        let src = r#"
#[trace] impl A { fn a(&self) {} fn a2() { fn nested() {} } }
#[functrace::trace] trait B { fn b(&self) {} }
#[::functrace::trace(x)] mod c { fn c() {} mod d { fn d() {} } impl E { fn e() {} } }
mod f { #![trace] fn f() {} }
impl G { fn g() {} }
"#;
        assert_eq!(added(src), ["g"]);
    }

    #[test]
    fn const_fns_are_skipped() {
        let src = "const fn a() {}\npub const unsafe fn b() {}\nimpl A { const fn c() {} fn d() {} }\ntrait T { const fn e() {} }\n";
        assert_eq!(added(src), ["d"]);
        assert_eq!(names(src, Mode::Remove), ["d"]);
    }

    #[test]
    fn extern_blocks_and_bodiless_trait_methods_are_skipped() {
        let src = r#"
extern "C" { fn ext(x: i32) -> i32; }
unsafe extern "C" { pub safe fn ext2(); }
trait T { fn decl(&self); fn decl2(&self) -> u8; }
fn body() {}
"#;
        assert_eq!(added(src), ["body"]);
        assert_eq!(names(src, Mode::Remove), ["body"]);
    }

    #[test]
    fn test_functions_are_skipped_unless_tests() {
        let src = r#"
#[test] fn t1() { fn helper_in_test() {} }
#[tokio::test] async fn t2() {}
#[rstest] fn t3() {}
#[test]
#[should_panic] fn t4() {}
fn normal() {}
"#;
        assert_eq!(added(src), ["normal"]);
        assert_eq!(
            names(src, ADD_TESTS),
            ["t1", "helper_in_test", "t2", "t3", "t4", "normal"]
        );
    }

    #[test]
    fn cfg_test_code_is_skipped_unless_tests() {
        let src = r#"
fn lib() {}
#[cfg(test)]
mod tests {
    fn helper() {}
    mod inner { fn deep() {} }
    #[test] fn t() {}
}
#[cfg(all(test, feature = "x"))] mod t2 { fn a() {} }
#[cfg(any(test, feature = "x"))] mod not_only_tests { fn b() {} }
#[cfg(not(test))] mod not_tests { fn c() {} }
#[cfg(test)] fn test_helper() {}
#[cfg(test)] impl S { fn test_method() {} }
"#;
        assert_eq!(added(src), ["lib", "b", "c"]);
        assert_eq!(
            names(src, ADD_TESTS),
            [
                "lib",
                "helper",
                "deep",
                "t",
                "a",
                "b",
                "c",
                "test_helper",
                "test_method"
            ]
        );
    }

    #[test]
    fn macros_are_not_entered() {
        let src = r#"
macro_rules! m { () => { fn in_macro_rules() {} } }
m! { fn in_invocation() {} }
thread_local! { static X: u8 = 0; }
fn real() { inner_macro!(fn x() {}); }
"#;
        assert_eq!(added(src), ["real"]);
    }

    #[test]
    fn remove_mode_ignores_context_rules() {
        let src = r#"
#[trace] impl A { fn a() {} }
#[cfg(test)] mod t { #[test] fn t() {} }
#[functrace::trace] fn b() {}
"#;
        assert_eq!(names(src, Mode::Remove), ["a", "t", "b"]);
    }

    #[test]
    fn one_line_items() {
        let src = "impl A { fn a() {} fn b() {} }";
        let sites = scan(src, ADD).unwrap();
        let offsets: Vec<usize> = sites.iter().map(|s| s.offset).collect();
        assert_eq!(offsets, [9, 19]);
        assert_eq!(added("fn a() {} fn b() { fn c() {} }"), ["a", "b", "c"]);
    }

    #[test]
    fn offsets_after_multibyte_chars() {
        // Columns are counted in chars; offsets must be in bytes.
        let src = "// é€😀 on an earlier line\nconst S: &str = \"日本語\"; /* ü */ fn a() {} fn b() {}\n/* ∑ */ pub fn c() {}\n";
        let sites = scan(src, ADD).unwrap();
        let texts: Vec<&str> = sites.iter().map(|s| &src[s.offset..s.offset + 8]).collect();
        assert_eq!(texts, ["fn a() {", "fn b() {", "pub fn c"]);
    }

    #[test]
    fn offsets_with_crlf_and_tabs_and_bom() {
        let src =
            "\u{feff}fn a() {}\r\nimpl A {\r\n\tfn b() {}\r\n\t\t/* ö */\tpub fn c() {}\r\n}\r\n";
        let sites = scan(src, ADD).unwrap();
        let texts: Vec<&str> = sites.iter().map(|s| &src[s.offset..s.offset + 6]).collect();
        assert_eq!(texts, ["fn a()", "fn b()", "pub fn"]);
        assert_eq!(sites[0].offset, 3);
    }

    #[test]
    fn shebang_keeps_line_numbers() {
        let src = "#!/usr/bin/env run-cargo-script\nfn main() {}\n";
        assert_eq!(
            scan(src, ADD).unwrap()[0].offset,
            src.find("fn main").unwrap()
        );
    }

    #[test]
    fn short_form_only_where_trace_is_imported() {
        let src = r#"
use functrace::trace;
fn a() {}
impl A { fn b() { fn c() {} } }
mod m { fn d() {} }
mod n { use functrace::{self, trace}; fn e() {} }
fn f() { use ::functrace::trace; fn g() {} }
"#;
        let sites = scan(src, ADD).unwrap();
        let imported: Vec<bool> = sites.iter().map(|s| s.imported).collect();
        assert_eq!(imported, [true, true, true, false, true, true, true]);
        assert_eq!(sites[0].attr(), SHORT_ATTR);
        assert_eq!(sites[3].attr(), FULL_ATTR);
    }

    #[test]
    fn other_imports_do_not_count() {
        for import in [
            "use functrace::trace as t;",
            "use fastrace::trace;",
            "use functrace::*;",
            "use functrace::other::trace;",
            "use functrace::Trace;",
        ] {
            let src = format!("{import}\nfn a() {{}}\n");
            let sites = scan(&src, ADD).unwrap();
            assert!(!sites[0].imported, "{import}");
        }
        let src = "use functrace::{Level, trace};\nfn a() {}\n";
        assert!(scan(src, ADD).unwrap()[0].imported);
    }

    #[test]
    fn parse_errors_have_line_and_column() {
        let err = scan("fn a() {}\n\nfn b( {}\n", ADD).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.column >= 1);
        assert!(!err.message.is_empty());
        let err = scan("fn a() {}\nfn b() {\n", ADD).unwrap_err();
        assert!(err.line >= 1, "{err}");
        assert!(check("fn a() {}").is_ok());
        assert!(check("fn a() {").is_err());
    }
}
