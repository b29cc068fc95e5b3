//! Running a test block (`aosc test`): the workflow runs through the real
//! run core and driver, in this process, with a throwaway in-memory store,
//! the scripted replies of each role standing in for every model and the
//! scripted results of each tool standing in for every tool. Nothing
//! reaches the network or the user's `AOS_HOME`.
//!
//! The run's cost is exact: each scripted reply is counted with the model's
//! token bound and priced at the model's declared prices
//! ([`aos_compiler::cost::Usd`]), summed without rounding.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aos_compiler::cost::Usd;
use aos_compiler::ir::{Program, Trust};
use aos_compiler::testplan::{Expect, Script, TestCase};
use serde_json::Value;

use crate::bus::InProcessBus;
use crate::events::{RunStatus, Transition};
use crate::fabric::agent::{call_text, ToolCall};
use crate::fabric::{Completion, Fabric, Provider, ProviderError, Request};
use crate::store::BoxFuture;
use crate::store::sqlite::SqliteStore;
use crate::tools::{Tool, ToolCtx, ToolError, Tools};
use crate::{RunOptions, Runtime, RuntimeError, Verdict};

/// What a test's run did, and which expectations failed.
#[derive(Clone, Debug)]
pub struct TestOutcome {
    pub status: RunStatus,
    pub output: Option<Value>,
    pub error: Option<String>,
    /// The exact cost of the scripted replies.
    pub cost: Usd,
    /// Steps that succeeded, in the order they did.
    pub ran: Vec<String>,
    pub skipped: Vec<String>,
    /// Steps that asked for approval, in order.
    pub approvals: Vec<String>,
    pub failures: Vec<Failure>,
}

/// One expectation that did not hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// The `expect` line as written.
    pub expectation: String,
    pub expected: String,
    pub actual: String,
}

impl TestOutcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// A queue of scripted results: used in order, the last one repeated.
struct Queue {
    scripts: Vec<Script>,
    next: usize,
}

impl Queue {
    fn take(&mut self) -> Option<Script> {
        let s = self.scripts.get(self.next).or_else(|| self.scripts.last()).cloned();
        self.next += 1;
        s
    }
}

fn queues(scripts: &BTreeMap<String, Vec<Script>>) -> Mutex<HashMap<String, Queue>> {
    Mutex::new(scripts.iter().map(|(k, v)| (k.clone(), Queue { scripts: v.clone(), next: 0 })).collect())
}

/// The models' stand-in: replies by role, in order.
struct ScriptedLlm {
    roles: Mutex<HashMap<String, Queue>>,
    /// Every billed reply: exact cost so far.
    spent: Mutex<Usd>,
}

impl Provider for ScriptedLlm {
    fn complete<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let script = self.roles.lock().ok().and_then(|mut r| r.get_mut(&req.role).and_then(Queue::take));
            let mut tool_calls = Vec::new();
            let text = match script {
                Some(Script::Returns(Value::String(s))) => s,
                Some(Script::Returns(v)) => v.to_string(),
                Some(Script::Fails(m)) => return Err(ProviderError::Fatal(m)),
                Some(Script::Calls { tool, args }) => {
                    let Some(conv) = &req.conversation else {
                        return Err(ProviderError::Fatal(format!(
                            "the test scripts a call of `{tool}` for role `{}`, but this step is not an agent",
                            req.role
                        )));
                    };
                    let id = format!("call_{}", conv.history.len());
                    tool_calls.push(ToolCall { id, name: aos_compiler::ir::AgentTool::wire_name_of(&tool), args });
                    String::new()
                }
                None => {
                    return Err(ProviderError::Fatal(format!(
                        "the test scripts no reply for role `{}` (add `given llm {} replies …`)",
                        req.role, req.role
                    )));
                }
            };
            let input_text = match &req.conversation {
                Some(conv) => conv.transcript(&req.prompt),
                None => req.prompt.clone(),
            };
            let output_text = if tool_calls.is_empty() { text.clone() } else { tool_calls.iter().map(call_text).collect::<Vec<_>>().join("\n") };
            let input_tokens = crate::tokens::count_for(&req.model, &input_text);
            let output_tokens = crate::tokens::count_for(&req.model, &output_text);
            let cost = Usd::of_tokens(input_tokens, req.model.input_per_m).plus(Usd::of_tokens(output_tokens, req.model.output_per_m));
            if let Ok(mut s) = self.spent.lock() {
                *s = s.plus(cost);
            }
            Ok(Completion { text, input_tokens, output_tokens, tool_calls, ..Completion::default() })
        })
    }
}

