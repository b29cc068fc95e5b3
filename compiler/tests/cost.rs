//! The cost arithmetic of §4 *Cost* against figures computed by hand.
//!
//! Most models here are `anthropic` or `sim`, whose tokens are counted as
//! UTF-8 bytes, so every figure can be checked with a pencil: a prompt
//! bound is the bytes of its text, plus the bound of each interpolated
//! value, plus one token per boundary between the pieces.
#![allow(clippy::unwrap_used, clippy::expect_used)]


use aos_compiler::ast;
use aos_compiler::check::cost::{self, CostReport};
use aos_compiler::check::env::{Decl, Env};
use aos_compiler::check::{models, roles, tokens};
use aos_compiler::diagnostic::Diagnostic;
use aos_compiler::source::FileId;

/// The parsed files of a test program: the source, then the stdlib modules
/// it `use`s.
struct Program {
    files: Vec<(FileId, ast::File, bool)>,
}

fn program(src: &str) -> Program {
    let (file, diags) = aos_compiler::parse(src, FileId(0));
    assert!(diags.is_empty(), "syntax errors in a cost test: {diags:?}");
    let mut files = Vec::new();
    for item in &file.items {
        if let ast::ItemKind::Use(ast::Use::Std(path)) = &item.kind {
            let name = path.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(".");
            let text = aos_compiler::stdlib::module(&name).expect("a stdlib module");
            let id = FileId(u32::try_from(files.len()).unwrap() + 1);
            files.push((id, aos_compiler::parse(text, id).0, true));
        }
    }
    files.insert(0, (FileId(0), file, false));
    Program { files }
}

/// A hand-built [`Env`]: first declaration wins, as the resolver does.
fn env(p: &Program) -> Env<'_> {
    let mut env = Env::default();
    for (file, f, std) in &p.files {
        for item in &f.items {
            macro_rules! put {
                ($map:ident, $name:expr, $decl:expr) => {{
                    env.$map.entry($name).or_insert(Decl {
                        file: *file,
                        decl: $decl,
                        doc: item.doc.as_deref(),
                        span: item.span,
                        std: *std,
                    });
                }};
            }
            match &item.kind {
                ast::ItemKind::Model(m) => put!(models, m.name.name.clone(), m),
                ast::ItemKind::Role(r) => put!(roles, r.name.name.clone(), r),
                ast::ItemKind::Tool(t) => put!(tools, Env::tool_name(&t.path), t),
                ast::ItemKind::Type(t) => put!(types, t.name.name.clone(), t),
                ast::ItemKind::Enum(e) => put!(enums, e.name.name.clone(), e),
                ast::ItemKind::Workflow(w) => put!(workflows, w.name.name.clone(), w),
                _ => {}
            }
        }
    }
    env
}

struct Outcome {
    report: CostReport,
    diags: Vec<Diagnostic>,
}

impl Outcome {
    fn total(&self, wf: &str) -> Option<f64> {
        self.report.workflows[wf].total_usd
    }

    fn step(&self, wf: &str, step: &str) -> &aos_compiler::ir::CostBound {
        &self.report.workflows[wf].steps[step]
    }

    fn codes(&self) -> Vec<&'static str> {
        self.diags.iter().map(|d| d.code.as_str()).collect()
    }
}

fn analyze(src: &str) -> Outcome {
    let p = program(src);
    let env = env(&p);
    let mut diags = Vec::new();
    let models = models::lower_models(&env, &mut diags);
    roles::check(&env, &mut diags);
    let report = cost::analyze(&env, &models, &mut diags);
    Outcome { report, diags }
}

/// Equal up to floating-point noise.
fn close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-12, "expected {expected}, got {actual}");
}

const MODELS: &str = r#"
model cheap = anthropic("claude-cheap") { input: $1.00/M, output: $2.00/M, context: 100000 }
model dear  = anthropic("claude-dear")  { input: $3.00/M, output: $15.00/M, context: 100000 }
role executor = [cheap]
role verifier = [dear]
"#;

