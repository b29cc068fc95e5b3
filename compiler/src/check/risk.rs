//! Risk and effect of every step (LANGUAGE.md §4 *Risk*), and the approval
//! ceiling of each workflow (E0602).
//!
//! A step's risk is the highest of its tool's declared `risk:` (default
//! `low`; LLM steps are `low`), its own `risk:`, its `fallback:` call, and,
//! for a call of another workflow, the highest risk among the callee's steps
//! that run unattended (without `approval:`). Its effect is its tool's
//! `effect:` (default `read`), `pure` for an LLM step, and for a workflow
//! call the strongest effect of the callee's steps. A fan-out has the risk
//! and effect of its body call.
//!
//! Workflow calls may be (mutually) recursive; the facts are then the least
//! fixpoint, computed by iterating until nothing rises, which always ends
//! because risks and effects only go up a finite ladder.
//!
//! This pass also validates the values of the `risk:` (tools, steps,
//! workflows) and `effect:` (tools) attributes.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{self, ExprKind};
use crate::check::env::{Decl, Env};
use crate::diagnostic::Diagnostic;
use crate::codes::Code;
use crate::ir::{Effect, Risk, StepKind, Trust};
use crate::source::FileId;
use crate::span::Span;

mod names;
mod read;
#[cfg(test)]
mod tests;

pub use names::*;
pub(crate) use read::{did_you_mean, one_of, read_effect, read_risk, unknown_value};

/// Why a step has the risk it has, for messages.
#[derive(Clone, Debug, PartialEq)]
pub enum RiskSource {
    /// Nothing raised it.
    Default,
    /// Its tool's declared `risk:`; the span of that attribute when the tool
    /// is the user's own (a label there helps; one into the stdlib does not).
    Tool { tool: String, risk: Risk, decl: Option<(FileId, Span)> },
    /// The step's own `risk:` attribute.
    Own { risk: Risk, span: Span },
    /// An unattended step of the called workflow.
    Callee { workflow: String, step: String, inner: Box<RiskSource> },
    /// The step's `fallback:` call.
    Fallback { inner: Box<RiskSource> },
}

impl RiskSource {
    /// Where the risk comes from, as a clause: "`email.send` is declared
    /// `risk: high`".
    pub fn describe(&self) -> String {
        self.describe_at(0)
    }

    fn describe_at(&self, depth: usize) -> String {
        match self {
            RiskSource::Default => "the default".to_string(),
            RiskSource::Tool { tool, risk, .. } => format!("`{tool}` is declared `risk: {}`", risk_name(*risk)),
            RiskSource::Own { risk, .. } if depth == 0 => format!("its own `risk: {}`", risk_name(*risk)),
            RiskSource::Own { risk, .. } => format!("that step's own `risk: {}`", risk_name(*risk)),
            RiskSource::Callee { workflow, step, inner } => format!(
                "it calls workflow `{workflow}`, whose step `{step}` runs without approval: {}",
                inner.describe_at(depth + 1)
            ),
            RiskSource::Fallback { inner } => format!("its `fallback:` may run, and {}", inner.describe_at(depth + 1)),
        }
    }
}

/// What the checker knows about one step for risk and policy.
#[derive(Clone, Debug)]
pub struct StepFacts<'a> {
    pub step: &'a ast::Step,
    pub kind: StepKind,
    /// The dotted name of the tool a tool step calls (the body's, for a
    /// fan-out).
    pub tool: Option<String>,
    pub risk: Risk,
    pub source: RiskSource,
    pub effect: Effect,
    /// The step has `approval:`.
    pub approval: bool,
    /// The step has `verify:`.
    pub verify: bool,
    /// The `fallback:` call, when it resolves: policies apply to it too.
    pub fallback: Option<FallbackFacts>,
    /// For an agent step, each listed tool that resolves: policies apply
    /// to each as a tool step of the step's risk.
    pub agent_tools: Vec<AgentToolFacts>,
}

