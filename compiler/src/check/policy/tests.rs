#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::ast::BinaryOp as B;
use crate::testkit::trees::*;

fn cmp(fact: Fact, cmp: Cmp, value: &str) -> Cond {
    Cond::Compare { cmp, value: PolicyValue::parse(fact, value).expect("a value of the fact") }
}

fn and(a: Cond, b: Cond) -> Cond {
    Cond::And { a: Box::new(a), b: Box::new(b) }
}

fn or(a: Cond, b: Cond) -> Cond {
    Cond::Or { a: Box::new(a), b: Box::new(b) }
}

const SHELL: Facts<'static> = Facts { risk: Risk::High, kind: StepKind::Tool, effect: Effect::External, tool: Some("shell.exec") };
const LLM: Facts<'static> = Facts { risk: Risk::Low, kind: StepKind::Llm, effect: Effect::Pure, tool: None };

#[test]
fn a_condition_on_static_facts_is_decided() {
    assert_eq!(decide(&cmp(Fact::Risk, Cmp::Ge, "high"), &SHELL), Decision::Always);
    assert_eq!(decide(&cmp(Fact::Risk, Cmp::Ge, "high"), &LLM), Decision::Never);
    assert_eq!(decide(&cmp(Fact::Kind, Cmp::Eq, "llm"), &LLM), Decision::Always);
    assert_eq!(decide(&cmp(Fact::Tool, Cmp::Ne, "shell.exec"), &LLM), Decision::Always);
    assert_eq!(decide(&cmp(Fact::Tool, Cmp::Eq, "shell.exec"), &LLM), Decision::Never);
    assert_eq!(decide(&cmp(Fact::Effect, Cmp::Eq, "external"), &SHELL), Decision::Always);
}

#[test]
fn a_trust_condition_is_dynamic_unless_every_level_agrees() {
    let deny_shell = and(cmp(Fact::Tool, Cmp::Eq, "shell.exec"), cmp(Fact::Trust, Cmp::Lt, "trusted"));
    assert_eq!(decide(&deny_shell, &SHELL), Decision::Dynamic);
    // The static half is false for an LLM step, whatever the trust.
    assert_eq!(decide(&deny_shell, &LLM), Decision::Never);
    // True or false for every trust level: decided.
    let tautology = or(cmp(Fact::Trust, Cmp::Lt, "trusted"), cmp(Fact::Trust, Cmp::Ge, "trusted"));
    assert_eq!(decide(&tautology, &LLM), Decision::Always);
    assert_eq!(decide(&cmp(Fact::Trust, Cmp::Le, "admin"), &LLM), Decision::Always);
    assert_eq!(decide(&cmp(Fact::Trust, Cmp::Lt, "untrusted"), &LLM), Decision::Never);
    let not = Cond::Not { a: Box::new(cmp(Fact::Trust, Cmp::Eq, "admin")) };
    assert_eq!(decide(&not, &SHELL), Decision::Dynamic);
}

#[test]
fn evaluate_orders_trust_and_risk() {
    let c = cmp(Fact::Trust, Cmp::Lt, "trusted");
    assert!(evaluate(&c, &SHELL, Trust::Untrusted));
    assert!(evaluate(&c, &SHELL, Trust::Basic));
    assert!(!evaluate(&c, &SHELL, Trust::Trusted));
    assert!(!evaluate(&c, &SHELL, Trust::Admin));
    assert!(evaluate(&cmp(Fact::Risk, Cmp::Gt, "medium"), &SHELL, Trust::Admin));
    // A value its fact does not have cannot be in a condition at all (it
    // was a comparison that never held when values were strings).
    assert_eq!(PolicyValue::parse(Fact::Risk, "bogus"), None);
}

#[test]
fn render_parenthesizes_only_where_needed() {
    let c = and(
        or(cmp(Fact::Risk, Cmp::Ge, "high"), cmp(Fact::Kind, Cmp::Eq, "llm")),
        Cond::Not { a: Box::new(cmp(Fact::Tool, Cmp::Eq, "shell.exec")) },
    );
    assert_eq!(render(&c), "(risk >= high or kind == llm) and not tool == \"shell.exec\"");
    let c = or(and(cmp(Fact::Risk, Cmp::Ge, "high"), cmp(Fact::Trust, Cmp::Lt, "basic")), Cond::True);
    assert_eq!(render(&c), "risk >= high and trust < basic or true");
}