#[test]
fn one_llm_step() {
    let o = analyze(&format!(
        r#"{MODELS}
workflow hello(name: String) -> String {{
  budget: $1
  step g = llm executor("Hi {{name}}!") {{ max_tokens: 100 }}
  return g
}}"#
    ));
    assert_eq!(o.codes(), Vec::<&str>::new());
    // prompt: "Hi " (3 bytes) + name (max_param_tokens 2048) + "!" (1)
    //         + 2 boundaries between the 3 pieces = 2054 tokens
    // attempt: 2054 × $1/M + 100 × $2/M = 0.002054 + 0.0002 = 0.002254
    // attempts: 1 + 1 repair = 2 → 0.004508
    let g = o.step("hello", "g");
    assert_eq!(g.prompt_tokens, 2054);
    assert_eq!(g.output_tokens, 100);
    assert_eq!(g.attempts, 2);
    assert_eq!(g.items, 1);
    assert_eq!(g.model.as_deref(), Some("cheap"));
    close(g.usd, 0.004508);
    close(o.total("hello").unwrap(), 0.004508);
}

#[test]
fn defaults_and_max_param_tokens() {
    let o = analyze(&format!(
        r#"{MODELS}
workflow w(a: String, b: String) -> String {{
  budget: $1
  max_param_tokens: 100
  step g = llm executor("{{a}}{{b}}")
  return g
}}"#
    ));
    // prompt: a (100) + b (100) + 1 boundary = 201; max_tokens defaults to 1024
    // attempt: 201 × $1/M + 1024 × $2/M = 0.000201 + 0.002048 = 0.002249; × 2
    let g = o.step("w", "g");
    assert_eq!(g.prompt_tokens, 201);
    assert_eq!(g.output_tokens, 1024);
    close(g.usd, 0.004498);
}

#[test]
fn verified_step() {
    let o = analyze(&format!(
        r#"{MODELS}
workflow hello(name: String) -> String {{
  budget: $1
  step g = llm executor("Hi {{name}}!") {{ max_tokens: 100, verify: verifier }}
  return g
}}"#
    ));
    assert_eq!(o.codes(), Vec::<&str>::new());
    // attempt on cheap: 0.002254 (as in one_llm_step)
    // verification on dear: prompt 2054 + reply bound 400 (4 × 100 bytes)
    //   + instruction 256 = 2710
    //   2710 × $3/M + 256 × $15/M = 0.00813 + 0.00384 = 0.01197
    // 2 billed attempts × (0.002254 + 0.01197) = 0.028448
    close(o.step("hello", "g").usd, 0.028448);
}

#[test]
fn retry_multiplies_the_attempts() {
    let o = analyze(&format!(
        r#"{MODELS}
workflow hello(name: String) -> String {{
  budget: $1
  step g = llm executor("Hi {{name}}!") {{ max_tokens: 100, retry: 2 }}
  return g
}}"#
    ));
    // (1 + 1 repair) × (1 + 2 retries) = 6 attempts × 0.002254 = 0.013524
    let g = o.step("hello", "g");
    assert_eq!(g.attempts, 6);
    close(g.usd, 0.013524);
}

#[test]
fn fan_out_multiplies_by_max_items() {
    let o = analyze(&format!(
        r#"{MODELS}
workflow w(docs: List<String>) -> String {{
  budget: $1
  step rs: List<String> = for d in docs => llm executor("R {{d}}") {{ max_items: 10, max_tokens: 50 }}
  step all = llm executor("{{rs}}") {{ max_tokens: 10 }}
  return all
}}"#
    ));
    assert_eq!(o.codes(), Vec::<&str>::new());
    // one item: "R " (2) + d (the whole list's bound, 2048) + 1 boundary = 2051
    //   2051 × $1/M + 50 × $2/M = 0.002051 + 0.0001 = 0.002151; × 2 attempts × 10 items = 0.04302
    let rs = o.step("w", "rs");
    assert_eq!(rs.items, 10);
    assert_eq!(rs.prompt_tokens, 2051);
    close(rs.usd, 0.04302);
    // rs as a value: 10 × (200 reply bytes (4 × 50) + 3 per item) + 2 brackets = 2032
    //   2032 × $1/M + 10 × $2/M = 0.002032 + 0.00002 = 0.002052; × 2 = 0.004104
    let all = o.step("w", "all");
    assert_eq!(all.prompt_tokens, 2032);
    close(all.usd, 0.004104);
    close(o.total("w").unwrap(), 0.04302 + 0.004104);
}

