//! Every shape of fn `#[trace]` goes on, built and run in both feature modes: with `trace` the
//! printed tree is checked line by line (elapsed masked), without it nothing may be printed.

mod support;

use std::fmt::Debug;
use std::pin::Pin;
use std::sync::Arc;

use functrace::trace;

/// The captured lines of `f` without their task prefix; empty when tracing is compiled out.
fn tree<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    let (result, lines) = support::capture(f);
    if let Some((_, task)) = support::by_task(&lines).first() {
        support::assert_well_nested(task);
    }
    let bodies = lines
        .iter()
        .map(|l| support::mask(l).split_once(':').unwrap().1.to_owned())
        .collect();
    (result, bodies)
}

#[track_caller]
fn expect(lines: &[String], traced: &[&str]) {
    if cfg!(feature = "trace") {
        assert_eq!(lines, traced);
    } else {
        assert!(lines.is_empty(), "compiled out, yet printed {lines:?}");
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

// ---- methods: every receiver, associated fns, on the impl block ----

pub struct Counter {
    n: u32,
}

#[trace]
impl Counter {
    fn new() -> Counter {
        Counter { n: 0 }
    }

    fn get(&self) -> u32 {
        self.n
    }

    fn bump(&mut self) -> &mut u32 {
        self.n += 1;
        &mut self.n
    }

    #[allow(clippy::boxed_local)] // the receiver shape is what is tested
    fn boxed(self: Box<Self>) -> u32 {
        self.get()
    }

    fn pinned(self: Pin<&mut Self>) -> u32 {
        self.n
    }

    fn shared(self: Arc<Self>) -> u32 {
        self.n
    }

    fn into_inner(self) -> u32 {
        self.n
    }

    const fn zero() -> u32 {
        0
    }

    #[trace(skip)]
    fn untraced(&self) -> u32 {
        self.n
    }
}

#[test]
fn methods_with_every_receiver() {
    let (n, lines) = tree(|| {
        let mut c = Counter::new();
        *c.bump() += 1;
        let a = c.get();
        let b = Pin::new(&mut c).pinned();
        let d = Box::new(Counter { n: 3 }).boxed();
        let e = Arc::new(Counter { n: 4 }).shared();
        let f = c.untraced() + Counter::zero();
        a + b + d + e + f + c.into_inner()
    });
    assert_eq!(n, 2 + 2 + 3 + 4 + 2 + 2);
    expect(
        &lines,
        &[
            "    ->shapes::Counter::new",
            "    <-shapes::Counter::new *",
            "    ->shapes::Counter::bump",
            "    <-shapes::Counter::bump *",
            "    ->shapes::Counter::get",
            "    <-shapes::Counter::get *",
            "    ->shapes::Counter::pinned",
            "    <-shapes::Counter::pinned *",
            "    ->shapes::Counter::boxed",
            "        ->shapes::Counter::get",
            "        <-shapes::Counter::get *",
            "    <-shapes::Counter::boxed *",
            "    ->shapes::Counter::shared",
            "    <-shapes::Counter::shared *",
            "    ->shapes::Counter::into_inner",
            "    <-shapes::Counter::into_inner *",
        ],
    );
}

// ---- generics, lifetimes, const generics, impl Trait, borrows of &mut arguments ----

pub struct Stack<T, const N: usize> {
    items: Vec<T>,
}

#[trace]
impl<T: Clone + Debug, const N: usize> Stack<T, N> {
    fn push(&mut self, item: T) -> Option<&mut T>
    where
        T: PartialEq,
    {
        (self.items.len() < N).then(|| {
            self.items.push(item);
            self.items.last_mut().unwrap()
        })?;
        self.items.last_mut()
    }
}

#[trace]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

#[trace(ret)]
fn last_of(v: &mut Vec<u8>) -> &mut u8 {
    v.push(0);
    v.last_mut().unwrap()
}

#[trace]
fn total(items: impl IntoIterator<Item = u32>) -> impl Debug {
    items.into_iter().sum::<u32>()
}

#[test]
fn generic_and_borrowing_functions() {
    let ((), lines) = tree(|| {
        let mut stack: Stack<u8, 1> = Stack { items: Vec::new() };
        *stack.push(1).unwrap() += 1;
        assert!(stack.push(9).is_none());
        assert_eq!(longest("ab", "c"), "ab");
        *last_of(&mut vec![1]) += 1;
        assert_eq!(format!("{:?}", total([1, 2])), "3");
    });
    expect(
        &lines,
        &[
            "    ->shapes::Stack<T, N>::push",
            "    <-shapes::Stack<T, N>::push *",
            "    ->shapes::Stack<T, N>::push",
            "    <-shapes::Stack<T, N>::push *",
            "    ->shapes::longest",
            "    <-shapes::longest *",
            "    ->shapes::last_of",
            "    <-shapes::last_of * = 0",
            "    ->shapes::total",
            "    <-shapes::total *",
        ],
    );
}

// ---- unsafe, extern "C", no_mangle, never returning, attributes kept ----

/// Doc comments stay where they were.
#[trace]
#[must_use]
#[inline(never)]
unsafe fn read(p: *const u8) -> u8 {
    *p
}

#[trace]
#[no_mangle]
pub extern "C" fn functrace_shapes_add(a: i32, b: i32) -> i32 {
    a + b
}

#[trace]
fn gives_up() -> ! {
    panic!("never returns")
}

#[test]
fn unsafe_extern_and_diverging_functions() {
    let ((), lines) = tree(|| {
        let byte = 7u8;
        assert_eq!(unsafe { read(&byte) }, 7);
        assert_eq!(functrace_shapes_add(2, 3), 5);
        assert!(std::panic::catch_unwind(|| gives_up()).is_err());
    });
    expect(
        &lines,
        &[
            "    ->shapes::read",
            "    <-shapes::read *",
            "    ->shapes::functrace_shapes_add",
            "    <-shapes::functrace_shapes_add *",
            "    ->shapes::gives_up",
            "    <-shapes::gives_up * (panicked)",
        ],
    );
}

// ---- traits: default methods, native async fn, #[async_trait] in either order ----

#[trace]
trait Shape {
    fn area(&self) -> f64;

    fn twice(&self) -> f64 {
        2.0 * self.area()
    }

    async fn described(&self) -> String {
        format!("area {}", self.area())
    }
}

struct Square(f64);

#[trace]
impl Shape for Square {
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}

#[test]
fn trait_default_and_async_methods() {
    let (text, lines) = tree(|| {
        assert_eq!(Square(2.0).twice(), 8.0);
        block_on(Square(1.0).described())
    });
    assert_eq!(text, "area 1");
    expect(
        &lines,
        &[
            "    ->shapes::Shape::twice",
            "        -><shapes::Square as Shape>::area",
            "        <-<shapes::Square as Shape>::area *",
            "    <-shapes::Shape::twice *",
            "    ->shapes::Shape::described",
            "        -><shapes::Square as Shape>::area",
            "        <-<shapes::Square as Shape>::area *",
            "    <-shapes::Shape::described *",
        ],
    );
}

#[async_trait::async_trait]
trait Greeter {
    async fn greet(&self, name: &str) -> String;
}

struct English;
struct French;

#[trace(args)]
#[async_trait::async_trait]
impl Greeter for English {
    async fn greet(&self, name: &str) -> String {
        tokio::task::yield_now().await;
        format!("hello {name}")
    }
}

#[async_trait::async_trait]
#[trace(args)]
impl Greeter for French {
    async fn greet(&self, name: &str) -> String {
        tokio::task::yield_now().await;
        format!("bonjour {name}")
    }
}

#[test]
fn async_trait_in_either_order() {
    let (greetings, lines) =
        tree(|| block_on(async { (English.greet("ann").await, French.greet("bob").await) }));
    assert_eq!(greetings, ("hello ann".into(), "bonjour bob".into()));
    expect(
        &lines,
        &[
            "    -><shapes::English as Greeter>::greet(name = \"ann\")",
            "    <-<shapes::English as Greeter>::greet *",
            "    -><shapes::French as Greeter>::greet(name = \"bob\")",
            "    <-<shapes::French as Greeter>::greet *",
        ],
    );
}

// ---- an inline mod: fns, impls and traits inside, nested mods, what is left alone ----

#[trace]
mod inventory {
    pub struct Shelf(pub Vec<u32>);

    impl Shelf {
        pub fn count(&self) -> usize {
            self.0.len()
        }
    }

    pub fn stock(shelf: &Shelf) -> usize {
        helper() + shelf.count()
    }

    fn helper() -> usize {
        0
    }

    #[functrace::trace(skip)]
    pub fn quiet() -> usize {
        helper()
    }

    pub const fn capacity() -> usize {
        10
    }

    extern "C" {
        pub fn abs(x: i32) -> i32;
    }

    macro_rules! generated {
        () => {
            pub fn generated() -> u8 {
                1
            }
        };
    }
    generated!();

    #[trace(ret)]
    pub mod audit {
        pub fn check(n: usize) -> bool {
            n < super::capacity()
        }
    }
}

#[test]
fn inline_mod_traces_everything_inside_but_what_it_cannot() {
    let ((), lines) = tree(|| {
        let shelf = inventory::Shelf(vec![1, 2]);
        assert_eq!(inventory::stock(&shelf), 2);
        assert_eq!(inventory::quiet(), 0);
        assert_eq!(inventory::capacity(), 10);
        assert_eq!(unsafe { inventory::abs(-3) }, 3);
        assert_eq!(inventory::generated(), 1);
        assert!(inventory::audit::check(2));
    });
    expect(
        &lines,
        &[
            "    ->shapes::inventory::stock",
            "        ->shapes::inventory::helper",
            "        <-shapes::inventory::helper *",
            "        ->shapes::inventory::Shelf::count",
            "        <-shapes::inventory::Shelf::count *",
            "    <-shapes::inventory::stock *",
            "    ->shapes::inventory::helper",
            "    <-shapes::inventory::helper *",
            "    ->shapes::inventory::audit::check",
            "    <-shapes::inventory::audit::check * = true",
        ],
    );
}

// ---- options ----

#[trace(args, ret)]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[trace(args(path), name = "load config")]
fn load(path: &str, retries: u8) -> Result<String, String> {
    let _ = retries;
    parse(path)
}

#[trace(args, err)]
fn parse(text: &str) -> Result<String, String> {
    text.strip_suffix(".toml")
        .map(str::to_owned)
        .ok_or_else(|| format!("not toml: {text}"))
}

#[trace(args, skip(secret))]
fn login(user: &str, secret: &str) -> bool {
    !user.is_empty() && !secret.is_empty()
}

#[trace(ret, err)]
async fn fetch(id: u32) -> Result<u32, String> {
    tokio::task::yield_now().await;
    if id == 0 {
        return Err("no such id".into());
    }
    Ok(id * 10)
}

#[trace(args)]
async fn fetch_all(ids: Vec<u32>) -> Vec<Result<u32, String>> {
    let mut all = Vec::new();
    for id in ids {
        all.push(fetch(id).await);
    }
    all
}

#[test]
fn options_show_arguments_and_results() {
    let ((), lines) = tree(|| {
        assert_eq!(add(1, 2), 3);
        assert!(load("app.toml", 3).is_ok());
        assert!(parse("app.yaml").is_err());
        assert!(login("ann", "hunter2"));
        let all = block_on(fetch_all(vec![2, 0]));
        assert_eq!(all, [Ok(20), Err("no such id".to_owned())]);
    });
    expect(
        &lines,
        &[
            "    ->shapes::add(a = 1, b = 2)",
            "    <-shapes::add * = 3",
            "    ->load config(path = \"app.toml\")",
            "        ->shapes::parse(text = \"app.toml\")",
            "        <-shapes::parse *",
            "    <-load config *",
            "    ->shapes::parse(text = \"app.yaml\")",
            "    <-shapes::parse * Err(\"not toml: app.yaml\")",
            "    ->shapes::login(user = \"ann\")",
            "    <-shapes::login *",
            "    ->shapes::fetch_all(ids = [2, 0])",
            "        ->shapes::fetch",
            "        <-shapes::fetch * = 20",
            "        ->shapes::fetch",
            "        <-shapes::fetch * Err(\"no such id\")",
            "    <-shapes::fetch_all *",
        ],
    );
}
