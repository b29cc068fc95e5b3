//! `parse` never panics: on random text, and on the conformance files and
//! examples with tokens deleted, duplicated or inserted at random. (The
//! cargo-fuzz target `fuzz/` does the same, longer, with coverage guidance.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use aos_compiler::lexer::lex;
use aos_compiler::{FileId, parse};
use proptest::prelude::*;

fn corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    for dir in ["../shared/conformance/valid", "../shared/conformance/errors", "examples", "tests/../compiler/tests/ui/syntax"] {
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
const PIECES: &[&str] = &[
    "(", ")", "[", "]", "{", "}", ",", ":", ".", "=", "=>", "->", "==", "<", ">=", "??", "?", "-", "\"", "\"\"\"",
    "{", "\\", "/*", "*/", "//", "///", "step", "workflow", "return", "for", "in", "llm", "when", "and", "not",
    "x", "a.b", "42", "1.5", "30s", "$0.5", "$1/M", "\n", " ", "é", "\u{0}",
];

/// Applies edits to the token boundaries of `text`.
fn mutate(text: &str, edits: &[(usize, u8, usize)]) -> String {
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse(&text, FileId(0));
    }

    #[test]
    fn random_token_soup_never_panics(pieces in prop::collection::vec(0..PIECES.len(), 0..80)) {
        let text: String = pieces.iter().map(|&i| PIECES[i]).collect::<Vec<_>>().join(" ");
        let _ = parse(&text, FileId(0));
    }

    #[test]
    fn mutated_files_never_panic(
        file in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<usize>()), 1..6),
    ) {
        let corpus = corpus();
        let text = file.get(&corpus);
        let mutated = mutate(text, &edits);
        let (_, diags) = parse(&mutated, FileId(0));
        // Every diagnostic points into the text.
        for d in diags {
            prop_assert!(d.primary.end as usize <= mutated.len());
            prop_assert!(d.primary.start <= d.primary.end);
        }
    }
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let text = format!("workflow w() {{ x: {}1{} }}", "(".repeat(5000), ")".repeat(5000));
    let _ = parse(&text, FileId(0));
    let text = format!("workflow w() {{ x: {} }}", "[".repeat(5000));
    let _ = parse(&text, FileId(0));
    let text = format!("workflow w() {{ x: \"{}\" }}", "{\"".repeat(2000));
    let _ = parse(&text, FileId(0));
    for chain in ["-", "not ", "a.", "a ?? ", "a and ", "a or "] {
        let text = format!("workflow w() {{ x: {}b }}", chain.repeat(20_000));
        let _ = parse(&text, FileId(0));
    }
}