#[test]
fn fan_out_over_a_literal_list() {
    let o = analyze(&format!(
        r#"{MODELS}
workflow w() -> List<String> {{
  budget: $1
  step rs: List<String> = for d in ["a", "bb"] => llm executor("R {{d}}") {{ max_tokens: 50 }}
  return rs
}}"#
    ));
    assert_eq!(o.codes(), Vec::<&str>::new());
    // 2 items; one item is at most "bb" (2 bytes): prompt 2 + 2 + 1 = 5
    // 5 × $1/M + 50 × $2/M = 0.000105; × 2 attempts × 2 items = 0.00042
    let rs = o.step("w", "rs");
    assert_eq!(rs.items, 2);
    assert_eq!(rs.prompt_tokens, 5);
    close(rs.usd, 0.00042);
}

#[test]
fn unbounded_fan_out_is_e0502_and_has_no_total() {
    let o = analyze(&format!(
        r#"{MODELS}
workflow w(docs: List<String>) -> String {{
  budget: $1
  step rs: List<String> = for d in docs => llm executor("R {{d}}") {{ max_tokens: 50 }}
  step all = llm executor("{{rs}}") {{ max_tokens: 10 }}
  return all
}}"#
    ));
    // One mistake, one diagnostic: `all` interpolates `rs` but says nothing.
    assert_eq!(o.codes(), vec!["E0502"]);
    assert_eq!(o.total("w"), None);
    assert_eq!(o.report.workflows["w"].unbounded, vec!["rs".to_string(), "all".to_string()]);
}

#[test]
fn max_input_tokens_caps_an_unbounded_prompt() {
    let o = analyze(&format!(
        r#"{MODELS}
workflow w(docs: List<String>) -> String {{
  budget: $1
  step rs: List<String> = for d in docs => llm executor("R {{d}}") {{ max_tokens: 50 }}
  step all = llm executor("{{rs}}") {{ max_tokens: 10, max_input_tokens: 1000 }}
  return all
}}"#
    ));
    assert_eq!(o.codes(), vec!["E0502"]);
    // 1000 × $1/M + 10 × $2/M = 0.00102; × 2 = 0.00204
    let all = o.step("w", "all");
    assert_eq!(all.prompt_tokens, 1000);
    close(all.usd, 0.00204);
}

#[test]
fn workflow_call_adds_the_callee() {
    let o = analyze(&format!(
        r#"{MODELS}
workflow translate(text: String) -> String {{
  budget: $1
  step out = llm executor("T {{text}}") {{ max_tokens: 400 }}
  return out
}}
workflow both(text: String) -> String {{
  budget: $1
  step fr = translate(text: text)
  step de = translate(text: text) {{ retry: 1 }}
  step j = llm executor("{{fr}}{{de}}") {{ max_tokens: 10 }}
  return j
}}"#
    ));
    assert_eq!(o.codes(), Vec::<&str>::new());
    // translate.out: prompt "T " (2) + text (2048) + 1 = 2051
    //   2051 × $1/M + 400 × $2/M = 0.002051 + 0.0008 = 0.002851; × 2 = 0.005702
    close(o.total("translate").unwrap(), 0.005702);
    // fr: 0.005702; de: × (1 + 1 retry) = 0.011404
    close(o.step("both", "fr").usd, 0.005702);
    close(o.step("both", "de").usd, 0.011404);
    // j: the callee returns `out`, bounded by its reply bound, 4 × 400 bytes:
    //   1600 + 1600 + 1 = 3201; 3201 × $1/M + 10 × $2/M = 0.003221; × 2 = 0.006442
    assert_eq!(o.step("both", "j").prompt_tokens, 3201);
    close(o.total("both").unwrap(), 0.005702 + 0.011404 + 0.006442);
}