/// One tool of an agent step (`tools:`).
#[derive(Clone, Debug, PartialEq)]
pub struct AgentToolFacts {
    pub tool: String,
    /// Where `tools:` lists it.
    pub span: Span,
    pub risk: Risk,
    pub effect: Effect,
}

/// The facts of a step's `fallback:` call by itself.
#[derive(Clone, Debug, PartialEq)]
pub struct FallbackFacts {
    /// The span of the fallback call.
    pub span: Span,
    pub kind: StepKind,
    pub tool: Option<String>,
    pub risk: Risk,
    pub effect: Effect,
}

/// The risk facts of one workflow.
#[derive(Clone, Debug)]
pub struct WorkflowFacts<'a> {
    pub name: String,
    pub decl: Decl<'a, ast::Workflow>,
    /// The workflow's `risk:` (default `medium`): the ceiling for unattended
    /// steps.
    pub ceiling: Risk,
    /// The span of the `risk:` attribute, when written.
    pub ceiling_span: Option<Span>,
    /// The steps whose call resolved, in source order (steps whose call is
    /// broken or unknown were reported elsewhere and are left out).
    pub steps: Vec<StepFacts<'a>>,
}

/// What a step calls.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Tool(String),
    Llm,
    /// `agent ROLE(…)` with the tools of its `tools:` (as listed, with spans).
    Agent(Vec<(String, Span)>),
    Workflow(String),
}

/// The target of a step's call, or `None` when it does not resolve (the
/// resolver or the type checker reports that).
fn call_target(env: &Env<'_>, call: &ast::Expr) -> Option<Target> {
    match &call.kind {
        ExprKind::Llm { .. } => Some(Target::Llm),
        ExprKind::For { body, .. } => call_target(env, body),
        ExprKind::Call { callee, .. } => {
            let name = Env::tool_name(callee);
            if env.tools.contains_key(&name) {
                Some(Target::Tool(name))
            } else if callee.len() == 1 && env.workflows.contains_key(&name) {
                Some(Target::Workflow(name))
            } else {
                None
            }
        }
        _ => None,
    }
}

#[derive(Clone, Debug)]
struct ToolFacts {
    risk: Risk,
    effect: Effect,
    decl: Option<(FileId, Span)>,
}

/// The part of a step's facts that does not depend on other workflows.
struct StaticStep<'a> {
    step: &'a ast::Step,
    target: Target,
    fallback: Option<(Target, Span)>,
    own: Option<(Risk, Span)>,
}

/// What a caller needs to know about a workflow.
#[derive(Clone, Debug, Default)]
struct Summary {
    /// The riskiest step that runs without approval: (risk, step, source).
    unattended: Option<(Risk, String, RiskSource)>,
    /// The strongest effect of any step (`pure` for an empty workflow).
    effect: Option<Effect>,
}

impl Summary {
    fn key(&self) -> (Option<Risk>, u8) {
        (self.unattended.as_ref().map(|u| u.0), self.effect.map_or(0, effect_rank))
    }
}

