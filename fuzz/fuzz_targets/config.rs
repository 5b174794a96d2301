//! Purpose: fuzz the repo config parser (`.github/boomerang.yml`, written by anyone who can open a PR): any bytes
//! must come back as a config or as errors, never a panic, and in bounded memory and time.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = boomerang::spec::parse(text);
    }
});
