//! `grammar/aos.pest` is the normative grammar of the language; the compiler's
//! own parser (`aos_compiler::parse`) is what users run. These tests keep the
//! two honest with each other on whole files:
//!
//! - every `.aos` file of the repository and of the shared conformance suite
//!   gets the same accept/reject verdict from both (the parser "accepts" a
//!   file when it reports no E0001);
//! - the grammar alone gives the conformance suite's expected verdicts;
//! - corner cases and (on demand) mutated files get the same verdict.
//!
//! The snippets that pin down precedence, keywords, strings, literals and
//! separators are in `grammar_snippets.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::pest_grammar::{condition_file, expr_file, pest_accepts, pest_parse, parser_accepts};
use common::{aos_files_under, all_sources, conformance_dir, display, read, repo_root};

/// What a conformance-style file expects from the syntax alone: `// expect:`
/// naming E0001 means the file must be rejected; any other expectation, or
/// none (a helper file such as `valid/uses/types.aos`), means it must parse.
fn expected_to_parse(text: &str) -> bool {
    !text.lines().take(10).any(|line| {
        let line = line.trim_start();
        line.strip_prefix("//")
            .map(str::trim_start)
            .and_then(|rest| rest.strip_prefix("expect:"))
            .is_some_and(|codes| codes.split_whitespace().any(|c| c == "E0001"))
    })
}

fn verdict(accepted: bool) -> &'static str {
    if accepted { "accepts" } else { "rejects" }
}

// ---------------------------------------------------------------------------
// Whole files
// ---------------------------------------------------------------------------

/// The grammar alone gives every conformance case its expected syntax
/// verdict, and accepts every example and standard library file.
#[test]
fn grammar_gives_the_expected_verdict_on_every_case() {
    let root = repo_root();
    let mut files = aos_files_under(&conformance_dir());
    assert!(files.len() >= 40, "the conformance suite should be found at {}", conformance_dir().display());
    files.extend(aos_files_under(&root.join("examples")));
    files.extend(aos_files_under(&root.join("stdlib")));

    let mut wrong = Vec::new();
    for path in &files {
        let text = read(path);
        let expected = expected_to_parse(&text);
        match pest_parse(&text) {
            Ok(_) if expected => {}
            Err(_) if !expected => {}
            Ok(_) => wrong.push(format!("{}: expected a syntax error, the grammar accepts it", display(path))),
            Err(e) => wrong.push(format!("{}: expected to parse, the grammar rejects it:\n{e}", display(path))),
        }
    }
    for w in &wrong {
        eprintln!("{w}\n");
    }
    assert!(wrong.is_empty(), "{} of {} files got the wrong verdict from the grammar", wrong.len(), files.len());
}

/// The pest grammar and the compiler's parser give every `.aos` file of the
/// repository and of the conformance suite the same verdict.
#[test]
fn grammar_and_parser_agree_on_every_file() {
    let files = all_sources();
    let mut disagreements = Vec::new();
    for path in &files {
        let text = read(path);
        let by_grammar = pest_parse(&text);
        let by_parser = parser_accepts(&text);
        if by_grammar.is_ok() != by_parser {
            let mut note = format!(
                "{}: the grammar {} it, the parser {} it",
                display(path),
                verdict(by_grammar.is_ok()),
                verdict(by_parser)
            );
            if let Err(e) = by_grammar {
                note.push_str(&format!("\n  grammar:\n{e}"));
            }
            if !by_parser {
                let (_, diagnostics) = aos_compiler::parse(&text, aos_compiler::FileId(0));
                for d in diagnostics.iter().filter(|d| d.code == "E0001") {
                    note.push_str(&format!("\n  parser: {} at {}..{}", d.message, d.primary.start, d.primary.end));
                }
            }
            disagreements.push(note);
        }
    }
    for d in &disagreements {
        eprintln!("{d}\n");
    }
    assert!(
        disagreements.is_empty(),
        "the grammar and the parser disagree on {} of {} files (listed above)",
        disagreements.len(),
        files.len()
    );
}

