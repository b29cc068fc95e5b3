//! Builders of IR values for tests and benchmarks, so that scenarios can be
//! written before (and independently of) the checker.

use std::collections::BTreeMap;

use aos_compiler::ir::{
    Call, CostBound, Effect, Expr, InterpPart, Model, Param, Program, Provider, Risk, SimOptions, Step, StepKind, Tool, ToolImpl, Type,
    Workflow, IR_VERSION,
};
use serde_json::Value;

/// A `sim` model with prices per million tokens.
pub fn sim_model(name: &str, sim: SimOptions) -> Model {
    Model {
        name: name.into(),
        provider: Provider::Sim,
        model_id: name.into(),
        input_per_m: 0.10,
        output_per_m: 0.40,
        context: 128_000,
        base_url: None,
        structured: Default::default(),
        sim,
    }
}

/// An empty program.
pub fn program() -> Program {
    Program { version: IR_VERSION, models: BTreeMap::new(), roles: BTreeMap::new(), tools: BTreeMap::new(), rules: Vec::new(), workflows: BTreeMap::new() }
}

/// Adds a model and a role bound to it (and to nothing else).
pub fn with_role(p: &mut Program, role: &str, models: Vec<Model>) {
    let names = models.iter().map(|m| m.name.clone()).collect();
    for m in models {
        p.models.insert(m.name.clone(), m);
    }
    p.roles.insert(role.into(), names);
}

/// Declares a built-in tool (as `use std.file` would).
pub fn builtin_tool(name: &str, params: &[&str], effect: Effect, risk: Risk) -> Tool {
    Tool {
        name: name.into(),
        params: params.iter().map(|p| Param { name: (*p).into(), ty: Type::String, default: None }).collect(),
        ret: Type::Json,
        risk,
        effect,
        max_output_tokens: 8192,
        timeout_ms: None,
        implementation: ToolImpl::Builtin,
    }
}

/// An empty workflow.
pub fn workflow(name: &str) -> Workflow {
    Workflow {
        name: name.into(),
        params: Vec::new(),
        ret: None,
        ret_expr: None,
        intent: None,
        budget_usd: None,
        risk: Risk::Medium,
        max_concurrency: None,
        max_param_tokens: 2048,
        priority: 0,
        trigger: None,
        steps: Vec::new(),
        cost_bound_usd: 0.0,
    }
}

/// A String parameter with an optional default.
pub fn param(name: &str, default: Option<&str>) -> Param {
    Param { name: name.into(), ty: Type::String, default: default.map(|d| lit(Value::String(d.into()))) }
}

fn step(name: &str, kind: StepKind, call: Call) -> Step {
    Step {
        name: name.into(),
        kind,
        ty: Type::String,
        schema: None,
        typed: false,
        needs: Vec::new(),
        call,
        fan_out: None,
        deps: Vec::new(),
        when: None,
        retry: 0,
        backoff: None,
        timeout_ms: None,
        approval: None,
        verify: None,
        max_tokens: 1024,
        max_reply_bytes: 4096,
        max_input_tokens: None,
        max_output_tokens: 8192,
        risk: Risk::Low,
        effect: Effect::Read,
        fallback: None,
        idempotency_key: None,
        cache: None,
        route: None,
        cost: CostBound { usd: 0.001, ..Default::default() },
    }
}

/// `step NAME = llm ROLE(prompt)`.
pub fn llm(name: &str, role: &str, prompt: Expr) -> Step {
    step(name, StepKind::Llm, Call::Llm { role: role.into(), prompt, agent: None })
}

/// `step NAME = TOOL(args)`.
pub fn tool(name: &str, tool: &str, args: Vec<(&str, Expr)>, effect: Effect) -> Step {
    let mut s = step(name, StepKind::Tool, Call::Tool { tool: tool.into(), args: args.into_iter().map(|(k, v)| (k.into(), v)).collect() });
    s.effect = effect;
    s
}