/// Computes the risk and effect of every step of every workflow, in source
/// order, reporting malformed `risk:`/`effect:` values.
pub fn analyze<'a>(env: &Env<'a>, diags: &mut Vec<Diagnostic>) -> Vec<WorkflowFacts<'a>> {
    let tools = tool_facts(env, diags);

    let mut order: Vec<(&String, &Decl<'a, ast::Workflow>)> = env.workflows.iter().collect();
    order.sort_by_key(|(_, d)| (d.file, d.span.start));

    // Read every workflow's own attributes once (diagnostics once).
    let mut statics: BTreeMap<&str, Vec<StaticStep<'a>>> = BTreeMap::new();
    let mut ceilings: BTreeMap<&str, (Risk, Option<Span>)> = BTreeMap::new();
    for (name, decl) in &order {
        let wf = decl.decl;
        let ceiling = match Env::attr(&wf.attrs, "risk") {
            Some(attr) => (read_risk(attr, decl.file, diags).unwrap_or(Risk::Medium), Some(attr.span)),
            None => (Risk::Medium, None),
        };
        ceilings.insert(name.as_str(), ceiling);
        let mut steps = Vec::new();
        for step in &wf.steps {
            let attrs = Env::entries(&step.attrs);
            let own = Env::attr(attrs, "risk").and_then(|a| read_risk(a, decl.file, diags).map(|r| (r, a.span)));
            let Some(mut target) = call_target(env, &step.call) else { continue };
            if target == Target::Llm && crate::check::agent::is_agent(step) {
                target = Target::Agent(crate::check::agent::tools_of(step));
            }
            let fallback = Env::attr(attrs, "fallback").and_then(|a| call_target(env, &a.value).map(|t| (t, a.value.span)));
            steps.push(StaticStep { step, target, fallback, own });
        }
        statics.insert(name.as_str(), steps);
    }

    // Callees first, so that without recursion one pass settles everything.
    let post = callees_first(&order, &statics);
    let mut summaries: BTreeMap<String, Summary> = BTreeMap::new();
    let mut facts: BTreeMap<&str, Vec<StepFacts<'a>>> = BTreeMap::new();
    // Each round that changes something raises some summary on a finite
    // ladder, so this ends; the bound is only a guard.
    let max_rounds = 8 * post.len() + 2;
    for _ in 0..max_rounds {
        let mut changed = false;
        for name in &post {
            let Some(steps) = statics.get(name) else { continue };
            let computed: Vec<StepFacts<'a>> = steps.iter().map(|s| step_facts(s, &tools, &summaries)).collect();
            let summary = summarize(&computed);
            let old = summaries.get(*name).map(Summary::key);
            if old != Some(summary.key()) {
                changed = true;
            }
            summaries.insert((*name).to_string(), summary);
            facts.insert(*name, computed);
        }
        if !changed {
            break;
        }
    }

    order
        .into_iter()
        .map(|(name, decl)| {
            let (ceiling, ceiling_span) = ceilings.get(name.as_str()).copied().unwrap_or((Risk::Medium, None));
            WorkflowFacts {
                name: name.clone(),
                decl: *decl,
                ceiling,
                ceiling_span,
                steps: facts.remove(name.as_str()).unwrap_or_default(),
            }
        })
        .collect()
}

/// E0602 for one step, if it runs unattended above the ceiling or is
/// `critical`.
pub fn ceiling_violation(wf: &WorkflowFacts<'_>, s: &StepFacts<'_>) -> Option<Diagnostic> {
    if s.approval {
        return None;
    }
    let file = wf.decl.file;
    let name = &s.step.name;
    let risk = risk_name(s.risk);
    let why = s.source.describe();
    let diag = if s.risk == Risk::Critical {
        Diagnostic::error(
            Code::E0602,
            file,
            name.span,
            format!("step `{}` is `critical` ({why}) and has no `approval:`; a critical step always needs one", name.name),
        )
        .with_primary_label("critical, and unattended")
        .with_help("add `approval: \"…\"` to the step, naming the group that must approve it")
    } else if s.risk > wf.ceiling {
        let ceiling = risk_name(wf.ceiling);
        let set = if wf.ceiling_span.is_some() { "" } else { " (the default)" };
        Diagnostic::error(
            Code::E0602,
            file,
            name.span,
            format!(
                "step `{}` has risk `{risk}` ({why}), above workflow `{}`'s ceiling `{ceiling}`{set}, and has no `approval:`",
                name.name, wf.name
            ),
        )
        .with_primary_label(format!("risk `{risk}`, unattended"))
        .with_help("add `approval: \"…\"` to the step, or raise the workflow's `risk:`")
    } else {
        return None;
    };
    Some(label_source(with_ceiling_label(diag, wf), &s.source, file))
}

fn with_ceiling_label(diag: Diagnostic, wf: &WorkflowFacts<'_>) -> Diagnostic {
    match wf.ceiling_span {
        Some(span) => diag.with_label(wf.decl.file, span, format!("the ceiling is `{}`", risk_name(wf.ceiling))),
        None => diag,
    }
}