/// A tool's stand-in: results in order.
struct ScriptedTool {
    name: String,
    results: Arc<Mutex<HashMap<String, Queue>>>,
}

impl Tool for ScriptedTool {
    fn call<'a>(&'a self, _args: Value, _ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let script = self.results.lock().ok().and_then(|mut r| r.get_mut(&self.name).and_then(Queue::take));
            match script {
                Some(Script::Returns(v)) => Ok(v),
                Some(Script::Fails(m)) => Err(ToolError::Failed(m)),
                Some(Script::Calls { .. }) => Err(ToolError::BadInput(format!("tool `{}` has a scripted model turn for a result", self.name))),
                None => Err(ToolError::BadInput(format!("the test scripts no result for tool `{}` (add `given tool {} returns …`)", self.name, self.name))),
            }
        })
    }
}

/// A directory for run workspaces, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch() -> std::io::Result<Scratch> {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!("aosc-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir)?;
    Ok(Scratch(dir))
}

/// Runs one test case of `program` and checks its expectations.
pub async fn run(program: &Program, case: &TestCase) -> Result<TestOutcome, RuntimeError> {
    // Retries happen at once: a test does not wait out backoffs.
    let mut program = program.clone();
    for wf in program.workflows.values_mut() {
        for s in &mut wf.steps {
            s.backoff = None;
        }
    }
    let store = Arc::new(SqliteStore::in_memory().await?);
    let dir = scratch().map_err(|e| RuntimeError::Internal(format!("cannot create a scratch directory: {e}")))?;
    let llm = Arc::new(ScriptedLlm { roles: queues(&case.llm), spent: Mutex::new(Usd::ZERO) });
    let results = Arc::new(queues(&case.tools));
    let stand_ins: HashMap<String, Arc<dyn Tool>> = program
        .tools
        .keys()
        .chain(case.tools.keys())
        .map(|name| (name.clone(), Arc::new(ScriptedTool { name: name.clone(), results: results.clone() }) as Arc<dyn Tool>))
        .collect();
    let rt = Runtime {
        store: store.clone(),
        bus: Arc::new(InProcessBus::new()),
        fabric: Arc::new(Fabric::answered_by(llm.clone())),
        tools: Arc::new(Tools::stand_ins(stand_ins)),
        home: dir.0.clone(),
        // Hermetic: no secret from the environment or the secret store.
        secret_source: Arc::new(crate::secrets::Fixed(BTreeMap::new())),
        cache: Arc::new(crate::cache::StoreCache::new(store.clone())),
    };
    let run_id = rt.create(&program, &case.workflow, case.inputs.clone(), Trust::Basic).await?;
    let mut report = rt.execute(&run_id, RunOptions::default()).await?;
    let mut answered: Vec<String> = Vec::new();
    while report.status == RunStatus::WaitingApproval {
        let journal = rt.store.journal(&run_id).await?;
        let mut waiting: Vec<String> = Vec::new();
        for e in &journal {
            match &e.transition {
                Transition::ApprovalRequested { step, .. } => waiting.push(step.clone()),
                Transition::ApprovalGranted { step, .. } | Transition::ApprovalDenied { step, .. } => waiting.retain(|s| s != step),
                _ => {}
            }
        }
        let mut decided = false;
        for step in waiting {
            if answered.contains(&step) {
                continue;
            }
            if let Some(approve) = case.answers.get(&step) {
                let verdict = if *approve { Verdict::Approve } else { Verdict::Deny };
                rt.decide(&run_id, &step, verdict, "aosc test", None).await?;
                answered.push(step);
                decided = true;
            }
        }
        if !decided {
            break;
        }
        report = rt.execute(&run_id, RunOptions::default()).await?;
    }
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    let mut approvals = Vec::new();
    for e in rt.store.journal(&run_id).await? {
        match e.transition {
            Transition::StepSucceeded { step, .. } => ran.push(step),
            Transition::StepSkipped { step, .. } => skipped.push(step),
            Transition::ApprovalRequested { step, .. } if !approvals.contains(&step) => approvals.push(step),
            _ => {}
        }
    }
    let cost = llm.spent.lock().map(|s| *s).unwrap_or(Usd::ZERO);
    let mut out = TestOutcome { status: report.status, output: report.output, error: report.error, cost, ran, skipped, approvals, failures: Vec::new() };
    out.failures = case.expects.iter().filter_map(|x| judge(&out, &x.kind).map(|(expected, actual)| Failure { expectation: x.text.clone(), expected, actual })).collect();
    drop(dir);
    Ok(out)
}