fn compile(cond: ast::Expr) -> (Option<Cond>, Vec<Diagnostic>) {
    let p = Program { tools: vec![tool("shell.exec", &[])], ..Program::default() };
    let env = p.env();
    let mut diags = Vec::new();
    let c = Compiler { env: &env, file: FileId(0), diags: &mut diags }.cond(&cond);
    (c, diags)
}

#[test]
fn conditions_compile_and_a_value_first_comparison_is_flipped() {
    let (c, d) = compile(bin(B::Le, name("high"), name("risk")));
    assert!(d.is_empty());
    assert_eq!(c, Some(cmp(Fact::Risk, Cmp::Ge, "high")));
    let (c, d) = compile(bin(
        B::And,
        bin(B::Eq, name("tool"), string("shell.exec")),
        not(bin(B::Ge, name("trust"), name("trusted"))),
    ));
    assert!(d.is_empty(), "{d:#?}");
    assert_eq!(render(&c.unwrap()), "tool == \"shell.exec\" and not trust >= trusted");
}

fn errors(cond: ast::Expr) -> Vec<(&'static str, String, String)> {
    let (c, d) = compile(cond);
    assert_eq!(c, None);
    d.into_iter().map(|d| (d.code.as_str(), d.message, d.help.unwrap_or_default())).collect()
}

#[test]
fn unknown_facts_and_values_get_a_suggestion() {
    let e = errors(bin(B::Ge, name("risk"), name("hgh")));
    assert_eq!(e[0].0, "E0101");
    assert_eq!(e[0].1, "unknown risk level `hgh`");
    assert!(e[0].2.starts_with("did you mean `high`?"), "{}", e[0].2);
    let e = errors(bin(B::Eq, name("kidn"), name("llm")));
    assert_eq!((e[0].0, e[0].1.as_str()), ("E0101", "unknown fact `kidn`"));
    assert!(e[0].2.starts_with("did you mean `kind`?"));
    // Both sides of `and` are checked.
    let e = errors(bin(B::And, bin(B::Eq, name("kind"), name("lm")), bin(B::Lt, name("trust"), name("trustd"))));
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e[1].2.starts_with("did you mean `trusted`?"));
    let e = errors(bin(B::Eq, name("tool"), string("shell.exce")));
    assert_eq!((e[0].0, e[0].1.as_str(), e[0].2.as_str()), ("E0103", "unknown tool `shell.exce`", "did you mean `shell.exec`?"));
}

#[test]
fn malformed_comparisons_are_type_errors() {
    let e = errors(bin(B::Lt, name("kind"), name("llm")));
    assert_eq!((e[0].0, e[0].1.as_str()), ("E0201", "`kind` has no order: it can only be compared with `==` or `!=`"));
    let e = errors(bin(B::Eq, name("tool"), at(ExprKind::Field(Box::new(name("shell")), id("exec")))));
    assert_eq!(e[0].2, "write the tool's name in quotes: `tool == \"shell.exec\"`");
    let e = errors(bin(B::Eq, name("kind"), string("llm")));
    assert_eq!(e[0].2, "write `llm` without quotes");
    let e = errors(name("risk"));
    assert_eq!(e[0].1, "`risk` alone is not a condition: compare it with a value");
}

fn run(p: &Program) -> (PolicyReport, Vec<Diagnostic>) {
    let env = p.env();
    let mut diags = Vec::new();
    let report = analyze(&env, &mut diags);
    (report, diags)
}

fn file_write() -> ast::ToolDecl {
    tool("file.write", &[("risk", name("medium")), ("effect", name("external"))])
}