/// Adds a label where the risk was declared, when that is in the user's
/// code and not already the step itself.
fn label_source(diag: Diagnostic, source: &RiskSource, file: FileId) -> Diagnostic {
    match source {
        RiskSource::Tool { risk, decl: Some((tfile, span)), .. } => {
            diag.with_label(*tfile, *span, format!("declared `{}` here", risk_name(*risk)))
        }
        RiskSource::Own { risk, span } => diag.with_label(file, *span, format!("raised to `{}` here", risk_name(*risk))),
        _ => diag,
    }
}

fn tool_facts(env: &Env<'_>, diags: &mut Vec<Diagnostic>) -> BTreeMap<String, ToolFacts> {
    let mut out = BTreeMap::new();
    // Stdlib declarations are ours and known good; never report into them.
    let mut sink = Vec::new();
    for (name, decl) in &env.tools {
        let diags: &mut Vec<Diagnostic> = if decl.std { &mut sink } else { &mut *diags };
        let attrs = Env::entries(&decl.decl.attrs);
        let (risk, span) = match Env::attr(attrs, "risk") {
            Some(a) => (read_risk(a, decl.file, diags).unwrap_or(Risk::Low), Some(a.span)),
            None => (Risk::Low, None),
        };
        let effect = Env::attr(attrs, "effect").and_then(|a| read_effect(a, decl.file, diags)).unwrap_or(Effect::Read);
        let decl_span = if decl.std { None } else { span.map(|s| (decl.file, s)) };
        out.insert(name.clone(), ToolFacts { risk, effect, decl: decl_span });
    }
    out
}

/// The facts of one step given the current summaries of the workflows it
/// may call.
fn step_facts<'a>(s: &StaticStep<'a>, tools: &BTreeMap<String, ToolFacts>, summaries: &BTreeMap<String, Summary>) -> StepFacts<'a> {
    let attrs = Env::entries(&s.step.attrs);
    let mut risk = Risk::Low;
    let mut source = RiskSource::Default;
    let mut agent_tools = Vec::new();
    let (kind, tool, effect) = match &s.target {
        Target::Llm => (StepKind::Llm, None, Effect::Pure),
        Target::Agent(listed) => {
            let mut effect = Effect::Pure;
            for (name, span) in listed {
                let Some(t) = tools.get(name) else { continue };
                if t.risk > risk {
                    risk = t.risk;
                    source = RiskSource::Tool { tool: name.clone(), risk: t.risk, decl: t.decl };
                }
                effect = stronger_effect(effect, t.effect);
                agent_tools.push(AgentToolFacts { tool: name.clone(), span: *span, risk: t.risk, effect: t.effect });
            }
            (StepKind::Llm, None, effect)
        }
        Target::Tool(name) => {
            let t = tools.get(name);
            if let Some(t) = t.filter(|t| t.risk > risk) {
                risk = t.risk;
                source = RiskSource::Tool { tool: name.clone(), risk: t.risk, decl: t.decl };
            }
            (StepKind::Tool, Some(name.clone()), t.map_or(Effect::Read, |t| t.effect))
        }
        Target::Workflow(name) => {
            let sum = summaries.get(name);
            if let Some((r, step, inner)) = sum.and_then(|s| s.unattended.as_ref()).filter(|u| u.0 > risk) {
                risk = *r;
                source = RiskSource::Callee { workflow: name.clone(), step: step.clone(), inner: Box::new(inner.clone()) };
            }
            (StepKind::Workflow, None, sum.and_then(|s| s.effect).unwrap_or(Effect::Pure))
        }
    };
    if let Some((own, span)) = s.own.filter(|(own, _)| *own > risk) {
        risk = own;
        source = RiskSource::Own { risk: own, span };
    }
    let mut effect = effect;
    let mut fallback = None;
    if let Some((fb, span)) = &s.fallback {
        let (fb_risk, fb_source, fb_effect) = target_risk(fb, tools, summaries);
        effect = stronger_effect(effect, fb_effect);
        let (kind, tool) = match fb {
            Target::Llm | Target::Agent(_) => (StepKind::Llm, None),
            Target::Tool(name) => (StepKind::Tool, Some(name.clone())),
            Target::Workflow(_) => (StepKind::Workflow, None),
        };
        fallback = Some(FallbackFacts { span: *span, kind, tool, risk: fb_risk, effect: fb_effect });
        if fb_risk > risk {
            risk = fb_risk;
            source = RiskSource::Fallback { inner: Box::new(fb_source) };
        }
    }
    StepFacts {
        step: s.step,
        kind,
        tool,
        risk,
        source,
        effect,
        approval: Env::attr(attrs, "approval").is_some(),
        verify: Env::attr(attrs, "verify").is_some(),
        fallback,
        agent_tools,
    }
}

