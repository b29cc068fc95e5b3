//! `parse` never panics: on random text, and on the conformance files and
//! examples with tokens deleted, duplicated or inserted at random. (The
//! cargo-fuzz target `fuzz/` does the same, longer, with coverage guidance.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aos_compiler::{FileId, parse};
use common::{PIECES, mutate};
use proptest::prelude::*;

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
        let corpus = common::mutation_corpus();
        let text = file.get::<String>(&corpus);
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
