//! Risk and policy over real source: the facts and rules handed to the IR.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use aos_compiler::check::policy::{self, Decision, Facts, StepGovernance};
use aos_compiler::check::{FileLoader, resolve};
use aos_compiler::ir::{Cmp, Cond, Effect, Fact, PolicyAction, Risk, StepKind, Trust};
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
            a: Box::new(Cond::Compare { fact: Fact::Tool, cmp: Cmp::Eq, value: "shell.exec".into() }),
            b: Box::new(Cond::Compare { fact: Fact::Trust, cmp: Cmp::Lt, value: "trusted".into() }),
        }
    );
    assert_eq!(report.rules[1].text, "require approval when risk >= high or trust == untrusted and effect == external");
    let step = report.steps.get(&("clean".to_string(), "x".to_string())).copied().unwrap();
    assert_eq!(step, StepGovernance { risk: Risk::High, effect: Effect::External, kind: StepKind::Tool });

    // What the runtime will decide with the run's trust.
    let facts = Facts { risk: step.risk, kind: step.kind, effect: step.effect, tool: Some("shell.exec") };
    assert_eq!(policy::decide(&deny.cond, &facts), Decision::Dynamic);
    assert!(policy::evaluate(&deny.cond, &facts, Trust::Basic));
    assert!(!policy::evaluate(&deny.cond, &facts, Trust::Trusted));
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
    let get = |s: &str| report.steps.get(&("w".to_string(), s.to_string())).copied().unwrap();
    assert_eq!(get("rows"), StepGovernance { risk: Risk::Low, effect: Effect::Read, kind: StepKind::Tool });
    assert_eq!(get("sent"), StepGovernance { risk: Risk::High, effect: Effect::External, kind: StepKind::Tool });
}