#[test]
fn recursion_counts_zero_inside_the_cycle() {
    let o = analyze(&format!(
        r#"{MODELS}
workflow a() -> String {{
  budget: $1
  step x = b()
  step y = llm executor("{{x}}") {{ max_tokens: 10 }}
  return y
}}
workflow b() -> String {{
  budget: $1
  step z = a()
  return z
}}"#
    ));
    assert_eq!(o.codes(), Vec::<&str>::new());
    assert!(o.total("a").is_some());
    assert!(o.total("b").is_some());
}

#[test]
fn tool_outputs_bound_prompts() {
    let o = analyze(&format!(
        r#"use std.http
{MODELS}
tool crm.lookup(id: String) -> Json {{
  http: "POST http://127.0.0.1:9000/lookup"
  max_output_tokens: 300
}}
workflow w(url: String) -> String {{
  budget: $1
  step page = http.get(url: url) {{ retry: 3 }}
  step short = http.get(url: url) {{ max_output_tokens: 500 }}
  step c = crm.lookup(id: "42")
  step s = llm executor("{{page}}{{short}}{{c}}") {{ max_tokens: 10 }}
  return s
}}"#
    ));
    assert_eq!(o.codes(), Vec::<&str>::new());
    // page: the tool's own 8192; short: the step's 500; c: the tool's 300
    let page = o.step("w", "page");
    assert_eq!((page.usd, page.output_tokens, page.attempts), (0.0, 8192, 4));
    assert_eq!(o.step("w", "short").output_tokens, 500);
    // 8192 + 500 + 300 + 2 boundaries = 8994
    // 8994 × $1/M + 10 × $2/M = 0.009014; × 2 = 0.018028
    assert_eq!(o.step("w", "s").prompt_tokens, 8994);
    close(o.total("w").unwrap(), 0.018028);
}

#[test]
fn the_dearest_model_of_the_chain_counts() {
    let o = analyze(
        r#"
model cheap = anthropic("c") { input: $1.00/M, output: $2.00/M, context: 100000 }
model dear  = anthropic("d") { input: $3.00/M, output: $15.00/M, context: 100000 }
role executor = [cheap, dear]
workflow w() -> String {
  budget: $1
  step s = llm executor("abcd") { max_tokens: 10 }
  return s
}"#,
    );
    // cheap: 4 × 1 + 10 × 2 = 24 µ$; dear: 4 × 3 + 10 × 15 = 162 µ$ → dear, × 2
    let s = o.step("w", "s");
    assert_eq!(s.model.as_deref(), Some("dear"));
    close(s.usd, 0.000324);
}

#[test]
fn openai_templates_are_counted_with_tiktoken() {
    let o = analyze(
        r#"
model g = openai("gpt-4o") { input: $2.50/M, output: $10.00/M, context: 128000 }
role executor = [g]
workflow w(name: String) -> String {
  budget: $1
  step s = llm executor("Write a one-line, warm greeting for {name}.") { max_tokens: 60 }
  return s
}"#,
    );
    let text = tokens::count_with(tokens::Tokenizer::O200k, "Write a one-line, warm greeting for ")
        + tokens::count_with(tokens::Tokenizer::O200k, ".");
    assert!(text < 36, "o200k counts fewer tokens than bytes");
    // template + name 2048 + 2 boundaries between the 3 pieces
    assert_eq!(o.step("w", "s").prompt_tokens, text + 2048 + 2);
}

#[test]
fn sim_models_cost_nothing() {
    let o = analyze(
        r#"
model m = sim("echo")
role executor = [m]
workflow w() -> String {
  budget: $0
  step s = llm executor("hello") { max_tokens: 10 }
  return s
}"#,
    );
    assert_eq!(o.codes(), Vec::<&str>::new());
    close(o.total("w").unwrap(), 0.0);
}

