//! `grammar/aos.pest` is the normative grammar of the language; the compiler's
//! own parser (`aos_compiler::parse`) is what users run. These tests keep the
//! two honest with each other:
//!
//! - every `.aos` file of the repository and of the shared conformance suite
//!   gets the same accept/reject verdict from both (the parser "accepts" a
//!   file when it reports no E0001);
//! - the grammar alone gives the conformance suite's expected verdicts;
//! - small snippets pin down what the grammar says about precedence,
//!   keywords, strings, literals, separators and the forms it must reject.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use pest::Parser;
use pest::iterators::Pair;
use pest_derive::Parser;

/// The pest grammar. The path is relative to this crate's `src/`.
#[derive(Parser)]
#[grammar = "../../grammar/aos.pest"]
struct AosGrammar;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Parses a whole file with the pest grammar; the error is pest's report.
fn pest_parse(text: &str) -> Result<Pair<'_, Rule>, String> {
    AosGrammar::parse(Rule::file, text)
        .map(|mut pairs| pairs.next().expect("`file` yields one pair"))
        .map_err(|e| e.to_string())
}

fn pest_accepts(text: &str) -> bool {
    pest_parse(text).is_ok()
}

/// The real parser's verdict: accepted when it reports no syntax error.
fn parser_accepts(text: &str) -> bool {
    let (_, diagnostics) = aos_compiler::parse(text, aos_compiler::FileId(0));
    !diagnostics.iter().any(|d| d.code == "E0001")
}

/// The repository root (the parent of `compiler/`).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("compiler/ has a parent").to_path_buf()
}

/// The shared conformance suite: `$AOS_SHARED/conformance` when set (as in
/// `.ci/run`), else `../shared/conformance` from the repository root.
fn conformance_dir() -> PathBuf {
    let shared = std::env::var_os("AOS_SHARED").map_or_else(|| repo_root().join("../shared"), PathBuf::from);
    shared.join("conformance")
}

/// Every `.aos` file under `dir`, recursively, sorted; none when `dir` is
/// missing.
fn aos_files_under(dir: &Path) -> Vec<PathBuf> {
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

/// The files both parsers must agree on: every `.aos` file of the repository
/// (examples, standard library, tests, editor fixtures, …) and of the
/// conformance suite.
fn all_sources() -> Vec<PathBuf> {
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

fn display(path: &Path) -> String {
    let root = repo_root();
    path.strip_prefix(&root).unwrap_or(path).display().to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn verdict(accepted: bool) -> &'static str {
    if accepted { "accepts" } else { "rejects" }
}

/// A snippet wrapped as the value of a workflow header attribute, so that an
/// expression is parsed in a real position and must be followed by `}`.
fn expr_file(expr: &str) -> String {
    format!("workflow w() {{\n  x: {expr}\n}}\n")
}

/// A snippet wrapped as a policy condition.
fn condition_file(cond: &str) -> String {
    format!("policy p {{\n  deny when {cond}\n}}\n")
}

fn assert_accepts(text: &str) {
    if let Err(e) = pest_parse(text) {
        panic!("the grammar should accept:\n{text}\nbut says:\n{e}");
    }
}

fn assert_rejects(text: &str) {
    assert!(!pest_accepts(text), "the grammar should reject:\n{text}");
}

/// The first pair of `rule` anywhere in the tree of `pair`, depth first.
fn find<'a>(pair: &Pair<'a, Rule>, rule: Rule) -> Option<Pair<'a, Rule>> {
    if pair.as_rule() == rule {
        return Some(pair.clone());
    }
    pair.clone().into_inner().find_map(|inner| find(&inner, rule))
}

/// The expression `x: …` of an `expr_file` (or the condition of a
/// `condition_file`) rendered as an s-expression that shows how it grouped.
fn grouping(text: &str) -> String {
    let file = pest_parse(text).unwrap_or_else(|e| panic!("does not parse:\n{text}\n{e}"));
    let root = find(&file, Rule::condition).or_else(|| find(&file, Rule::expr)).expect("an expression");
    render(root)
}

