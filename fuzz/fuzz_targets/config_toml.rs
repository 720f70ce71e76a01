//! The sidecar's TOML config: never panics; a valid config prints as TOML that reads back
//! equal and valid, and makes its routes.
#![no_main]

use functrace_sidecar::{Config, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text) else {
        return;
    };
    if config.validate().is_err() {
        return;
    }
    let printed = config.to_toml();
    let again = Config::from_toml(&printed).unwrap_or_else(|e| panic!("{printed}\n{e}"));
    assert_eq!(again, config, "{printed}");
    again.validate().unwrap();
    drop(Settings::new(config));
});