#[test]
fn over_budget_is_e0501_with_both_figures() {
    let o = analyze(
        r#"
model opus = anthropic("claude-opus-4") { input: $15.00/M, output: $75.00/M, context: 200000 }
role executor = [opus]
workflow essay(topic: String) -> String {
  budget: $5.00
  step e = llm executor("Write an essay about {topic}") { max_tokens: 8000 }
  return e
}
workflow many() -> String {
  budget: $0.05
  step one = essay(topic: "rivers")
  step two = essay(topic: "mountains")
  return "{one}\n{two}"
}"#,
    );
    // essay.e: prompt 21 + 2048 + 1 = 2070; 2070 × 15/M + 8000 × 75/M
    //   = 0.03105 + 0.6 = 0.63105; × 2 = 1.2621; many = 2 × 1.2621 = 2.5242
    close(o.total("essay").unwrap(), 1.2621);
    close(o.total("many").unwrap(), 2.5242);
    assert_eq!(o.codes(), vec!["E0501"]);
    let d = &o.diags[0];
    assert!(d.message.contains("$2.5242") && d.message.contains("$0.05"), "{}", d.message);
    assert_eq!(d.labels.len(), 2, "a label on each expensive step");
}

#[test]
fn exactly_the_budget_fits() {
    // "abcd" 4 tokens × $1/M + 8 × $2/M = 20 µ$; × 2 attempts = 40 µ$
    let o = analyze(&format!(
        r#"{MODELS}
workflow w() -> String {{
  budget: $0.00004
  step s = llm executor("abcd") {{ max_tokens: 8 }}
  return s
}}"#
    ));
    assert_eq!(o.codes(), Vec::<&str>::new());
}

#[test]
fn no_budget_is_w0501_with_the_bound() {
    let o = analyze(&format!(
        r#"{MODELS}
workflow w() -> String {{
  step s = llm executor("abcd") {{ max_tokens: 8 }}
  return s
}}"#
    ));
    assert_eq!(o.codes(), vec!["W0501"]);
    assert!(o.diags[0].message.contains("$0.00004"), "{}", o.diags[0].message);
    assert!(!o.diags[0].is_error());
}

#[test]
fn context_overflow_is_e0404() {
    let o = analyze(
        r#"
use std.http
model small = openai("tiny") { input: $0.10/M, output: $0.10/M, context: 4096 }
role executor = [small]
workflow w(url: String) -> String {
  budget: $1.00
  step page = http.get(url: url) { max_output_tokens: 50000 }
  step s = llm executor("Summarize {page}") { max_tokens: 100 }
  return s
}"#,
    );
    assert_eq!(o.codes(), vec!["E0404"]);
    // "Summarize " 10 bytes + 50000 + 1 = 50011
    let m = &o.diags[0].message;
    assert!(m.contains("50011") && m.contains("4096") && m.contains("`small`"), "{m}");
}

#[test]
fn pure_builtins_are_bounded_by_their_arguments() {
    let o = analyze(&format!(
        r#"{MODELS}
type Article = {{ title: String, tags: List<String> }}
workflow w(a: Article) -> String {{
  budget: $1
  max_param_tokens: 100
  step s = llm executor("{{upper(a.title)}}|{{join(a.tags, ", ")}}|{{len(a.tags)}}") {{ max_tokens: 10 }}
  return s
}}"#
    ));
    // upper(a.title): the whole of a, 100
    // join(a.tags, ", "): the list (100) + at most 100 separators of 2 bytes (+1 each) = 400
    // len(…): 24; the two "|" 1 each; 4 boundaries between 5 pieces
    // 100 + 1 + 400 + 1 + 24 + 4 = 530
    assert_eq!(o.step("w", "s").prompt_tokens, 530);
}