/// `step NAME = WORKFLOW(args)`.
pub fn call(name: &str, workflow: &str, args: Vec<(&str, Expr)>) -> Step {
    step(name, StepKind::Workflow, Call::Workflow { workflow: workflow.into(), args: args.into_iter().map(|(k, v)| (k.into(), v)).collect() })
}

pub fn lit(v: Value) -> Expr {
    Expr::Lit { value: v }
}

pub fn s(text: &str) -> Expr {
    lit(Value::String(text.into()))
}

pub fn step_ref(name: &str) -> Expr {
    Expr::Step { name: name.into() }
}

pub fn param_ref(name: &str) -> Expr {
    Expr::Param { name: name.into() }
}

pub fn var(name: &str) -> Expr {
    Expr::Var { name: name.into() }
}

/// An interpolated string from text and expressions.
pub fn interp(parts: Vec<Expr>) -> Expr {
    Expr::Interp {
        parts: parts
            .into_iter()
            .map(|e| match e {
                Expr::Lit { value: Value::String(t) } => InterpPart::Text { text: t },
                other => InterpPart::Expr { expr: other },
            })
            .collect(),
    }
}

/// Adds `step` to `wf`, deriving its data dependencies and the steps it
/// needs from the steps its expressions mention (as the checker does), and
/// whether its values are JSON from its type.
pub fn add(wf: &mut Workflow, mut step: Step) {
    let mut read = Vec::new();
    let mut exprs = step.call_exprs();
    if let Some(w) = &step.when {
        exprs.push(w);
    }
    for e in exprs {
        e.steps_read(false, &mut read);
    }
    let read: Vec<String> = read.into_iter().map(str::to_string).collect();
    for n in read {
        if !step.deps.contains(&n) {
            step.deps.push(n);
        }
    }
    step.derive_facts();
    wf.steps.push(step);
}

/// Replays a journal given as bytes over one of `programs` (IR JSON), as
/// a resume does: `replay`, `recover`, then a few rounds of `decide` with
/// every attempt failing at once. The first byte picks the program, the
/// rest is a JSON array of transitions; input that is not one is ignored.
/// The body of the `replay` fuzz target, and of the test that replays its
/// seeds: whatever the journal says, this never panics.
pub fn replay_journal_bytes(programs: &[&str], data: &[u8]) {
    use crate::core::{decide, on_result, recover, replay, AttemptOutcome, AttemptResult, RunCtx, RunState, Tick};
    use crate::events::{Transition, Usage};
    let Some((&pick, rest)) = data.split_first() else { return };
    let Some(text) = programs.get(usize::from(pick) % programs.len().max(1)) else { return };
    let Ok(program) = serde_json::from_str::<Program>(text) else { return };
    let Ok(journal) = serde_json::from_slice::<Vec<Transition>>(rest) else { return };
    let Some(name) = program.workflows.keys().next().cloned() else { return };
    let program = std::sync::Arc::new(program);
    let Some(wf) = crate::core::WorkflowRef::new(program.clone(), &name) else { return };
    let ctx = RunCtx {
        run_id: "replayed".into(),
        program,
        wf,
        params: BTreeMap::new(),
        trust: aos_compiler::ir::Trust::Basic,
        secrets: crate::interp::Secrets::default(),
    };
    let mut state = RunState::new(std::sync::Arc::new(ctx));
    replay(&mut state, &journal);
    let mut tick = Tick::default();
    recover(&mut state, &mut tick);
    let mut now = 1_000;
    for _ in 0..16 {
        let (tick, _) = decide(&mut state, now);
        if tick.launches.is_empty() {
            break;
        }
        for l in tick.launches {
            let r = AttemptResult {
                step: l.step,
                item: l.item,
                attempt: l.attempt,
                outcome: AttemptOutcome::Failed("replayed".into()),
                usage: Usage::default(),
                decisions: Vec::new(),
                idempotency: None,
            };
            let mut t = Tick::default();
            on_result(&mut state, &mut t, r);
        }
        now += 60_000;
    }
}
