//! Purpose: fuzz the translation of webhook payloads into events: the input's first line is the `X-GitHub-Event`
//! name, the rest the JSON body (inputs that are not JSON are skipped, as the server answers them 400 before).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(split) = data.iter().position(|b| *b == b'\n') else {
        return;
    };
    let Ok(event) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&data[split + 1..]) else {
        return;
    };
    let _ = boomerang::webhook::events::parse(event, &body);
});
