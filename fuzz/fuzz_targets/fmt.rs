//! The format∘parse round trip: a file that formats must format to a fixed
//! point (formatting the output changes nothing), and the output must parse
//! without syntax errors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(once) = aos_compiler::format(text) else { return };
    let (_, diags) = aos_compiler::parse(&once, aos_compiler::FileId(0));
    assert!(!diags.iter().any(aos_compiler::Diagnostic::is_error), "formatted output does not parse:\n{once}\n{diags:?}");
    let twice = aos_compiler::format(&once).expect("formatted output formats");
    assert_eq!(once, twice, "formatting is not idempotent");
});