/// Corner cases of the language, each a whole file, that both parsers must
/// give the same verdict (the files of the repository rarely reach them).
fn corner_cases() -> Vec<String> {
    let exprs = [
        // precedence and operators
        "a or b and c", "not a == b", "not not a", "a ?? b ?? c == d", "-a.b[0]", "(a < b) == c",
        "a < b < c", "a == b == c", "a == not b", "a ?? not b", "- -a", "--a",
        // calls and postfix
        "f(x).field[0]", "f(x)(y)", "xs[0](y)", "f(a b)", "f(a,)", "f(,)", "f(type: 1, when: 2)",
        "a . b", "x.type", "f(x)[0].y(z)",
        // llm and for in expressions
        "llm executor(\"hi\")", "llm executor(\"a\",)", "llm executor(\"a\", \"b\")",
        "llm executor(prompt: \"a\")", "for x in xs => f(x)", "for x in xs => x", "for x in xs => (f(x))",
        // keywords
        "kind == workflow", "format ?? stepper ?? uses ?? order ?? nothing ?? inner ?? android",
        // lists and records
        "[a, b,]", "[a b]", "[,]", "[]", "{}", "{ a: 1 b: 2 }", "{ a: 1,, }", "{ type: 1, for: 2 }",
        // strings
        r#""tags: {join(tags, ", ")}""#, r#""{ "{ "deep" }" }""#, r#""{}""#, r#""{ }""#, r#""{ /* c */ }""#,
        r#""a } b""#, r#""\{ x \}""#, r#""\q""#, r#""\u0041""#, "\"one\ntwo\"", "\"{ a\n }\"",
        "\"\"\"\n  a\n  {b}\n  \"\"\"", r#""""say "hi"""""#, r#""""""""#, "\"\"\"{ f(\n a) }\"\"\"",
        "\"unterminated", "\"\"\"unterminated\n",
        // numbers, durations, money
        "42", "1_000_000", "1__0_", "9223372036854775807", "9223372036854775808", "0.7", "1.5e3", "2E-6",
        "1.", "1.foo", "250ms", "5m", "5min", "1.5s", "5 s", "42abc", "$0.50", "$12", "$1_000", "$0.000001",
        "$0.1234567", "1e999", "99999999999999999999s", "$99999999999999999999", "$2.50/M", "$0/M", "$2.50 /M", "$2.50/K", "$", "$.5",
    ];
    let conditions = [
        "kind == llm", "tool == \"shell.exec\" and trust < trusted", "not (kind == for)", "kind == and",
        "x == true", "step.for == in", "llm executor(\"x\")", "contains(tool, \"s\")", "risk >= high < x",
        "tool == \"{for}\"", "[for, llm] == x", "{ k: for } == x", "x[for] == y", "f(k: llm) == x", "kind == (llm)",
    ];
    let files = [
        "", "// only a comment", "/* a /* nested */ comment */", "/* unterminated", "/// doc\n//// line\nenum E {}",
        "use std.email", "use std", "use \"./x.aos\"", "use \"{x}.aos\"", "use other.x",
        "type T = { a: Int?, b: List<{ c: String }>? }", "type T = Int??", "type T = Int? ?", "type T = List<List<Int>>", "type T = Map<String>",
        "type T = { type: String }", "enum E { a, b, }", "enum E { a b }", "enum E {}",
        "model m = sim(\"x\")", "model m = sim(name)", "model m = sim(\"{x}\")", "model m = sim(\"x\") { a: 1, }",
        "role r = []", "role r = [a, b,]", "role r = [a b]", "role r = [,]",
        "tool a.b()", "tool single()", "tool a.b(x: Int,) -> { y: Int } { risk: low }",
        "policy p {}", "policy p { require approval when x deny when y }", "policy p { require when x }",
        "policy p { allow when x }", "policy p { deny when x, deny when y }",
        "workflow w() {}", "workflow w(a: Int = 1, b: String?,) -> Int { return a }",
        "workflow w(a: Int b: Int) {}", "workflow w() { budget: }", "workflow w() { budget: $0, risk: low }",
        "workflow w() { step a = f() budget: $0 }", "workflow w() { return 1 step a = f() }",
        "workflow w() { return 1 return 2 }", "workflow w() { return }", "workflow w() { step: 1 }",
        "workflow w() { return: 1, step a = f() { step: 1, return: 2 } }", "model m = sim(\"x\") { step: 1 }",
        "workflow w() { step a = f() { when: x, type: 1 } }", "workflow w() { step = f() }",
        "workflow w() { step b: = f() }", "workflow w() { step b f() }", "workflow w() { step a = \"x\" }",
        "workflow w() { step a = b }", "workflow w() { step a = f(x).y }", "workflow w() { step a = (f(x)) }",
        "workflow w() { step a = for x in xs => llm r(\"{x}\") { max_items: 2 } }",
        "workflow w() { step a = for x in xs => for y in x => f(y) }", "workflow w() { step for = f() }",
        "workflow w() { x: { a: 42abc: 1 } }", "workflow w() { x: { a: 5min: 1 } }",
        "workflow w() { budget: $0.50step a = f() }", "model m = sim(\"x\") { input: $0.15/Moutput: $1/M }",
        "workflow w() { step xs: List<String>= f() }", "workflow w(a: List<Int>= []) {}",
        "// a lone \r does not end a comment }", "workflow w() { x: \"a\rb\" }", "workflow w() {\r\n  x: 1\r\n}\r",
    ];
    let mut cases: Vec<String> = files.iter().map(|f| format!("{f}\n")).collect();
    cases.extend(exprs.iter().map(|e| expr_file(e)));
    cases.extend(conditions.iter().map(|c| condition_file(c)));
    cases
}