fn render(pair: Pair<'_, Rule>) -> String {
    let rule = pair.as_rule();
    let text = pair.as_str().to_string();
    let children: Vec<_> = pair.into_inner().collect();
    match rule {
        // Left-associative chains `a op b op c` fold to `(op (op a b) c)`.
        Rule::or_expr
        | Rule::and_expr
        | Rule::coalesce
        | Rule::comparison
        | Rule::condition_or
        | Rule::condition_and
        | Rule::condition_coalesce
        | Rule::condition_compare => {
            let mut parts = children.into_iter();
            let mut acc = render(parts.next().expect("an operand"));
            while let (Some(op), Some(rhs)) = (parts.next(), parts.next()) {
                acc = format!("({} {acc} {})", op.as_str(), render(rhs));
            }
            acc
        }
        Rule::not_expr | Rule::unary | Rule::condition_not | Rule::condition_unary => {
            if children.len() == 2 {
                let mut parts = children.into_iter();
                let op = parts.next().expect("an operator");
                format!("({} {})", op.as_str(), render(parts.next().expect("an operand")))
            } else {
                render(children.into_iter().next().expect("an operand"))
            }
        }
        Rule::postfix | Rule::condition_postfix => {
            let mut parts = children.into_iter();
            let mut acc = render(parts.next().expect("a primary"));
            for op in parts {
                let op = op.into_inner().next().expect("a postfix operator");
                acc = match op.as_rule() {
                    Rule::field_access | Rule::condition_field => format!("{acc}.{}", op.as_str().trim_start_matches('.').trim()),
                    _ => format!("{acc}[{}]", render(op.into_inner().next().expect("an index"))),
                };
            }
            acc
        }
        Rule::expr
        | Rule::condition_literal
        | Rule::condition
        | Rule::primary
        | Rule::condition_primary
        | Rule::paren
        | Rule::condition_paren => {
            render(children.into_iter().next().expect("an inner expression"))
        }
        _ => text,
    }
}