/// The risk and effect a call brings by itself (for `fallback:`).
fn target_risk(t: &Target, tools: &BTreeMap<String, ToolFacts>, summaries: &BTreeMap<String, Summary>) -> (Risk, RiskSource, Effect) {
    match t {
        // An agent cannot be a fallback (E0901).
        Target::Llm | Target::Agent(_) => (Risk::Low, RiskSource::Default, Effect::Pure),
        Target::Tool(name) => match tools.get(name) {
            Some(f) => (f.risk, RiskSource::Tool { tool: name.clone(), risk: f.risk, decl: f.decl }, f.effect),
            None => (Risk::Low, RiskSource::Default, Effect::Read),
        },
        Target::Workflow(name) => {
            let sum = summaries.get(name);
            let effect = sum.and_then(|s| s.effect).unwrap_or(Effect::Pure);
            match sum.and_then(|s| s.unattended.as_ref()) {
                Some((r, step, inner)) => (
                    *r,
                    RiskSource::Callee { workflow: name.clone(), step: step.clone(), inner: Box::new(inner.clone()) },
                    effect,
                ),
                None => (Risk::Low, RiskSource::Default, effect),
            }
        }
    }
}

fn summarize(steps: &[StepFacts<'_>]) -> Summary {
    let mut sum = Summary::default();
    for s in steps {
        sum.effect = Some(sum.effect.map_or(s.effect, |e| stronger_effect(e, s.effect)));
        if !s.approval && sum.unattended.as_ref().is_none_or(|u| s.risk > u.0) {
            sum.unattended = Some((s.risk, s.step.name.name.clone(), s.source.clone()));
        }
    }
    sum
}

/// The workflows in an order where callees come before their callers
/// (except along recursion).
fn callees_first<'n>(order: &[(&'n String, &Decl<'_, ast::Workflow>)], statics: &BTreeMap<&str, Vec<StaticStep<'_>>>) -> Vec<&'n str> {
    let callees = |name: &str| -> Vec<String> {
        let mut out = Vec::new();
        for s in statics.get(name).into_iter().flatten() {
            for t in std::iter::once(&s.target).chain(s.fallback.as_ref().map(|f| &f.0)) {
                if let Target::Workflow(w) = t {
                    out.push(w.clone());
                }
            }
        }
        out
    };
    let names: BTreeMap<&str, &'n str> = order.iter().map(|(n, _)| (n.as_str(), n.as_str())).collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut post = Vec::new();
    for (root, _) in order {
        if !seen.insert(root.as_str()) {
            continue;
        }
        // An explicit stack: call chains can be long in generated programs.
        let mut stack: Vec<(&'n str, Vec<String>)> = vec![(root.as_str(), callees(root))];
        while let Some((name, pending)) = stack.last_mut() {
            match pending.pop() {
                Some(next) => {
                    if let Some(&n) = names.get(next.as_str())
                        && seen.insert(n)
                    {
                        stack.push((n, callees(n)));
                    }
                }
                None => {
                    post.push(*name);
                    stack.pop();
                }
            }
        }
    }
    post
}