/// Corner cases the parser accepts although the grammar, following
/// LANGUAGE.md and docs/language.md, rejects them: parser bugs, written up in
/// docs/grammar-disagreements.md. The list may only shrink: a case that
/// starts agreeing must be taken off.
const PARSER_TOO_LENIENT: &[&str] = &[];

/// Corner cases the parser rejects although the grammar, following
/// LANGUAGE.md and docs/language.md, accepts them: parser bugs, written up in
/// docs/grammar-disagreements.md. The list may only shrink.
const PARSER_TOO_STRICT: &[&str] = &[
    // `>=` right after a type argument is read as the operator `>=`.
    "workflow w() { step xs: List<String>= f() }\n",
    "workflow w(a: List<Int>= []) {}\n",
];

/// Literals the grammar accepts and the parser rightly rejects because their
/// value is out of range, which a grammar cannot express (see the head of
/// grammar/aos.pest).
const OUT_OF_RANGE: &[&str] = &[
    "workflow w() {\n  x: 9223372036854775808\n}\n",
    "workflow w() {\n  x: 1e999\n}\n",
    "workflow w() {\n  x: 99999999999999999999s\n}\n",
    "workflow w() {\n  x: $99999999999999999999\n}\n",
];

/// Both parsers give every corner case the same verdict, except the known
/// disagreements, which must still disagree in the known direction.
#[test]
fn grammar_and_parser_agree_on_corner_cases() {
    let mut unexpected = Vec::new();
    for case in corner_cases() {
        let by_grammar = pest_accepts(&case);
        let by_parser = parser_accepts(&case);
        let expected = if PARSER_TOO_LENIENT.contains(&case.as_str()) {
            Some((false, true))
        } else if PARSER_TOO_STRICT.contains(&case.as_str()) || OUT_OF_RANGE.contains(&case.as_str()) {
            Some((true, false))
        } else {
            None
        };
        match expected {
            None if by_grammar == by_parser => {}
            Some(known) if known == (by_grammar, by_parser) => {}
            None => unexpected.push(format!(
                "the grammar {} and the parser {}:\n{case}",
                verdict(by_grammar),
                verdict(by_parser)
            )),
            Some(_) => unexpected.push(format!(
                "a known disagreement changed (grammar {}, parser {}); update the lists:\n{case}",
                verdict(by_grammar),
                verdict(by_parser)
            )),
        }
    }
    for u in &unexpected {
        eprintln!("{u}");
    }
    assert!(unexpected.is_empty(), "{} corner cases are not as expected (listed above)", unexpected.len());
}