/// The kind of literal a snippet parses to (`price`, `money`, …).
fn literal_kind(expr: &str) -> Rule {
    let text = expr_file(expr);
    let file = pest_parse(&text).unwrap_or_else(|e| panic!("does not parse:\n{text}\n{e}"));
    let literal = find(&file, Rule::literal).expect("a literal");
    literal.into_inner().next().expect("a literal kind").as_rule()
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
/// `cargo test -p aos-compiler --test grammar -- --ignored --nocapture`
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

// ---------------------------------------------------------------------------
// Precedence
// ---------------------------------------------------------------------------

#[test]
fn or_binds_looser_than_and() {
    assert_eq!(grouping(&expr_file("a or b and c")), "(or a (and b c))");
    assert_eq!(grouping(&expr_file("a and b or c")), "(or (and a b) c)");
    assert_eq!(grouping(&expr_file("a or b or c")), "(or (or a b) c)");
}

#[test]
fn not_binds_looser_than_comparisons_and_tighter_than_and() {
    assert_eq!(grouping(&expr_file("not a == b")), "(not (== a b))");
    assert_eq!(grouping(&expr_file("not a and b")), "(and (not a) b)");
    assert_eq!(grouping(&expr_file("not not a")), "(not (not a))");
}

#[test]
fn coalesce_binds_tighter_than_comparisons_and_associates_left() {
    assert_eq!(grouping(&expr_file("a ?? b == c")), "(== (?? a b) c)");
    assert_eq!(grouping(&expr_file("a ?? b ?? c")), "(?? (?? a b) c)");
}

#[test]
fn negation_and_postfix_bind_tightest() {
    assert_eq!(grouping(&expr_file("-a ?? b")), "(?? (- a) b)");
    assert_eq!(grouping(&expr_file("-a.b[0]")), "(- a.b[0])");
    assert_eq!(grouping(&expr_file("sent.message_id ?? \"none\"")), "(?? sent.message_id \"none\")");
    assert_eq!(grouping(&expr_file("len(page) > 0 and x")), "(and (> len(page) 0) x)");
}

#[test]
fn parentheses_group() {
    assert_eq!(grouping(&expr_file("(a or b) and c")), "(and (or a b) c)");
    assert_eq!(grouping(&expr_file("(a < b) == c")), "(== (< a b) c)");
}

#[test]
fn comparisons_do_not_chain() {
    assert_rejects(&expr_file("a < b < c"));
    assert_rejects(&expr_file("a == b == c"));
    assert_rejects(&expr_file("a <= b > c"));
    assert_accepts(&expr_file("a < b and b < c"));
}

#[test]
fn calls_take_a_dotted_path() {
    assert_accepts(&expr_file("email.send(to: a, subject: \"s\", body: b)"));
    assert_accepts(&expr_file("len(xs)"));
    assert_accepts(&expr_file("f(x).field[0]"));
    assert_rejects(&expr_file("f(x)(y)"));
    assert_rejects(&expr_file("xs[0](y)"));
    assert_rejects(&expr_file("f(a b)"));
}

#[test]
fn llm_and_for_are_primaries() {
    assert_accepts(&expr_file("llm executor(\"hi\")"));
    assert_accepts(&expr_file("for x in xs => f(item: x)"));
    assert_rejects(&expr_file("llm executor(\"a\", \"b\")"));
    assert_rejects(&expr_file("llm executor(\"a\",)"));
    assert_rejects(&expr_file("llm executor(prompt: \"a\")"));
    assert_rejects(&expr_file("llm(\"a\")"));
}

// ---------------------------------------------------------------------------
// Keywords
// ---------------------------------------------------------------------------

#[test]
fn keywords_are_names_in_policy_conditions() {
    assert_eq!(grouping(&condition_file("kind == llm")), "(== kind llm)");
    assert_eq!(grouping(&condition_file("kind == workflow")), "(== kind workflow)");
    assert_eq!(
        grouping(&condition_file("tool == \"shell.exec\" and trust < trusted")),
        "(and (== tool \"shell.exec\") (< trust trusted))"
    );
    assert_eq!(grouping(&condition_file("not (kind == for)")), "(not (== kind for))");
    assert_accepts(
        "policy house_rules {\n  require approval when risk >= high\n  require verify when kind == llm and risk >= medium\n  deny when tool == \"shell.exec\" and trust < trusted\n}\n",
    );
}

#[test]
fn operator_and_literal_keywords_stay_reserved_in_policy_conditions() {
    assert_rejects(&condition_file("kind == and"));
    assert_rejects(&condition_file("kind == or"));
    assert_rejects(&condition_file("not == kind"));
    // `true`, `false` and `null` are literals there too, not names.
    assert_eq!(grouping(&condition_file("x == true")), "(== x true)");
}

#[test]
fn keywords_are_not_names_outside_policy_conditions() {
    assert_rejects(&expr_file("kind == workflow"));
    assert_rejects(&expr_file("tool"));
    assert_rejects("workflow w() {\n  step for = f()\n}\n");
    assert_rejects("model type = sim(\"echo\")\n");
    // A keyword is only a keyword as a whole word.
    assert_accepts(&expr_file("format ?? stepper ?? uses ?? android ?? order ?? nothing ?? inner"));
}

#[test]
fn keywords_are_not_llm_calls_or_fan_outs_in_policy_conditions() {
    assert_rejects(&condition_file("llm executor(\"x\")"));
    assert_rejects(&condition_file("for x in xs => f(x)"));
    assert_eq!(grouping(&condition_file("step.for == in")), "(== step.for in)");
    assert_accepts(&condition_file("contains(tool, \"shell\") and effect != pure"));
    // Keywords are names down to lists, records, indexes and interpolations.
    assert_accepts(&condition_file("tool == \"{for}\" or [llm, workflow] == k or { k: step }.k == x[in]"));
}

#[test]
fn keywords_are_keys_of_arguments_and_records() {
    assert_accepts(&expr_file("f(type: 1, when: 2)"));
    assert_accepts(&expr_file("{ type: 1, for: 2 }"));
    assert_rejects("type T = { type: String }\n");
}

#[test]
fn keywords_are_attribute_keys() {
    assert_accepts("workflow w() {\n  step a = f() { when: flag, type: 1, for: 2 }\n}\n");
    assert_accepts("model m = sim(\"echo\") { model: 1, in: 2 }\n");
}

// ---------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------

#[test]
fn interpolations_hold_any_expression_nested_strings_included() {
    assert_accepts(&expr_file(r#""tags: {join(tags, ", ")}""#));
    assert_accepts(&expr_file(r#""{ "{ "deep" }" }""#));
    assert_accepts(&expr_file(r#""a {x ?? "b {y}"} c""#));
    assert_accepts(&expr_file(r#""{ {k: "v"}.k }""#));
    assert_accepts(&expr_file(r#""{a.b[0]} and {len(xs) > 2}""#));
}

#[test]
fn interpolations_must_not_be_empty_or_unclosed() {
    assert_rejects(&expr_file(r#""{}""#));
    assert_rejects(&expr_file(r#""{ }""#));
    assert_rejects(&expr_file(r#""{x""#));
}

#[test]
fn a_lone_closing_brace_is_text() {
    assert_accepts(&expr_file(r#""a } b""#));
    assert_accepts(&expr_file(r#""\{ not an interpolation \}""#));
}

#[test]
fn only_the_listed_escapes_are_allowed() {
    assert_accepts(&expr_file(r#""\n \t \r \" \\ \{ \}""#));
    assert_rejects(&expr_file(r#""\q""#));
    assert_rejects(&expr_file(r#""\u0041""#));
    assert_rejects(&expr_file(r#""""\x""""#));
}

#[test]
fn simple_strings_end_on_their_line() {
    assert_rejects(&expr_file("\"one\ntwo\""));
    assert_rejects(&expr_file("\"unterminated"));
    // Interpolations of a one-line string stay on its line too.
    assert_rejects(&expr_file("\"{ a\n }\""));
    assert_rejects(&expr_file("\"{ f(\"x\",\n y) }\""));
    assert_accepts(&expr_file("\"{ f(\"}\", { k: \"{y}\" }) }\""));
}

#[test]
fn triple_quoted_strings_span_lines() {
    assert_accepts(&expr_file(
        "\"\"\"\n      Summarize these weekly sales for {region}:\n      {rows}\n      \"\"\"",
    ));
    assert_accepts(&expr_file(r#""""she said "hi" and left""""#));
    assert_accepts(&expr_file(r#""""""""#));
    assert_accepts(&expr_file("\"\"\"{ \"\"\"inner {x}\"\"\" }\"\"\""));
    assert_rejects(&expr_file("\"\"\"never closed\n"));
    // More than three quotes: the last three close the string.
    assert_accepts(&expr_file(r#""""say "hi"""""#));
    assert_accepts(&expr_file(r#""""say "hi""""""#));
    // An interpolation of a triple-quoted string may span lines.
    assert_accepts(&expr_file("\"\"\"{ f(\n a,\n b) }\"\"\""));
    let text = expr_file("\"\"\"a\nb\"\"\"");
    let file = pest_parse(&text).unwrap();
    assert!(find(&file, Rule::triple_string).is_some());
}

// ---------------------------------------------------------------------------
// Numbers, durations, money
// ---------------------------------------------------------------------------

#[test]
fn numbers() {
    assert_eq!(literal_kind("42"), Rule::integer);
    assert_eq!(literal_kind("1_000_000"), Rule::integer);
    assert_eq!(literal_kind("0.7"), Rule::float);
    assert_eq!(literal_kind("1.5e3"), Rule::float);
    assert_eq!(literal_kind("2E-6"), Rule::float);
    // Underscores anywhere after the first digit, as in Rust.
    assert_eq!(literal_kind("1__000_"), Rule::integer);
    assert_eq!(literal_kind("1_000.000_1"), Rule::float);
    assert_eq!(grouping(&expr_file("_1")), "_1"); // a name
    assert_rejects(&expr_file("1.5e_3"));
    // A number must not run into a letter.
    assert_rejects(&expr_file("42abc"));
    assert_rejects("workflow w() {\n  x: { a: 42abc: 1 }\n}\n");
}

#[test]
fn durations() {
    for d in ["250ms", "30s", "5m", "2h", "1d", "1_000ms"] {
        assert_eq!(literal_kind(d), Rule::duration, "{d}");
    }
    assert_rejects(&expr_file("5min"));
    assert_rejects(&expr_file("5 s"));
    assert_rejects(&expr_file("1.5s"));
}

#[test]
fn money_and_prices() {
    assert_eq!(literal_kind("$0.50"), Rule::money);
    assert_eq!(literal_kind("$12"), Rule::money);
    assert_eq!(literal_kind("$0.000001"), Rule::money);
    assert_eq!(literal_kind("$1_000"), Rule::money);
    assert_eq!(literal_kind("$2.50/M"), Rule::price);
    assert_eq!(literal_kind("$0/M"), Rule::price);
    assert_rejects(&expr_file("$0.1234567"));
    assert_rejects(&expr_file("$"));
    assert_rejects(&expr_file("$.5"));
    assert_rejects(&expr_file("$2.50 /M"));
    assert_rejects(&expr_file("$2.50/K"));
}

// ---------------------------------------------------------------------------
// Separators
// ---------------------------------------------------------------------------

#[test]
fn trailing_commas_are_allowed_everywhere() {
    assert_accepts(
        r#"
enum Tone { formal, casual, }
type Row = { a: Int, b: String, }
model m = sim("echo") { input: $0/M, output: $0/M, }
role r = [m, ]
tool a.b(x: Int, y: String,) -> Json { risk: low, }
workflow w(p: Int = 1,) {
  budget: $0,
  step s = f(a, b: [1, 2, ], c: { k: 1, },) { retry: 1, }
  return s
}
"#,
    );
}

#[test]
fn blocks_records_and_enums_may_separate_by_newline_only() {
    assert_accepts(
        "enum Tone {\n  formal\n  casual\n}\ntype Row = {\n  a: Int\n  b: String\n}\nworkflow w() {\n  step s = f(c: { k: 1\n j: 2 }) {\n    retry: 1\n    timeout: 30s\n  }\n}\n",
    );
}

#[test]
fn arguments_lists_and_roles_need_commas() {
    assert_rejects(&expr_file("[a b]"));
    assert_rejects(&expr_file("f(a: 1 b: 2)"));
    assert_rejects("role r = [a b]\n");
    assert_rejects("workflow w(a: Int b: Int) {}\n");
    assert_rejects(&expr_file("[,]"));
    assert_rejects(&expr_file("f(,)"));
}

// ---------------------------------------------------------------------------
// Items, workflows and steps
// ---------------------------------------------------------------------------

#[test]
fn every_item_form_parses() {
    assert_accepts(
        r#"
use std.email
use "./shared_types.aos"
/// One aggregated sales figure.
type SalesRow = { region: String, total: Float, week: String }
type Maybe = List<{ a: Int? }>?
enum Tone { formal, casual }
model gpt4o = openai("gpt-4o") { input: $2.50/M, output: $10.00/M, context: 128000 }
model bare = sim("echo")
role planner = [gpt4o]
role nobody = []
tool crm.lookup(customer_id: String) -> Json {
  http: "POST http://127.0.0.1:9000/lookup"
  risk: low
}
tool a.b.c()
policy empty {}
policy p {
  require approval when risk >= high
  deny when tool == "shell.exec"
}
workflow empty() {}
"#,
    );
}

#[test]
fn step_calls_are_calls_llm_calls_or_fan_outs() {
    assert_accepts(
        r#"workflow w(xs: List<String>) -> String {
  step a = sql.query(sql: "select 1")
  step b: String = llm executor("""
      hi {a}
      """) { max_tokens: 10 }
  step c = sub(x: b)
  step d: List<String> = for x in xs => llm executor("{x}") { max_items: 3 }
  step e = for x in xs => for y in x => f(y)
  return "{b}"
}"#,
    );
    assert_rejects("workflow w() {\n  step a = \"text\"\n}\n");
    assert_rejects("workflow w() {\n  step a = b\n}\n");
    assert_rejects("workflow w() {\n  step a = f(x).field\n}\n");
    assert_rejects("workflow w() {\n  step a = (f(x))\n}\n");
}

#[test]
fn step_needs_a_name_and_a_type_after_a_colon() {
    assert_rejects("workflow w() {\n  step = llm executor(\"no name\")\n}\n");
    assert_rejects("workflow w() {\n  step b: = llm executor(\"no type\")\n}\n");
    assert_rejects("workflow w() {\n  step b llm executor(\"no equals\")\n}\n");
}

#[test]
fn workflow_body_is_header_then_steps_then_return() {
    assert_accepts("workflow w() {\n  budget: $0\n  step a = f()\n  return a\n}\n");
    assert_rejects("workflow w() {\n  step a = f()\n  budget: $0\n}\n");
    assert_rejects("workflow w() {\n  return 1\n  step a = f()\n}\n");
    assert_rejects("workflow w() {\n  return 1\n  return 2\n}\n");
    assert_rejects("workflow w() {\n  return\n}\n");
}

#[test]
fn items_reject_malformed_heads() {
    assert_rejects("use std\n");
    assert_rejects("use \"{x}.aos\"\n");
    assert_rejects("tool single(x: Int)\n");
    assert_rejects("model m = sim(name)\n");
    assert_rejects("policy p { require when x }\n");
    assert_rejects("policy p { allow when x }\n");
    assert_rejects("type T = Map<String>\n");
    assert_rejects("workflow w() { budget: }\n");
}

// ---------------------------------------------------------------------------
// Comments
// ---------------------------------------------------------------------------

#[test]
fn comments_go_wherever_whitespace_goes() {
    assert_accepts(
        "/* a /* nested */ comment */\n//// not a doc comment\n/// doc\nworkflow /* here */ w(/* and */) { // there\n  x: 1 /* too */\n}\n",
    );
    assert_rejects("/* a /* nested */ but unterminated comment\nworkflow w() {}\n");
    assert_rejects("/* unterminated\n");
}

#[test]
fn doc_comments_are_exactly_three_slashes() {
    let whole = |rule: Rule, text: &str| {
        AosGrammar::parse(rule, text).is_ok_and(|mut p| p.next().is_some_and(|p| p.as_str() == text))
    };
    assert!(whole(Rule::doc_comment, "/// documented"));
    assert!(whole(Rule::doc_comment, "///"));
    assert!(!whole(Rule::doc_comment, "//// plain"));
    assert!(whole(Rule::line_comment, "//// plain"));
    assert!(whole(Rule::block_comment, "/* a /* b */ c */"));
    assert!(!whole(Rule::block_comment, "/* a /* b */ c"));
}
