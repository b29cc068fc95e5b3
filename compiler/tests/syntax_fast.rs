//! The parser's fast path (hand-written, `compiler/src/parser/fast/`) and the
//! recovering chumsky grammar keep each other honest: whenever the fast path
//! returns a tree, the grammar parses the same text without a syntax error
//! into the same tree (spans included); and on every error-free file of the
//! repository and the conformance suites, and on generated pipelines, the
//! fast path does not give up (else valid files would silently lose its
//! speed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aos_compiler::parser::both_parsers;
use aos_compiler::testkit::testgen;
use proptest::prelude::*;

/// `Err` with what differs when the fast path returned a tree the grammar
/// would not have; `Ok(true)` when the fast path gave an (identical) tree.
fn agree(text: &str) -> Result<bool, String> {
    let (fast, grammar, diags) = both_parsers(text);
    let Some(fast) = fast else { return Ok(false) };
    if !diags.is_empty() {
        return Err(format!("the fast path accepted a text the grammar rejects: {:?}", diags.first()));
    }
    if fast != grammar {
        let (a, b) = (format!("{fast:#?}"), format!("{grammar:#?}"));
        let at = a.lines().zip(b.lines()).position(|(x, y)| x != y).unwrap_or(0);
        let near = |s: &str| s.lines().skip(at.saturating_sub(8)).take(16).collect::<Vec<_>>().join("\n");
        return Err(format!("the trees differ at line {at}:\n--- fast\n{}\n--- grammar\n{}", near(&a), near(&b)));
    }
    Ok(true)
}

#[test]
fn fast_path_builds_the_grammars_tree_on_every_file() {
    let mut failures = Vec::new();
    let mut fast = 0;
    for path in common::all_sources() {
        let text = common::read(&path);
        match agree(&text) {
            Ok(true) => fast += 1,
            Ok(false) => {
                let (_, _, diags) = both_parsers(&text);
                if diags.is_empty() {
                    failures.push(format!("{}: the grammar accepts it but the fast path gave up", common::display(&path)));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", common::display(&path))),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(fast > 100, "only {fast} files took the fast path");
}

#[test]
fn fast_path_takes_the_generated_pipelines() {
    for text in [testgen::pipeline(300), testgen::checked_pipeline(600)] {
        assert_eq!(agree(&text), Ok(true));
    }
}

/// Places where the grammar backtracks over a valid text: the fast path
/// either gives up or builds the grammar's tree.
#[test]
fn fast_path_agrees_where_the_grammar_backtracks() {
    let cases = [
        // `agent` is a name unless a role and `(` follow it.
        "workflow w() { a: agent b: 1 }",
        "workflow w() { a: agent x(\"p\") }",
        "workflow w(agent: Int) { step s = f(agent) }",
        // An operator keyword as the next attribute's key.
        "workflow w() { a: x and: 1, or: 2 }",
        // `step:` and `return:` as header attributes.
        "workflow w() { step: 1\n return: 2 }",
        // Named and positional arguments, keywords as names.
        "workflow w() { step s = t.f(when: 1, x, in: [1, 2,]) { when: a ?? b == c } return s }",
        "policy p { deny when step.kind == llm and not tool.effect != read }",
        "tool a.b(x: List<Int>?, y: { a: Int, b: String? } = {a: 1}) -> { z: Int }\nworkflow w() -> Int { return 1 }",
        "workflow w() { step s = for x in xs => { step t = f(x) return t } step u = for y in s => g(y) { retry: 1 } }",
        "test \"t\" { given llm r replies \"x\"\n given tool a.b fails \"e\"\n given llm r calls a.b(x: 1)\n run w()\n approve s\n deny s\n expect output == 1\n expect ran s }",
        "workflow w() { x: -(-1)[0].a[1], y: \"a{b.c}d{\"e{f}\"}\", z: $0.50 + 1 }",
        "workflow w() { x: 99999999999999999999 }",
        "workflow w() { x: a < b < c }",
        "workflow w() { step s = (f()) }",
        "workflow w() { x: 5min }",
    ];
    for text in cases {
        assert!(agree(text).is_ok(), "{text}: {:?}", agree(text));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_agrees_on_mutated_files(
        file in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<usize>()), 1..4),
    ) {
        let corpus = common::mutation_corpus();
        let text = common::mutate(file.get::<String>(&corpus), &edits);
        let verdict = agree(&text);
        prop_assert!(verdict.is_ok(), "{text}\n{verdict:?}");
    }

    #[test]
    fn fast_path_agrees_on_token_soup(pieces in prop::collection::vec(0..common::PIECES.len(), 0..60)) {
        let text: String = pieces.iter().map(|&i| common::PIECES[i]).collect::<Vec<_>>().join(" ");
        let verdict = agree(&text);
        prop_assert!(verdict.is_ok(), "{text}\n{verdict:?}");
    }
}