/// The known disagreements are corner cases (a typo in a list above would
/// silently never be checked).
#[test]
fn known_disagreements_are_corner_cases() {
    let cases = corner_cases();
    for known in PARSER_TOO_LENIENT.iter().chain(PARSER_TOO_STRICT).chain(OUT_OF_RANGE) {
        assert!(cases.iter().any(|c| c == known), "not a corner case:\n{known}");
    }
    for known in PARSER_TOO_LENIENT {
        assert!(!pest_accepts(known), "the grammar should reject:\n{known}");
    }
    for known in PARSER_TOO_STRICT.iter().chain(OUT_OF_RANGE) {
        assert!(pest_accepts(known), "the grammar should accept:\n{known}");
    }
}

/// Differential exploration: mutates the files of the repository and of the
/// conformance suite (deleting a few characters, inserting tokens) and
/// requires both parsers to give every mutant the same verdict, apart from
/// literals out of range. Run it with
/// `cargo test -p aos-compiler --test grammar_files -- --ignored --nocapture`
/// (`SEED` and `MUTANTS` vary the run); it found every disagreement in
/// docs/grammar-disagreements.md that the corner cases did not.
#[test]
#[ignore = "exploratory: run on demand, see the doc comment"]
fn mutated_files_get_the_same_verdict() {
    let sources: Vec<String> = all_sources().iter().map(|p| read(p)).collect();
    let pieces = [
        "{", "}", "(", ")", "[", "]", ",", ":", "=", ".", "\"", "\"\"\"", "?", "??", "-", "not ", " and ", "==", "<",
        ">", "step ", "return ", "x", "1", "$1", "5s", "//", "/*", "*/", "\\", "=>", "for ", "llm ", " in ", "\n",
        "when ", "{x}", "->", "List<", "!", "@", "\t", "///", "{{", "}}", "\"{", "}\"", "$0.5", "1_", "_", "e3",
        "/M", "ms", "0", "true", "null", "type ", "enum ", "use ", "{a: 1}", "[x]", "\\{", "\\n", "\"\"", "\r",
    ];
    let env_number = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let mut state = env_number("SEED", 1);
    let mut random = move |n: usize| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(state >> 33).unwrap() % n.max(1)
    };
    let mut disagreements = Vec::new();
    for _ in 0..env_number("MUTANTS", 20_000) {
        let mut text = sources[random(sources.len())].clone();
        for _ in 0..1 + random(2) {
            let mut at = random(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            if random(3) == 0 {
                let mut end = (at + 1 + random(4)).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                text.replace_range(at..end, "");
            } else {
                text.insert_str(at, pieces[random(pieces.len())]);
            }
        }
        let by_grammar = pest_accepts(&text);
        let (_, diagnostics) = aos_compiler::parse(&text, aos_compiler::FileId(0));
        let syntax: Vec<_> = diagnostics.iter().filter(|d| d.code == "E0001").collect();
        let out_of_range = !syntax.is_empty()
            && syntax.iter().all(|d| ["out of range", "too large", "does not fit"].iter().any(|m| d.message.contains(m)));
        if by_grammar != syntax.is_empty() && !(by_grammar && out_of_range) {
            disagreements.push(format!(
                "the grammar {} and the parser {}:\n{text}",
                verdict(by_grammar),
                verdict(syntax.is_empty())
            ));
        }
    }
    disagreements.sort_by_key(String::len);
    for d in disagreements.iter().take(10) {
        eprintln!("{d}\n");
    }
    assert!(disagreements.is_empty(), "{} mutants got different verdicts (the shortest are above)", disagreements.len());
}
