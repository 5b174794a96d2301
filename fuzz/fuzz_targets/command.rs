//! Purpose: fuzz the comment-command parser (any commenter's text): the input's first line is the command prefix
//! (at most 32 bytes, as a config would set it), the rest is the comment body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (prefix, body) = text.split_once('\n').unwrap_or(("/", text));
    if prefix.len() > 32 {
        return;
    }
    let _ = boomerang::trigger::command::parse_comment(body, prefix);
});
