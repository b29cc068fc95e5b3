//! What several test files of the compiler share: the `.aos` files of the
//! repository and of the conformance suites, and random edits of them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use aos_compiler::FileId;
use aos_compiler::lexer::lex;

/// The repository root (the parent of `compiler/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("compiler/ has a parent").to_path_buf()
}

/// The shared conformance suite: `$AOS_SHARED/conformance` when set (as in
/// `.ci/run`), else `../shared/conformance` from the repository root.
pub fn conformance_dir() -> PathBuf {
    let shared = std::env::var_os("AOS_SHARED").map_or_else(|| repo_root().join("../shared"), PathBuf::from);
    shared.join("conformance")
}

/// Every `.aos` file under `dir`, recursively, sorted; none when `dir` is
/// missing.
pub fn aos_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else { continue };
        for entry in entries {
            let path = entry.expect("readable directory entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                // Build output, run state, packages and fuzzing inputs are
                // not sources.
                let skipped = ["target", "node_modules", "corpus", "artifacts"];
                if !skipped.contains(&name) && !name.starts_with('.') {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "aos") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Every `.aos` file of the repository (examples, standard library, tests,
/// editor fixtures, …) and of the conformance suite.
pub fn all_sources() -> Vec<PathBuf> {
    let conformance = conformance_dir();
    assert!(
        conformance.is_dir(),
        "the conformance suite is expected at {} (set AOS_SHARED to the shared folder)",
        conformance.display()
    );
    let mut files = aos_files_under(&repo_root());
    assert!(
        files.iter().any(|f| f.ends_with("examples/hello.aos")),
        "the repository's own files should be found under {}",
        repo_root().display()
    );
    files.extend(aos_files_under(&conformance));
    files
}

/// A path as shown in a failure: relative to the repository when inside it.
pub fn display(path: &Path) -> String {
    let root = repo_root();
    path.strip_prefix(&root).unwrap_or(path).display().to_string()
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The texts that random edits start from: the conformance cases, the
/// examples and the syntax fixtures.
pub fn mutation_corpus() -> Vec<String> {
    let root = repo_root();
    let mut out = Vec::new();
    for dir in ["../shared/conformance/valid", "../shared/conformance/errors", "examples", "compiler/tests/ui/syntax"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "aos") {
                out.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    assert!(!out.is_empty());
    out.sort();
    out
}

/// Pieces of source worth inserting: every token kind's text and a few
/// string and comment openers.
pub const PIECES: &[&str] = &[
    "(", ")", "[", "]", "{", "}", ",", ":", ".", "=", "=>", "->", "==", "<", ">=", "??", "?", "-", "\"", "\"\"\"",
    "{", "\\", "/*", "*/", "//", "///", "step", "workflow", "return", "for", "in", "llm", "when", "and", "not",
    "x", "a.b", "42", "1.5", "30s", "$0.5", "$1/M", "\n", " ", "é", "\u{0}",
];

/// Applies edits (token index, operation, piece) at the token boundaries of
/// `text`: deletes a token, duplicates it, or inserts one of [`PIECES`].
pub fn mutate(text: &str, edits: &[(usize, u8, usize)]) -> String {
    let lexed = lex(text, FileId(0));
    let mut cuts: Vec<(usize, usize)> = lexed.tokens.iter().map(|(_, s)| (s.start as usize, s.end as usize)).collect();
    cuts.dedup();
    let mut out = text.to_string();
    // Apply from the end so earlier offsets stay valid.
    let mut edits: Vec<_> = edits.iter().filter_map(|&(i, op, p)| cuts.get(i % cuts.len().max(1)).map(|&c| (c, op, p))).collect();
    edits.sort_by(|a, b| b.0.cmp(&a.0));
    edits.dedup_by_key(|e| e.0);
    for ((start, end), op, piece) in edits {
        if end > out.len() || !out.is_char_boundary(start) || !out.is_char_boundary(end) {
            continue;
        }
        match op % 3 {
            0 => out.replace_range(start..end, ""),
            1 => {
                let dup = out[start..end].to_string();
                out.insert_str(end, &dup);
            }
            _ => out.insert_str(start, PIECES[piece % PIECES.len()]),
        }
    }
    out
}
