//! One snapshot per fixture `tests/ui/check/*.aos`: the source and the
//! diagnostics `check` gives for it, rendered for people.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use aos_compiler::check::{FileLoader, check};
use aos_compiler::diagnostic::{Color, render_human};

/// Serves `use`d files from the fixture folder, and nothing else.
struct FixtureLoader;

impl FileLoader for FixtureLoader {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/check").join(path))
    }
}

#[test]
fn check_fixtures() {
    insta::glob!("ui/check", "*.aos", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let analysis = check(&name, &text, &FixtureLoader);
        let rendered = render_human(&analysis.diagnostics, &analysis.sources, Color::Never);
        // Named after the fixture whatever else matches the glob.
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::with_settings!({ snapshot_suffix => stem }, {
            insta::assert_snapshot!(format!("----- SOURCE\n{text}----- DIAGNOSTICS\n{rendered}"));
        });
    });
}
