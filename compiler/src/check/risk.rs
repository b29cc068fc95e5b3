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

/// The risk levels, lowest first.
pub const RISK_LEVELS: &[&str] = &["low", "medium", "high", "critical"];
/// The effects, weakest first.
pub const EFFECTS: &[&str] = &["pure", "read", "external"];
/// The trust levels of whoever starts a run, lowest first.
pub const TRUST_LEVELS: &[&str] = &["untrusted", "basic", "trusted", "admin"];
/// The kinds of step.
pub const KINDS: &[&str] = &["tool", "llm", "workflow"];

/// The risk level a name denotes.
pub fn parse_risk(name: &str) -> Option<Risk> {
    match name {
        "low" => Some(Risk::Low),
        "medium" => Some(Risk::Medium),
        "high" => Some(Risk::High),
        "critical" => Some(Risk::Critical),
        _ => None,
    }
}

/// The effect a name denotes.
pub fn parse_effect(name: &str) -> Option<Effect> {
    match name {
        "pure" => Some(Effect::Pure),
        "read" => Some(Effect::Read),
        "external" => Some(Effect::External),
        _ => None,
    }
}

/// The trust level a name denotes.
pub fn parse_trust(name: &str) -> Option<Trust> {
    match name {
        "untrusted" => Some(Trust::Untrusted),
        "basic" => Some(Trust::Basic),
        "trusted" => Some(Trust::Trusted),
        "admin" => Some(Trust::Admin),
        _ => None,
    }
}

/// The step kind a name denotes.
pub fn parse_kind(name: &str) -> Option<StepKind> {
    match name {
        "tool" => Some(StepKind::Tool),
        "llm" => Some(StepKind::Llm),
        "workflow" => Some(StepKind::Workflow),
        _ => None,
    }
}

pub fn risk_name(risk: Risk) -> &'static str {
    match risk {
        Risk::Low => "low",
        Risk::Medium => "medium",
        Risk::High => "high",
        Risk::Critical => "critical",
    }
}

pub fn effect_name(effect: Effect) -> &'static str {
    match effect {
        Effect::Pure => "pure",
        Effect::Read => "read",
        Effect::External => "external",
    }
}

pub fn trust_name(trust: Trust) -> &'static str {
    match trust {
        Trust::Untrusted => "untrusted",
        Trust::Basic => "basic",
        Trust::Trusted => "trusted",
        Trust::Admin => "admin",
    }
}

pub fn kind_name(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Tool => "tool",
        StepKind::Llm => "llm",
        StepKind::Workflow => "workflow",
    }
}

/// The position of an effect on the ladder `pure < read < external`.
pub fn effect_rank(effect: Effect) -> u8 {
    match effect {
        Effect::Pure => 0,
        Effect::Read => 1,
        Effect::External => 2,
    }
}

/// The stronger of two effects.
pub fn stronger_effect(a: Effect, b: Effect) -> Effect {
    if effect_rank(b) > effect_rank(a) { b } else { a }
}

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
            let Some(target) = call_target(env, &step.call) else { continue };
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

