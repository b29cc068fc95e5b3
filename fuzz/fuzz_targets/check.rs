//! Check arbitrary UTF-8 as a program (parse, resolve, types, graph, policy,
//! cost, lowering): no input may panic, overflow the stack or hang, and every
//! diagnostic must point into its file. `use` of a path is refused (the loader
//! serves no file), `use std.*` is served from the embedded stdlib.
#![no_main]

use std::path::Path;

use aos_compiler::check::FileLoader;
use libfuzzer_sys::fuzz_target;

struct NoFiles;

impl FileLoader for NoFiles {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string()))
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let analysis = aos_compiler::check("fuzz.aos", text, &NoFiles);
    for d in &analysis.diagnostics {
        let len = analysis.sources.text(d.file).len();
        assert!(d.primary.start <= d.primary.end && d.primary.end as usize <= len, "{d:?}");
    }
    if let Some(program) = &analysis.program {
        // What the checker lowers is valid IR, and survives JSON.
        let json = serde_json::to_string(program).expect("IR serializes");
        let back: aos_compiler::ir::Program = serde_json::from_str(&json).expect("IR deserializes");
        assert_eq!(&back, program);
    }
});