#[test]
fn the_table_explains_the_bound() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/weekly_sales_report.aos")).unwrap();
    let o = analyze(&src);
    assert_eq!(o.codes(), Vec::<&str>::new());
    // summary (haiku, bytes): after trimIndent the template is
    // "Summarize these weekly sales for " (33) {region} " in five bullet
    // points:\n" (24) {rows}: 57 + region 2048 + rows 4000 (the step's
    // max_output_tokens) + 3 boundaries = 6108
    // one attempt: 6108 × $0.80/M + 600 × $4.00/M = 0.0048864 + 0.0024 = 0.0072864
    // verification on sonnet: (6108 + 2400 reply bytes (4 × 600) + 256) × $3.00/M
    //   + 256 × $15.00/M = 0.026292 + 0.00384 = 0.030132
    // 2 attempts × (0.0072864 + 0.030132) = 0.0748368
    let summary = o.step("weekly_sales_report", "summary");
    assert_eq!(summary.prompt_tokens, 6108);
    close(summary.usd, 0.074_836_8);
    assert_eq!(summary.model.as_deref(), Some("haiku"));
    assert_eq!(summary.attempts, 2);
    let table = cost::render_table(&o.report);
    insta::assert_snapshot!(table);
}

#[test]
fn a_fallback_adds_its_own_attempts() {
    let o = analyze(&format!(
        r#"{MODELS}
workflow w() -> String {{
  budget: $1
  step s = llm executor("abcd") {{ max_tokens: 8, fallback: llm verifier("ab") }}
  return s
}}"#
    ));
    assert_eq!(o.codes(), Vec::<&str>::new());
    // main call on cheap: 4 × $1/M + 8 × $2/M = 20 µ$, × 2 attempts = 40 µ$
    // fallback on dear: "ab" 2 × $3/M + 8 × $15/M = 126 µ$, × 2 attempts = 252 µ$
    close(o.step("w", "s").usd, 0.000_292);
}

#[test]
fn an_unbounded_callee_is_reported_once() {
    let o = analyze(&format!(
        r#"{MODELS}
workflow inner(docs: List<String>) -> List<String> {{
  budget: $1
  step xs: List<String> = for d in docs => llm executor("{{d}}") {{ max_tokens: 5 }}
  return xs
}}
workflow outer(docs: List<String>) -> String {{
  budget: $1
  step a = inner(docs: docs)
  step b = llm executor("{{a}}") {{ max_tokens: 5 }}
  return b
}}"#
    ));
    assert_eq!(o.codes(), vec!["E0502"]);
    assert_eq!(o.total("inner"), None);
    assert_eq!(o.total("outer"), None);
}

#[test]
fn a_verification_prompt_must_fit_the_verifier() {
    let o = analyze(
        r#"
model big  = anthropic("b") { input: $1.00/M, output: $2.00/M, context: 100000 }
model tiny = anthropic("t") { input: $1.00/M, output: $2.00/M, context: 3000 }
role executor = [big]
role verifier = [tiny]
workflow w(name: String) -> String {
  budget: $1
  step s = llm executor("{name}") { max_tokens: 1000, verify: verifier }
  return s
}"#,
    );
    // the step's prompt: 2048 fits `big`; the verification reads
    // 2048 + 4000 reply bytes (4 × 1000) + 256 instruction = 6304 > 3000
    assert_eq!(o.codes(), vec!["E0404"]);
    let m = &o.diags[0].message;
    assert!(m.contains("verification") && m.contains("6304") && m.contains("3000") && m.contains("`tiny`"), "{m}");
}

#[test]
fn roles_chain_known_models_in_order() {
    let p = program(
        r#"
model a = sim("a")
model b = sim("b")
role executor = [b, a, b, ghost]
role planner = []
"#,
    );
    let env = env(&p);
    let mut diags = Vec::new();
    let chains = roles::check(&env, &mut diags);
    assert_eq!(chains["executor"], vec!["b".to_string(), "a".to_string()]);
    assert_eq!(chains["planner"], Vec::<String>::new());
    assert!(diags.is_empty(), "an unused empty role is not an error");
}
