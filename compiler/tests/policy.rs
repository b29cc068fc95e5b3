//! Risk and policy over real source: the facts and rules handed to the IR.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use aos_compiler::check::policy::{self, Decision, Facts, StepGovernance};
use aos_compiler::check::{FileLoader, resolve};
use aos_compiler::ir::{Cmp, Cond, Effect, PolicyAction, PolicyRule, PolicyValue, Risk, StepKind, Trust};
use aos_compiler::source::Sources;

struct NoFiles;

impl FileLoader for NoFiles {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string()))
    }
}

fn analyze(text: &str) -> (policy::PolicyReport, Vec<aos_compiler::Diagnostic>) {
    let mut sources = Sources::new();
    let main = sources.add("main.aos", text);
    let mut diags = Vec::new();
    let loaded = resolve::load(main, &mut sources, &NoFiles, &mut diags);
    let env = resolve::build_env(&loaded, &mut diags);
    let report = policy::analyze(&env, &mut diags);
    (report, diags)
}

#[test]
fn a_trust_rule_goes_to_the_ir_without_a_diagnostic() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/check/E0603_dynamic_trust_ok.aos"),
    )
    .unwrap();
    let (report, diags) = analyze(&text);
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(report.rules.len(), 2);
    let deny = &report.rules[0];
    assert_eq!(deny.policy, "house_rules");
    assert_eq!(deny.action, PolicyAction::Deny);
    assert_eq!(deny.text, "deny when tool == \"shell.exec\" and trust < trusted");
    assert_eq!(
        deny.cond,
        Cond::And {
            a: Box::new(Cond::Compare { cmp: Cmp::Eq, value: PolicyValue::Tool("shell.exec".into()) }),
            b: Box::new(Cond::Compare { cmp: Cmp::Lt, value: PolicyValue::Trust(Trust::Trusted) }),
        }
    );
    assert_eq!(report.rules[1].text, "require approval when risk >= high or trust == untrusted and effect == external");
    let step = report.steps.get("clean").and_then(|w| w.get("x")).copied().unwrap();
    assert_eq!(step, StepGovernance { risk: Risk::High, effect: Effect::External, kind: StepKind::Tool });

    // What the runtime will decide with the run's trust.
    let facts = Facts { risk: step.risk, kind: step.kind, effect: step.effect, tool: Some("shell.exec") };
    assert_eq!(policy::decide(&deny.cond, &facts), Decision::Dynamic);
    assert!(policy::evaluate(&deny.cond, &facts, Trust::Basic));
    assert!(!policy::evaluate(&deny.cond, &facts, Trust::Trusted));
}

/// IR written before policy values were typed (journals keep the program
/// of every run) still loads: the string values are parsed once, on load,
/// and the rule means what it meant.
#[test]
fn an_old_ir_rule_with_string_values_loads_typed() {
    let old = serde_json::json!({
        "policy": "house_rules",
        "text": "deny when tool == \"shell.exec\" and trust < trusted or risk >= high and not effect == pure",
        "action": "deny",
        "cond": {"op": "or",
            "a": {"op": "and",
                "a": {"op": "compare", "fact": "tool", "cmp": "eq", "value": "shell.exec"},
                "b": {"op": "compare", "fact": "trust", "cmp": "lt", "value": "trusted"}},
            "b": {"op": "and",
                "a": {"op": "compare", "fact": "risk", "cmp": "ge", "value": "high"},
                "b": {"op": "not", "a": {"op": "compare", "fact": "effect", "cmp": "eq", "value": "pure"}}}}
    });
    let rule: PolicyRule = serde_json::from_value(old).unwrap();
    let Cond::Or { a, b } = &rule.cond else { panic!("{:?}", rule.cond) };
    assert_eq!(
        **a,
        Cond::And {
            a: Box::new(Cond::Compare { cmp: Cmp::Eq, value: PolicyValue::Tool("shell.exec".into()) }),
            b: Box::new(Cond::Compare { cmp: Cmp::Lt, value: PolicyValue::Trust(Trust::Trusted) }),
        }
    );
    let Cond::And { a: risk, b: not } = &**b else { panic!("{b:?}") };
    assert_eq!(**risk, Cond::Compare { cmp: Cmp::Ge, value: PolicyValue::Risk(Risk::High) });
    assert_eq!(**not, Cond::Not { a: Box::new(Cond::Compare { cmp: Cmp::Eq, value: PolicyValue::Effect(Effect::Pure) }) });
    let shell = Facts { risk: Risk::Low, kind: StepKind::Tool, effect: Effect::External, tool: Some("shell.exec") };
    assert!(rule.cond.holds(&shell, Trust::Basic));
    assert!(!rule.cond.holds(&shell, Trust::Trusted));
    // Written again, it is in today's typed form, and reads back the same.
    let new = serde_json::to_value(&rule).unwrap();
    assert_eq!(new["cond"]["a"]["b"], serde_json::json!({"op": "compare", "cmp": "lt", "value": {"trust": "trusted"}}));
    assert_eq!(serde_json::from_value::<PolicyRule>(new).unwrap(), rule);
    // A value its fact does not have is a load error, never a rule that
    // silently never matches.
    let bad = serde_json::json!({"op": "compare", "fact": "risk", "cmp": "ge", "value": "severe"});
    let e = serde_json::from_value::<Cond>(bad).unwrap_err().to_string();
    assert!(e.contains("`severe` is not a value of the policy fact"), "{e}");
    let mixed = serde_json::json!({"op": "compare", "fact": "risk", "cmp": "ge", "value": {"trust": "admin"}});
    assert!(serde_json::from_value::<Cond>(mixed).is_err());
}

#[test]
fn stdlib_tools_give_their_declared_risk_and_effect() {
    let (report, diags) = analyze(
        r#"
use std.sql
use std.email
workflow w() {
  budget: $0
  step rows = sql.query(sql: "select 1")
  step sent = email.send(to: "a@example.com", subject: "s", body: "b") { approval: "ops" }
}
"#,
    );
    assert!(diags.is_empty(), "{diags:#?}");
    let get = |s: &str| report.steps.get("w").and_then(|w| w.get(s)).copied().unwrap();
    assert_eq!(get("rows"), StepGovernance { risk: Risk::Low, effect: Effect::Read, kind: StepKind::Tool });
    assert_eq!(get("sent"), StepGovernance { risk: Risk::High, effect: Effect::External, kind: StepKind::Tool });
}
