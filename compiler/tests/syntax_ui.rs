//! One snapshot per fixture `tests/ui/syntax/*.aos`: the source and the
//! syntax diagnostics `parse` gives for it, rendered for people. Each
//! fixture shows one kind of syntax error (or how two are recovered from).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aos_compiler::diagnostic::{Color, render_human};
use aos_compiler::{Sources, parse};

#[test]
fn syntax_fixtures() {
    insta::glob!("ui/syntax", "*.aos", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut sources = Sources::new();
        let id = sources.add(name, text.clone());
        let (_, diags) = parse(&text, id);
        assert!(!diags.is_empty(), "a syntax fixture must have a syntax error");
        assert!(diags.iter().all(|d| d.code == "E0001"), "only syntax errors expected");
        let rendered = render_human(&diags, &sources, Color::Never);
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::with_settings!({ snapshot_suffix => stem }, {
            insta::assert_snapshot!(format!("----- SOURCE\n{text}----- DIAGNOSTICS\n{rendered}"));
        });
    });
}
