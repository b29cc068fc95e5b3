//! Lex and parse arbitrary UTF-8: no input may panic, overflow the stack or
//! hang, and every diagnostic must point into the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (_, diags) = aos_compiler::parse(text, aos_compiler::FileId(0));
    for d in diags {
        assert!(d.primary.start <= d.primary.end && d.primary.end as usize <= text.len());
    }
});
