#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::testkit::trees::*;
use super::*;

/// (workflow, step, risk, effect, kind) of every step.
type Flat = Vec<(String, String, Risk, Effect, StepKind)>;

fn facts_of(p: &Program) -> (Flat, Vec<Diagnostic>) {
    let env = p.env();
    let mut diags = Vec::new();
    let facts = analyze(&env, &mut diags);
    for wf in &facts {
        diags.extend(wf.steps.iter().filter_map(|s| ceiling_violation(wf, s)));
    }
    let flat = facts
        .iter()
        .flat_map(|w| w.steps.iter().map(|s| (w.name.clone(), s.step.name.name.clone(), s.risk, s.effect, s.kind)))
        .collect();
    (flat, diags)
}

fn email() -> ast::ToolDecl {
    tool("email.send", &[("risk", name("high")), ("effect", name("external"))])
}

#[test]
fn a_tool_step_takes_the_tool_risk_and_is_gated_by_the_default_ceiling() {
    let p = Program {
        tools: vec![email(), tool("sql.query", &[])],
        workflows: vec![workflow(
            "w",
            &[],
            vec![step("rows", call("sql.query"), &[]), step("sent", call("email.send"), &[])],
        )],
        ..Program::default()
    };
    let (facts, diags) = facts_of(&p);
    assert_eq!(
        facts,
        vec![
            ("w".into(), "rows".into(), Risk::Low, Effect::Read, StepKind::Tool),
            ("w".into(), "sent".into(), Risk::High, Effect::External, StepKind::Tool),
        ]
    );
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].code, "E0602");
    assert_eq!(
        diags[0].message,
        "step `sent` has risk `high` (`email.send` is declared `risk: high`), above workflow `w`'s ceiling `medium` (the default), and has no `approval:`"
    );
}

#[test]
fn approval_or_a_higher_ceiling_lets_a_risky_step_pass() {
    let p = Program {
        tools: vec![email()],
        workflows: vec![
            workflow("a", &[], vec![step("sent", call("email.send"), &[("approval", string("ops"))])]),
            workflow("b", &[("risk", name("high"))], vec![step("sent", call("email.send"), &[])]),
        ],
        ..Program::default()
    };
    let (_, diags) = facts_of(&p);
    assert!(diags.is_empty(), "{diags:#?}");
}

#[test]
fn a_critical_step_needs_approval_even_under_a_critical_ceiling() {
    let p = Program {
        tools: vec![tool("file.write", &[("risk", name("medium")), ("effect", name("external"))])],
        workflows: vec![workflow(
            "w",
            &[("risk", name("critical"))],
            vec![step("wipe", call("file.write"), &[("risk", name("critical"))])],
        )],
        ..Program::default()
    };
    let (facts, diags) = facts_of(&p);
    assert_eq!(facts[0].2, Risk::Critical);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, "E0602");
    assert!(diags[0].message.contains("is `critical` (its own `risk: critical`)"), "{}", diags[0].message);
}

#[test]
fn a_workflow_call_inherits_only_unattended_risk_and_every_effect() {
    let p = Program {
        tools: vec![email()],
        workflows: vec![
            workflow("gated", &[], vec![step("sent", call("email.send"), &[("approval", string("ops"))])]),
            workflow("open", &[("risk", name("high"))], vec![step("sent", call("email.send"), &[])]),
            workflow("main", &[], vec![step("g", call("gated"), &[]), step("o", call("open"), &[])]),
        ],
        ..Program::default()
    };
    let (facts, diags) = facts_of(&p);
    let main: Vec<_> = facts.iter().filter(|f| f.0 == "main").collect();
    assert_eq!(main[0].2, Risk::Low);
    assert_eq!(main[0].3, Effect::External);
    assert_eq!(main[0].4, StepKind::Workflow);
    assert_eq!(main[1].2, Risk::High);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(
        diags[0].message,
        "step `o` has risk `high` (it calls workflow `open`, whose step `sent` runs without approval: `email.send` is declared `risk: high`), above workflow `main`'s ceiling `medium` (the default), and has no `approval:`"
    );
}