#[test]
fn a_require_decided_true_and_unmet_is_e0601() {
    let p = Program {
        tools: vec![file_write()],
        workflows: vec![workflow(
            "w",
            &[],
            vec![
                step("write", call("file.write"), &[]),
                step("gated", call("file.write"), &[("approval", string("ops"))]),
                step("think", llm(), &[]),
            ],
        )],
        policies: vec![policy(
            "careful",
            vec![
                (require("approval"), bin(B::Eq, name("effect"), name("external"))),
                (require("verify"), bin(B::Eq, name("kind"), name("llm"))),
                (require("verify"), bin(B::Eq, name("tool"), string("file.write"))),
            ],
        )],
    };
    let (report, diags) = run(&p);
    let got: Vec<_> = diags.iter().map(|d| (d.code.as_str(), d.message.as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("E0601", "policy `careful` requires approval when `effect == external`: step `write` has no `approval:`"),
            (
                "E0601",
                "policy `careful` requires verify when `tool == \"file.write\"`: step `write` is a tool call, and only LLM steps can be verified"
            ),
            (
                "E0601",
                "policy `careful` requires verify when `tool == \"file.write\"`: step `gated` is a tool call, and only LLM steps can be verified"
            ),
            ("E0601", "policy `careful` requires verify when `kind == llm`: step `think` has no `verify:`"),
        ]
    );
    assert_eq!(report.rules.len(), 3);
    assert_eq!(report.rules[0].text, "require approval when effect == external");
    assert_eq!(
        report.steps.get("w").and_then(|w| w.get("think")),
        Some(&StepGovernance { risk: Risk::Low, effect: Effect::Pure, kind: StepKind::Llm })
    );
}

#[test]
fn a_static_deny_is_e0603_even_with_approval() {
    let p = Program {
        tools: vec![tool("shell.exec", &[("risk", name("high"))])],
        workflows: vec![workflow(
            "w",
            &[("risk", name("high"))],
            vec![step("x", call("shell.exec"), &[("approval", string("ops"))])],
        )],
        policies: vec![policy("no_shell", vec![(ast::RuleKind::Deny, bin(B::Eq, name("tool"), string("shell.exec")))])],
    };
    let (_, diags) = run(&p);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].code, "E0603");
    assert_eq!(diags[0].message, "policy `no_shell` denies steps where `tool == \"shell.exec\"`, and step `x` is one");
}

#[test]
fn a_deny_also_applies_to_a_fallback_call() {
    let p = Program {
        tools: vec![tool("shell.exec", &[("risk", name("high"))]), tool("file.read", &[])],
        workflows: vec![workflow(
            "w",
            &[("risk", name("high"))],
            vec![step("y", call("file.read"), &[("approval", string("ops")), ("fallback", call("shell.exec"))])],
        )],
        policies: vec![policy("no_shell", vec![(ast::RuleKind::Deny, bin(B::Eq, name("tool"), string("shell.exec")))])],
    };
    let (report, diags) = run(&p);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].code, "E0603");
    assert_eq!(
        diags[0].message,
        "policy `no_shell` denies steps where `tool == \"shell.exec\"`, and the `fallback:` of step `y` is one"
    );
    // The step itself is still a `file.read`, raised by its fallback.
    let g = report.steps.get("w").and_then(|w| w.get("y")).copied().unwrap();
    assert_eq!(g, StepGovernance { risk: Risk::High, effect: Effect::Read, kind: StepKind::Tool });
}

#[test]
fn a_trust_rule_is_left_to_the_runtime() {
    let p = Program {
        tools: vec![tool("shell.exec", &[("risk", name("high"))])],
        workflows: vec![workflow(
            "w",
            &[("risk", name("high"))],
            vec![step("x", call("shell.exec"), &[]), step("y", llm(), &[])],
        )],
        policies: vec![policy(
            "house",
            vec![(
                ast::RuleKind::Deny,
                bin(B::And, bin(B::Eq, name("tool"), string("shell.exec")), bin(B::Lt, name("trust"), name("trusted"))),
            )],
        )],
    };
    let (report, diags) = run(&p);
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(
        report.rules,
        vec![ir::PolicyRule {
            policy: "house".into(),
            text: "deny when tool == \"shell.exec\" and trust < trusted".into(),
            action: PolicyAction::Deny,
            cond: and(cmp(Fact::Tool, Cmp::Eq, "shell.exec"), cmp(Fact::Trust, Cmp::Lt, "trusted")),
        }]
    );
}

#[test]
fn an_unknown_requirement_is_reported_and_the_rule_dropped() {
    let p = Program {
        policies: vec![policy("p", vec![(require("aproval"), bin(B::Ge, name("risk"), name("high")))])],
        ..Program::default()
    };
    let (report, diags) = run(&p);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].message, "unknown requirement `aproval`");
    assert!(report.rules.is_empty());
}
