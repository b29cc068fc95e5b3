//! The pages generated from the compiler's tables stay in step with them:
//! `docs/diagnostics.md` from the diagnostic catalog, the attribute
//! reference of `docs/language.md` from the attribute table. Run with
//! `AOS_BLESS=1` to rewrite them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

const BEGIN: &str = "<!-- attributes:begin (generated from compiler/src/attrs.rs) -->\n";
const END: &str = "<!-- attributes:end -->\n";

fn docs(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs").join(name)
}

fn bless() -> bool {
    std::env::var_os("AOS_BLESS").is_some()
}

#[test]
fn diagnostics_page_is_generated_from_the_catalog() {
    let path = docs("diagnostics.md");
    let want = aos_compiler::codes::markdown();
    if bless() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(have == want, "docs/diagnostics.md is stale: run `AOS_BLESS=1 cargo test -p aos-compiler --test generated_docs`");
}

#[test]
fn attribute_reference_is_generated_from_the_table() {
    let path = docs("language.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find(BEGIN).expect("docs/language.md has the attributes:begin marker") + BEGIN.len();
    let end = text[start..].find(END).expect("docs/language.md has the attributes:end marker") + start;
    let want = aos_compiler::attrs::reference_markdown();
    if bless() {
        let new = format!("{}{}{}", &text[..start], want, &text[end..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert!(
        text[start..end] == want,
        "the attribute reference of docs/language.md is stale: run `AOS_BLESS=1 cargo test -p aos-compiler --test generated_docs`"
    );
}

#[test]
fn every_code_the_checker_reports_is_in_the_catalog() {
    // Codes appear in the sources only as `Code::E0201`; a bare string
    // code would escape the catalog.
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("codes.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let bare = text.match_indices("Diagnostic::error(\"").chain(text.match_indices("Diagnostic::warning(\"")).next();
                assert!(bare.is_none(), "{}: a diagnostic with a bare string code at byte {}; use `Code::…`", path.display(), bare.map_or(0, |(i, _)| i));
            }
        }
    }
}