#[test]
fn recursive_workflows_reach_a_fixpoint() {
    let p = Program {
        tools: vec![email()],
        workflows: vec![
            workflow("a", &[("risk", name("critical"))], vec![step("b", call("b"), &[])]),
            workflow(
                "b",
                &[("risk", name("critical"))],
                vec![step("a", call("a"), &[]), step("mail", call("email.send"), &[])],
            ),
        ],
        ..Program::default()
    };
    let (facts, diags) = facts_of(&p);
    assert!(diags.is_empty(), "{diags:#?}");
    assert!(facts.iter().all(|f| f.2 == Risk::High), "{facts:?}");
    assert!(facts.iter().all(|f| f.3 == Effect::External), "{facts:?}");
}

#[test]
fn llm_steps_are_low_and_pure_unless_raised_and_fan_outs_use_their_body() {
    let p = Program {
        tools: vec![email()],
        workflows: vec![workflow(
            "w",
            &[("risk", name("high"))],
            vec![
                step("plain", llm(), &[]),
                step("raised", llm(), &[("risk", name("medium"))]),
                step("each", fan_out(call("email.send")), &[]),
            ],
        )],
        ..Program::default()
    };
    let (facts, diags) = facts_of(&p);
    assert!(diags.is_empty(), "{diags:#?}");
    let got: Vec<_> = facts.iter().map(|f| (f.2, f.3, f.4)).collect();
    assert_eq!(
        got,
        vec![
            (Risk::Low, Effect::Pure, StepKind::Llm),
            (Risk::Medium, Effect::Pure, StepKind::Llm),
            (Risk::High, Effect::External, StepKind::Tool),
        ]
    );
}

#[test]
fn a_fallback_raises_the_risk_of_its_step() {
    let p = Program {
        tools: vec![email(), tool("sql.query", &[])],
        workflows: vec![workflow("w", &[], vec![step("q", call("sql.query"), &[("fallback", call("email.send"))])])],
        ..Program::default()
    };
    let (facts, diags) = facts_of(&p);
    assert_eq!((facts[0].2, facts[0].3), (Risk::High, Effect::External));
    assert!(diags[0].message.contains("its `fallback:` may run, and `email.send` is declared `risk: high`"), "{}", diags[0].message);
}

#[test]
fn unknown_levels_are_reported_with_a_suggestion() {
    let p = Program {
        tools: vec![tool("x.y", &[("risk", name("hgh")), ("effect", name("extrnal"))])],
        workflows: vec![workflow("w", &[("risk", string("high"))], vec![step("s", call("x.y"), &[])])],
        ..Program::default()
    };
    let (_, diags) = facts_of(&p);
    let got: Vec<_> = diags.iter().map(|d| (d.code.as_str(), d.message.as_str(), d.help.clone().unwrap_or_default())).collect();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[0].0, "E0101");
    assert_eq!(got[0].1, "unknown risk level `hgh`");
    assert!(got[0].2.starts_with("did you mean `high`?"), "{}", got[0].2);
    assert_eq!(got[1].1, "unknown effect `extrnal`");
    assert!(got[1].2.starts_with("did you mean `external`?"));
    assert_eq!(got[2].0, "E0201");
    assert_eq!(got[2].1, "`risk:` takes a risk level: `low`, `medium`, `high` or `critical`");
}

#[test]
fn unresolved_calls_are_left_to_the_resolver() {
    let p = Program { workflows: vec![workflow("w", &[], vec![step("s", call("nope.tool"), &[])])], ..Program::default() };
    let (facts, diags) = facts_of(&p);
    assert!(facts.is_empty());
    assert!(diags.is_empty());
}

#[test]
fn did_you_mean_counts_a_swap_as_one_edit() {
    assert_eq!(did_you_mean("kidn", ["risk", "kind", "tool"]), Some("kind"));
    assert_eq!(did_you_mean("hgh", RISK_LEVELS.iter().copied()), Some("high"));
    assert_eq!(did_you_mean("zzzz", RISK_LEVELS.iter().copied()), None);
}