/// Reports every step without `approval:` whose risk is above its
/// workflow's ceiling, or `critical` (E0602).
pub fn check_ceilings(facts: &[WorkflowFacts<'_>], diags: &mut Vec<Diagnostic>) {
    for wf in facts {
        diags.extend(wf.steps.iter().filter_map(|s| ceiling_violation(wf, s)));
    }
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
    let (kind, tool, effect) = match &s.target {
        Target::Llm => (StepKind::Llm, None, Effect::Pure),
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
            Target::Llm => (StepKind::Llm, None),
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
    }
}

/// The risk and effect a call brings by itself (for `fallback:`).
fn target_risk(t: &Target, tools: &BTreeMap<String, ToolFacts>, summaries: &BTreeMap<String, Summary>) -> (Risk, RiskSource, Effect) {
    match t {
        Target::Llm => (Risk::Low, RiskSource::Default, Effect::Pure),
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

/// Reads a `risk:` value.
pub(crate) fn read_risk(attr: &ast::Attr, file: FileId, diags: &mut Vec<Diagnostic>) -> Option<Risk> {
    read_level(attr, file, diags, "risk level", RISK_LEVELS, parse_risk)
}

/// Reads an `effect:` value.
pub(crate) fn read_effect(attr: &ast::Attr, file: FileId, diags: &mut Vec<Diagnostic>) -> Option<Effect> {
    read_level(attr, file, diags, "effect", EFFECTS, parse_effect)
}

fn read_level<T>(
    attr: &ast::Attr,
    file: FileId,
    diags: &mut Vec<Diagnostic>,
    what: &str,
    names: &[&str],
    parse: fn(&str) -> Option<T>,
) -> Option<T> {
    match &attr.value.kind {
        ExprKind::Name(id) => match parse(&id.name) {
            Some(v) => Some(v),
            None => {
                diags.push(unknown_value(file, id, what, names));
                None
            }
        },
        ExprKind::Error => None,
        _ => {
            diags.push(
                Diagnostic::error(
                    Code::E0201,
                    file,
                    attr.value.span,
                    format!("`{}:` takes {} {what}: {}", attr.key.name, article(what), one_of(names)),
                )
                .with_primary_label(format!("expected {} {what}", article(what))),
            );
            None
        }
    }
}

/// E0101 for a name that is not one of `names` (a level, an effect, a
/// kind), with "did you mean" when one is close.
pub(crate) fn unknown_value(file: FileId, id: &ast::Ident, what: &str, names: &[&str]) -> Diagnostic {
    let diag = Diagnostic::error(Code::E0101, file, id.span, format!("unknown {what} `{}`", id.name))
        .with_primary_label(format!("not {} {what}", article(what)));
    match did_you_mean(&id.name, names.iter().copied()) {
        Some(s) => diag.with_help(format!("did you mean `{s}`? ({} {what} is one of {})", article(what), one_of(names))),
        None => diag.with_help(format!("{} {what} is one of {}", article(what), one_of(names))),
    }
}

fn article(what: &str) -> &'static str {
    if what.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

/// "`low`, `medium`, `high` or `critical`".
pub(crate) fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// The candidate closest to `name`, if it is close enough to be a typo
/// (the one did-you-mean of the compiler, [`super::suggest::closest`]).
pub(crate) fn did_you_mean<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    super::suggest::closest(name, candidates)
}

/// Builders of hand-made syntax trees and environments for the unit tests
/// of risk and policy (they do not need the parser).
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    pub fn id(name: &str) -> ast::Ident {
        ast::Ident { name: name.to_string(), span: Span::default() }
    }

    pub fn at(kind: ExprKind) -> ast::Expr {
        ast::Expr { kind, span: Span::default() }
    }

    pub fn name(n: &str) -> ast::Expr {
        at(ExprKind::Name(id(n)))
    }

    pub fn string(s: &str) -> ast::Expr {
        at(ExprKind::Str(ast::StrLit { parts: vec![ast::StrPart::Text(s.to_string())], triple: false }))
    }

    pub fn bin(op: ast::BinaryOp, a: ast::Expr, b: ast::Expr) -> ast::Expr {
        at(ExprKind::Binary(op, Box::new(a), Box::new(b)))
    }

    pub fn not(a: ast::Expr) -> ast::Expr {
        at(ExprKind::Unary(ast::UnaryOp::Not, Box::new(a)))
    }

    pub fn call(path: &str) -> ast::Expr {
        at(ExprKind::Call { callee: path.split('.').map(id).collect(), args: vec![] })
    }

    pub fn llm() -> ast::Expr {
        at(ExprKind::Llm { role: id("executor"), prompt: Box::new(string("hi")) })
    }

    pub fn fan_out(body: ast::Expr) -> ast::Expr {
        at(ExprKind::For { var: id("x"), iter: Box::new(name("xs")), body: Box::new(body) })
    }

    pub fn attrs(entries: &[(&str, ast::Expr)]) -> Vec<ast::Attr> {
        entries.iter().map(|(k, v)| ast::Attr { key: id(k), value: v.clone(), span: Span::default() }).collect()
    }

    pub fn step(n: &str, call: ast::Expr, entries: &[(&str, ast::Expr)]) -> ast::Step {
        ast::Step {
            name: id(n),
            ty: None,
            call,
            attrs: Some(ast::Attrs { entries: attrs(entries), span: Span::default() }),
            span: Span::default(),
        }
    }

    pub fn tool(path: &str, entries: &[(&str, ast::Expr)]) -> ast::ToolDecl {
        ast::ToolDecl {
            path: path.split('.').map(id).collect(),
            params: vec![],
            ret: None,
            attrs: Some(ast::Attrs { entries: attrs(entries), span: Span::default() }),
        }
    }

    pub fn workflow(n: &str, header: &[(&str, ast::Expr)], steps: Vec<ast::Step>) -> ast::Workflow {
        ast::Workflow { name: id(n), params: vec![], ret: None, attrs: attrs(header), steps, ret_expr: None }
    }

    pub fn policy(n: &str, rules: Vec<(ast::RuleKind, ast::Expr)>) -> ast::PolicyDecl {
        ast::PolicyDecl {
            name: id(n),
            rules: rules.into_iter().map(|(kind, cond)| ast::Rule { kind, cond, span: Span::default() }).collect(),
        }
    }

    pub fn require(what: &str) -> ast::RuleKind {
        ast::RuleKind::Require(id(what))
    }

    /// The declarations of a test program.
    #[derive(Default)]
    pub struct Program {
        pub tools: Vec<ast::ToolDecl>,
        pub workflows: Vec<ast::Workflow>,
        pub policies: Vec<ast::PolicyDecl>,
    }

    fn decl<T>(decl: &T, i: usize) -> Decl<'_, T> {
        Decl { file: FileId(0), decl, doc: None, span: Span::new(i, i + 1), std: false }
    }

    impl Program {
        pub fn env(&self) -> Env<'_> {
            let mut env = Env::default();
            for (i, t) in self.tools.iter().enumerate() {
                env.tools.insert(Env::tool_name(&t.path), decl(t, i));
            }
            for (i, w) in self.workflows.iter().enumerate() {
                env.workflows.insert(w.name.name.clone(), decl(w, i));
            }
            for (i, p) in self.policies.iter().enumerate() {
                env.policies.insert(p.name.name.clone(), decl(p, i));
            }
            env
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::build::*;
    use super::*;

    /// (workflow, step, risk, effect, kind) of every step.
    type Flat = Vec<(String, String, Risk, Effect, StepKind)>;

    fn facts_of(p: &Program) -> (Flat, Vec<Diagnostic>) {
        let env = p.env();
        let mut diags = Vec::new();
        let facts = analyze(&env, &mut diags);
        check_ceilings(&facts, &mut diags);
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
}