/// `None` when the expectation holds, else what was expected and what happened.
fn judge(out: &TestOutcome, expect: &Expect) -> Option<(String, String)> {
    let list = |v: &[String]| format!("[{}]", v.join(", "));
    match expect {
        Expect::Output { equal, value } => {
            let actual = out.output.clone().unwrap_or(Value::Null);
            let same = actual == *value || numbers_equal(&actual, value);
            (same != *equal).then(|| {
                let prefix = if *equal { "" } else { "not " };
                (format!("{prefix}{}", pretty(value)), pretty(&actual))
            })
        }
        Expect::Cost { cmp, micros } => {
            let bound = Usd::from_micros(*micros);
            (!cmp.holds(&out.cost, &bound)).then(|| (format!("cost {} {bound}", cmp.as_str()), exact(out.cost)))
        }
        Expect::Ran(steps) => {
            let missing: Vec<String> = steps.iter().filter(|s| !out.ran.contains(s)).cloned().collect();
            (!missing.is_empty()).then(|| (format!("ran {}", list(steps)), format!("ran {} (not {})", list(&out.ran), list(&missing))))
        }
        Expect::Skipped(steps) => {
            let missing: Vec<String> = steps.iter().filter(|s| !out.skipped.contains(s)).cloned().collect();
            (!missing.is_empty()).then(|| (format!("skipped {}", list(steps)), format!("skipped {}", list(&out.skipped))))
        }
        Expect::Approvals(steps) => {
            let mut a = steps.clone();
            let mut b = out.approvals.clone();
            a.sort();
            b.sort();
            (a != b).then(|| (format!("approvals {}", list(steps)), format!("approvals {}", list(&out.approvals))))
        }
        Expect::Status(s) => (out.status.as_str() != s).then(|| {
            let why = out.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
            (format!("status {s}"), format!("status {}{why}", out.status.as_str()))
        }),
        Expect::Error(text) => {
            let holds = out.status == RunStatus::Failed && out.error.as_deref().is_some_and(|e| e.contains(text.as_str()));
            (!holds).then(|| {
                (format!("a failed run with an error containing {text:?}"), format!("status {}, error {:?}", out.status.as_str(), out.error.as_deref().unwrap_or("none")))
            })
        }
    }
}

/// `1` and `1.0` are the same number for a test.
fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => a.is_number() && b.is_number() && x == y,
        _ => false,
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// An exact amount: micro-dollars with the pico-dollar rest, never rounded.
pub fn exact(u: Usd) -> String {
    let whole = u.0 / 1_000_000_000_000;
    let frac = u.0 % 1_000_000_000_000;
    if frac == 0 {
        return format!("${whole}");
    }
    let digits = format!("{frac:012}");
    format!("${whole}.{}", digits.trim_end_matches('0'))
}
