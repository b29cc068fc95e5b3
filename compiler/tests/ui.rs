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

/// `check_with` without the program (what `aosc check` runs without `--cost`
/// or `--emit-ir`) counts prompts in bytes unless a finding quotes a cost
/// figure: its findings must be exactly `check`'s, on every fixture and on
/// the generated pipeline of the benchmarks.
#[test]
fn diagnostics_only_mode_reports_what_check_reports() {
    let options = aos_compiler::CheckOptions { program: false };
    let mut compared = 0;
    insta::glob!("ui/check", "*.aos", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let full = check(&name, &text, &FixtureLoader);
        let fast = aos_compiler::check_with(&name, &text, &FixtureLoader, options);
        assert_eq!(
            render_human(&fast.diagnostics, &fast.sources, Color::Never),
            render_human(&full.diagnostics, &full.sources, Color::Never),
            "{name}"
        );
        assert!(fast.program.is_none(), "{name}");
        compared += 1;
    });
    assert!(compared > 30, "only {compared} fixtures");
    // Mixed OpenAI (o200k) and Anthropic roles, a budget that holds: no
    // finding, so the fast mode never needed the BPE.
    let text = aos_compiler::testkit::testgen::checked_pipeline(120);
    let full = check("gen.aos", &text, &FixtureLoader);
    let fast = aos_compiler::check_with("gen.aos", &text, &FixtureLoader, options);
    assert!(full.diagnostics.is_empty() && fast.diagnostics.is_empty(), "{:?}", fast.diagnostics);
    assert!(full.cost.exact && full.program.is_some());
    assert!(!fast.cost.exact && fast.program.is_none());
    // The byte bounds are never below the exact ones.
    for (wf, exact) in &full.cost.workflows {
        let loose = &fast.cost.workflows[wf];
        assert!(loose.total.unwrap() >= exact.total.unwrap(), "{wf}");
    }
}
