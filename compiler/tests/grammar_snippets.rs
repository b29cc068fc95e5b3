//! What the normative grammar (`grammar/aos.pest`) says about precedence,
//! keywords, strings, literals, separators and the forms it must reject,
//! pinned down on small snippets, each also given to the real parser. (Whole
//! files: `grammar_files.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use pest::iterators::Pair;

use pest::Parser as _;

use common::pest_grammar::{AosGrammar, Rule, condition_file, expr_file, pest_accepts, pest_parse};

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
