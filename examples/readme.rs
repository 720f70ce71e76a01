//! The Rust snippets of the READMEs, each in a setting where it compiles: `cargo test` builds
//! this example, and `tests/readme.rs` checks that every snippet is here, line for line
//! (indentation aside). A snippet changed in a README without its copy here fails that test.
//! Nothing runs: `main` is empty.
// Snippets define what they show, not what is used; they keep their README layout.
#![allow(dead_code, unused_variables)]

/// README.md and functrace/README.md: use it in your crate.
#[rustfmt::skip]
mod use_it {
    use functrace::trace;

    #[trace]
    fn d() {}

    #[trace]
    async fn fetch(id: u64) -> Result<u64, Error> {
        let row = db(id).await?;
        Ok(row)
    }

    #[derive(Debug)]
    struct Error;

    async fn db(id: u64) -> Result<u64, Error> {
        Ok(id)
    }
}

/// README.md and functrace/README.md: branches of a `join!`.
#[rustfmt::skip]
mod branches {
    use functrace::trace;
    use tokio::task::yield_now;

    #[trace(args)] async fn leaf(n: u32) { yield_now().await }
    #[trace(args)] async fn mid(n: u32) { leaf(n).await }
    #[trace] async fn top() { tokio::join!(mid(1), mid(2)); }
}

/// README.md and functrace/README.md: options.
#[rustfmt::skip]
mod options {
    use functrace::trace;

    #[trace(args, skip(secret), err)]
    fn login(user: &str, secret: &str) -> Result<Session, AuthError> { verify(user, secret) }

    struct Session;

    #[derive(Debug)]
    struct AuthError;

    fn verify(_user: &str, secret: &str) -> Result<Session, AuthError> {
        if secret.is_empty() {
            Err(AuthError)
        } else {
            Ok(Session)
        }
    }
}

/// functrace/README.md: where the output goes.
#[rustfmt::skip]
mod outputs {
    fn install() -> Result<(), Box<dyn std::error::Error>> {
        use functrace::{Builder, Output};

        Builder::from_env().output(Output::Stdout).install()?;
        Builder::new().output(Output::File("trace.log".into())).install()?;
        Builder::new().output(Output::Buffered(Box::new(Output::File("trace.log".into())))).install()?;
        Builder::new().enabled(false).install()?;              // mute
        Builder::from_env().filter("myapp=on,myapp::db=off")?.install()?;  // Err names a bad directive
        let memory = functrace::MemorySink::new();             // for tests: memory.lines()
        Builder::new().output(Output::Memory(memory.clone())).install()?;
        Ok(())
    }
}

/// functrace/README.md: what `#[trace]` goes on.
#[rustfmt::skip]
mod items {
    use functrace::trace;

    #[trace]
    fn longest<'a>(a: &'a str, b: &'a str) -> &'a str { if a.len() >= b.len() { a } else { b } }

    struct Stack<T> {
        items: Vec<T>,
    }

    #[trace]
    impl<T: Clone> Stack<T> {
        fn push(&mut self, item: T) { self.items.push(item) }   // ->app::Stack<T>::push
        #[trace(skip)]
        fn len(&self) -> usize { self.items.len() }             // not traced
        const fn capacity() -> usize { 64 }                     // left alone: const
    }

    #[trace]
    trait Shape {
        fn area(&self) -> f64;
        fn twice(&self) -> f64 { 2.0 * self.area() }           // ->app::Shape::twice
    }

    #[trace]
    mod billing {
        pub fn invoice() {}                                     // ->app::billing::invoice
        #[trace(ret)]
        pub mod tax { pub fn rate() -> f64 { 0.2 } }            // <-app::billing::tax::rate 90ns = 0.2
    }
}

/// cargo-functrace/README.md: what `cargo functrace add` leaves.
#[rustfmt::skip]
mod annotated {
    struct A;

    /// Docs.
    #[inline]
    #[functrace::trace]
    pub fn a() {}

    impl A { #[functrace::trace] fn b() {} }
}

/// README.md and functrace-mesh/README.md: across services.
#[rustfmt::skip]
mod mesh {
    use axum::routing::get;
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::client::legacy::{connect::HttpConnector, Client};

    async fn order() -> &'static str {
        "order"
    }

    async fn service(
        listener: tokio::net::TcpListener,
        hyper_client: Client<HttpConnector, Full<Bytes>>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        use functrace_mesh::{export::Reporter, layer::Tracing};

        let reporter = Reporter::builder("orders").json_lines("spans.jsonl").build()?; // or .collector(url)
        let _spans = reporter.install();          // traced calls inside a sampled trace become local spans;
                                                   // held to the end of main: its drop writes the last spans
        let tracing = Tracing::new("orders").reporter(reporter.clone()).sample_rate(1.0);

        // Client: the current context's child goes out in B3 headers, a CLIENT span is recorded.
        let client = tower::ServiceBuilder::new().layer(tracing.client()).service(hyper_client);
        // Server: B3 in, the handler runs under the caller's context, a SERVER span out (with the
        // `axum` feature, named by the route: `get /orders/{id}`).
        let app = axum::Router::new().route("/orders/{id}", get(order)).layer(tracing.server());
        axum::serve(listener, app).await?;
        // tonic: Server::builder().layer(tracing.server()); ServiceBuilder::new().layer(tracing.client()).service(channel)
        // Any other client: functrace_mesh::layer::inject(request.headers_mut());
        drop(client);
        Ok(())
    }
}

fn main() {}
