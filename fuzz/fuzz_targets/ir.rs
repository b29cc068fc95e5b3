//! IR deserialization and verification (`aosc run FILE.json`): arbitrary
//! bytes either fail to deserialize, are refused by `verify`, or are a
//! program that verifies — never a panic, a stack overflow or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(program) = serde_json::from_slice::<aos_compiler::ir::Program>(data) else { return };
    if aos_compiler::verify::verify(&program).is_ok() {
        // A verified program survives a round trip and verifies again.
        let json = serde_json::to_vec(&program).expect("IR serializes");
        let back: aos_compiler::ir::Program = serde_json::from_slice(&json).expect("IR deserializes");
        assert!(aos_compiler::verify::verify(&back).is_ok());
    }
});
