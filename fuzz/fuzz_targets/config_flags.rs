//! The sidecar's command line: never panics; flags that parse and make a valid config print
//! as TOML that reads back equal, and make their routes.
//!
//! The input is the arguments, separated by NUL bytes. `--config` is left out: it would read
//! files named by the fuzzer.
#![no_main]

use clap::Parser;
use functrace_sidecar::cli::Flags;
use functrace_sidecar::{Config, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let args = std::iter::once("functrace-sidecar").chain(text.split('\0'));
    let Ok(flags) = Flags::try_parse_from(args) else {
        return;
    };
    if flags.config.is_some() || flags.command.is_some() {
        return;
    }
    let Ok(config) = flags.effective_config() else {
        return;
    };
    let printed = config.to_toml();
    let again = Config::from_toml(&printed).unwrap_or_else(|e| panic!("{printed}\n{e}"));
    assert_eq!(again, config, "{printed}");
    drop(Settings::new(config));
});
