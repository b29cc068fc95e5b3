//! Every file of the conformance suite, the examples and the standard
//! library through `parse`: the E0001 cases report E0001 with the primary
//! span on each line marked `// error: E0001` (and nowhere else); every
//! other file parses without a syntax error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use aos_compiler::span::LineIndex;
use aos_compiler::{FileId, parse};

fn aos_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            aos_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "aos") {
            out.push(p);
        }
    }
}

/// The lines (1-based) a file marks with `// error: E0001`, and whether its
/// header expects E0001 at all.
fn expectations(text: &str) -> (Vec<usize>, bool) {
    let marked = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.split("//").skip(1).any(|c| c.trim_start().strip_prefix("error:").is_some_and(|r| r.contains("E0001"))))
        .map(|(i, _)| i + 1)
        .collect();
    let header = text.lines().take(10).any(|l| l.trim_start().starts_with("// expect:") && l.contains("E0001"));
    (marked, header)
}

fn check_file(path: &Path, failures: &mut Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let (file, diags) = parse(&text, FileId(0));
    let index = LineIndex::new(&text);
    let lines: Vec<usize> =
        diags.iter().filter(|d| d.code == "E0001").map(|d| index.line_col(&text, d.primary.start as usize).line).collect();
    let (marked, header) = expectations(&text);
    let name = path.display();
    if marked.is_empty() && !header {
        if !lines.is_empty() {
            failures.push(format!("{name}: unexpected E0001 on lines {lines:?}: {:?}", diags.iter().map(|d| &d.message).collect::<Vec<_>>()));
        }
        if file.items.is_empty() {
            failures.push(format!("{name}: no items parsed"));
        }
        return;
    }
    for m in &marked {
        if !lines.contains(m) {
            failures.push(format!("{name}: no E0001 on line {m} (got lines {lines:?})"));
        }
    }
    for l in &lines {
        if !marked.contains(l) {
            failures.push(format!("{name}: E0001 on unmarked line {l}"));
        }
    }
    if header && lines.is_empty() {
        failures.push(format!("{name}: expects E0001, got none"));
    }
}

#[test]
fn conformance_syntax_expectations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    aos_files(&root.join("../shared/conformance"), &mut files);
    let suite = files.len();
    aos_files(&root.join("examples"), &mut files);
    aos_files(&root.join("stdlib"), &mut files);
    assert!(files.len() > suite, "examples and stdlib must be found");
    if suite == 0 {
        eprintln!("note: ../shared/conformance not found; only examples and stdlib were parsed");
    }
    let mut failures = Vec::new();
    for f in &files {
        check_file(f, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_recovery_case_reports_both_errors() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/errors/syntax_recovers_twice.aos");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("note: {} not found", path.display());
        return;
    };
    let (file, diags) = parse(&text, FileId(0));
    assert_eq!(diags.len(), 2, "{diags:#?}");
    // The partial tree keeps the workflow and its good step.
    let aos_compiler::ast::ItemKind::Workflow(w) = &file.items.last().unwrap().kind else { panic!("no workflow") };
    assert!(w.steps.iter().any(|s| s.name.name == "ok"));
    assert!(w.ret_expr.is_some());
}
