//! The run-time filter: `path=on|off` directives, the longest matching path wins, a
//! filtered-out call prints nothing and adds no depth, and a new filter is applied to call
//! sites that already decided.
#![cfg(feature = "trace")]

mod support;

use functrace::{Builder, MemorySink, Output};
use support::mask;

mod app {
    use functrace::trace;

    #[trace]
    pub fn handle() {
        db::query();
        render();
    }

    #[trace]
    pub fn render() {}

    pub mod db {
        use functrace::trace;

        #[trace]
        pub fn query() {
            pool();
        }

        #[trace]
        fn pool() {
            super::super::util::log();
        }
    }
}

mod util {
    #[functrace::trace]
    pub fn log() {}
}

/// The masked lines `app::handle()` prints under `filter`.
fn under(filter: &str) -> Vec<String> {
    let memory = MemorySink::new();
    Builder::new()
        .output(Output::Memory(memory.clone()))
        .filter(filter)
        .unwrap()
        .install()
        .unwrap();
    app::handle();
    Builder::new().output(Output::Null).install().unwrap();
    memory
        .lines()
        .iter()
        .map(|l| mask(l).split_once(':').unwrap().1.replace("filter::", ""))
        .collect()
}

#[test]
fn the_longest_path_decides_and_filtered_calls_add_no_depth() {
    // Each filter in turn, so also each decision taken again by call sites that decided.
    assert_eq!(
        under("filter::app=on,filter::app::db=off,off"),
        [
            "    ->app::handle",
            "        ->app::render",
            "        <-app::render *",
            "    <-app::handle *",
        ]
    );
    assert_eq!(
        under("filter::app::db=off"),
        [
            "    ->app::handle",
            // `log` is under `db::pool`, which is filtered out: one level up twice.
            "        ->util::log",
            "        <-util::log *",
            "        ->app::render",
            "        <-app::render *",
            "    <-app::handle *",
        ]
    );
    assert_eq!(
        under("off,filter::app::db::query=on,filter::util=on"),
        [
            "    ->app::db::query",
            "        ->util::log",
            "        <-util::log *",
            "    <-app::db::query *",
        ]
    );
    assert_eq!(under("off"), Vec::<String>::new());
    assert_eq!(
        under("filter::app=off,filter::app::render=on"),
        [
            "    ->util::log",
            "    <-util::log *",
            "    ->app::render",
            "    <-app::render *",
        ]
    );
}

#[test]
fn a_bad_directive_is_named() {
    let error = Builder::new()
        .filter("filter::app=on,filter::util=sometimes")
        .unwrap_err();
    assert!(
        error.to_string().contains("`filter::util=sometimes`"),
        "{error}"
    );
}
