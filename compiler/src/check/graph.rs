//! The step graph of each workflow: a step depends on every step it
//! mentions (in its call, attributes or `when:`) and on the steps its
//! `after:` lists. The graph must be a DAG (E0301); `after:` must name steps
//! (E0302); a step whose value nobody uses and that changes nothing outside
//! is probably a mistake (W0101).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use rustc_hash::FxHashMap;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::ast::{self, ExprKind, StrPart};
use crate::diagnostic::Diagnostic;
use crate::codes::Code;
use crate::source::FileId;
use crate::span::Span;

use super::env::Env;
use super::suggest;

/// The checked order and dependencies of one workflow's steps.
#[derive(Clone, Debug, Default)]
pub struct StepGraph {
    /// Step names in a topological order (dependencies first, otherwise
    /// source order). Empty when the graph has a cycle.
    pub order: Vec<String>,
    /// Each step's direct dependencies (data and `after:`), in source order.
    pub deps: BTreeMap<String, Vec<String>>,
}

/// Why one step depends on another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EdgeKind {
    Data,
    After,
}

/// Builds and checks the step graph of every workflow.
pub fn check(env: &Env, diags: &mut Vec<Diagnostic>) -> BTreeMap<String, StepGraph> {
    let mut out = BTreeMap::new();
    for (name, wf) in &env.workflows {
        out.insert(name.clone(), workflow(env, wf.file, wf.decl, diags));
    }
    out
}

/// The attribute keys whose bare names are not steps.
const NON_STEP_KEYS: &[&str] = &["after", "verify", "risk", "tools", "cache_scope"];

fn workflow(env: &Env, file: FileId, wf: &ast::Workflow, diags: &mut Vec<Diagnostic>) -> StepGraph {
    // The first step of each name (a duplicate is E0102 already).
    let mut index: FxHashMap<&str, usize> = FxHashMap::default();
    let mut steps: Vec<&ast::Step> = Vec::new();
    let params: BTreeSet<&str> = wf.params.iter().map(|p| p.name.name.as_str()).collect();
    for s in &wf.steps {
        if !index.contains_key(s.name.name.as_str()) && !params.contains(s.name.name.as_str()) {
            index.insert(&s.name.name, steps.len());
            steps.push(s);
        }
    }
    let mut graph: DiGraph<usize, ()> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..steps.len()).map(|i| graph.add_node(i)).collect();
    // (from, to) → the first place `from` mentions `to`, and how.
    let mut edges: BTreeMap<(usize, usize), (Span, EdgeKind)> = BTreeMap::new();
    let mut used: BTreeSet<usize> = BTreeSet::new();
    for (i, s) in steps.iter().enumerate() {
        let mut mentions = Vec::new();
        mentions_in(&s.call, &index, &mut Vec::new(), &mut mentions);
        for a in Env::entries(&s.attrs) {
            if !NON_STEP_KEYS.contains(&a.key.name.as_str()) {
                mentions_in(&a.value, &index, &mut Vec::new(), &mut mentions);
            }
        }
        for (j, span) in mentions {
            edges.entry((i, j)).or_insert((span, EdgeKind::Data));
        }
        if let Some(after) = Env::attr(Env::entries(&s.attrs), "after")
            && let ExprKind::List(items) = &after.value.kind {
                for item in items {
                    let ExprKind::Name(id) = &item.kind else { continue };
                    match index.get(id.name.as_str()) {
                        Some(&j) => {
                            edges.entry((i, j)).or_insert((id.span, EdgeKind::After));
                        }
                        None => diags.push(unknown_after(file, wf, id, &params)),
                    }
                }
            }
    }
    for &(i, j) in edges.keys() {
        if let (Some(&a), Some(&b)) = (nodes.get(i), nodes.get(j)) {
            graph.add_edge(a, b, ());
        }
        if i != j {
            used.insert(j);
        }
    }
    let mut has_cycle = false;
    for scc in petgraph::algo::tarjan_scc(&graph) {
        let members: BTreeSet<usize> = scc.iter().filter_map(|n| graph.node_weight(*n).copied()).collect();
        let Some(&start) = members.first() else { continue };
        if members.len() == 1 && !edges.contains_key(&(start, start)) {
            continue;
        }
        has_cycle = true;
        let cycle = find_cycle(start, &members, &edges);
        diags.push(cycle_diagnostic(file, wf, &steps, &cycle, &edges));
    }
    // Uses outside the steps: `return` and the header.
    let mut outside = Vec::new();
    if let Some((e, _)) = &wf.ret_expr {
        mentions_in(e, &index, &mut Vec::new(), &mut outside);
    }
    for a in &wf.attrs {
        mentions_in(&a.value, &index, &mut Vec::new(), &mut outside);
    }
    used.extend(outside.into_iter().map(|(j, _)| j));
    for (i, s) in steps.iter().enumerate() {
        if !used.contains(&i) && !has_external_effect(env, &s.call, &mut BTreeSet::new()) && resolvable(env, &s.call) {
            diags.push(
                Diagnostic::warning(Code::W0101, file, s.name.span, format!("the value of step `{}` is never used", s.name.name))
                    .with_primary_label("never used, and the step changes nothing outside the run")
                    .with_help("use it in another step or in `return`, or remove the step"),
            );
        }
    }
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, s) in steps.iter().enumerate() {
        // The keys are sorted by source: a range, not a scan of every edge
        // for every step (quadratic on large workflows).
        let list = edges
            .range((i, 0)..=(i, usize::MAX))
            .map(|(k, _)| k)
            .filter(|(_, b)| *b != i)
            .filter_map(|(_, b)| steps.get(*b).map(|d| d.name.name.clone()))
            .collect();
        deps.insert(s.name.name.clone(), list);
    }
    let order = if has_cycle { Vec::new() } else { topo_order(&steps, &edges) };
    StepGraph { order, deps }
}

/// Kahn's algorithm, taking ready steps in source order.
fn topo_order(steps: &[&ast::Step], edges: &BTreeMap<(usize, usize), (Span, EdgeKind)>) -> Vec<String> {
    let mut pending: Vec<usize> = vec![0; steps.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for &(i, j) in edges.keys() {
        if let Some(p) = pending.get_mut(i) {
            *p += 1;
        }
        if let Some(d) = dependents.get_mut(j) {
            d.push(i);
        }
    }
    let mut ready: BTreeSet<usize> = pending.iter().enumerate().filter(|(_, p)| **p == 0).map(|(i, _)| i).collect();
    let mut order = Vec::new();
    while let Some(i) = ready.pop_first() {
        if let Some(s) = steps.get(i) {
            order.push(s.name.name.clone());
        }
        for &k in dependents.get(i).map_or(&[][..], Vec::as_slice) {
            if let Some(p) = pending.get_mut(k) {
                *p -= 1;
                if *p == 0 {
                    ready.insert(k);
                }
            }
        }
    }
    order
}

/// A shortest cycle through `start` inside its strongly connected
/// component: `start, …, start`.
fn find_cycle(start: usize, members: &BTreeSet<usize>, edges: &BTreeMap<(usize, usize), (Span, EdgeKind)>) -> Vec<usize> {
    if edges.contains_key(&(start, start)) {
        return vec![start, start];
    }
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(x) = queue.pop_front() {
        for &(a, b) in edges.range((x, 0)..=(x, usize::MAX)).map(|(k, _)| k) {
            if b == start {
                let mut cycle = vec![a];
                let mut cur = a;
                while cur != start {
                    cur = parent.get(&cur).copied().unwrap_or(start);
                    cycle.push(cur);
                }
                cycle.reverse();
                cycle.push(start);
                return cycle;
            }
            if members.contains(&b) && b != start && !parent.contains_key(&b) {
                parent.insert(b, a);
                queue.push_back(b);
            }
        }
    }
    vec![start, start]
}

fn cycle_diagnostic(
    file: FileId,
    wf: &ast::Workflow,
    steps: &[&ast::Step],
    cycle: &[usize],
    edges: &BTreeMap<(usize, usize), (Span, EdgeKind)>,
) -> Diagnostic {
    let name = |i: usize| steps.get(i).map_or("?", |s| s.name.name.as_str());
    let chain = cycle.iter().map(|&i| name(i)).collect::<Vec<_>>().join(" → ");
    let first = cycle.first().copied().unwrap_or(0);
    let primary = steps.get(first).map_or(wf.name.span, |s| s.name.span);
    let message = if cycle.len() == 2 {
        format!("step `{}` depends on itself: {chain}", name(first))
    } else {
        format!("the steps of workflow `{}` form a cycle: {chain}", wf.name.name)
    };
    let mut d = Diagnostic::error(Code::E0301, file, primary, message).with_primary_label("this step is part of the cycle");
    for pair in cycle.windows(2) {
        let (Some(&a), Some(&b)) = (pair.first(), pair.get(1)) else { continue };
        let Some((span, kind)) = edges.get(&(a, b)) else { continue };
        let text = match (kind, a == b) {
            (EdgeKind::Data, true) => format!("`{}` uses its own value here", name(a)),
            (EdgeKind::Data, false) => format!("`{}` uses `{}` here", name(a), name(b)),
            (EdgeKind::After, _) => format!("`{}` runs after `{}`", name(a), name(b)),
        };
        d = d.with_label(file, *span, text);
    }
    d.with_help("a step cannot wait for its own result, directly or through other steps: remove one of these dependencies")
}

fn unknown_after(file: FileId, wf: &ast::Workflow, id: &ast::Ident, params: &BTreeSet<&str>) -> Diagnostic {
    let mut d = Diagnostic::error(
        Code::E0302,
        file,
        id.span,
        format!("`after:` names `{}`, which is not a step of workflow `{}`", id.name, wf.name.name),
    )
    .with_primary_label("no step of this name");
    if params.contains(id.name.as_str()) {
        d = d.with_help(format!("`{}` is a parameter; `after:` lists steps", id.name));
    } else if let Some(h) = suggest::did_you_mean(&id.name, wf.steps.iter().map(|s| s.name.name.as_str())) {
        d = d.with_help(h);
    }
    d
}

/// Every mention of a step name in `e` (fan-out variables shadow steps).
fn mentions_in(e: &ast::Expr, index: &FxHashMap<&str, usize>, vars: &mut Vec<String>, out: &mut Vec<(usize, Span)>) {
    match &e.kind {
        ExprKind::Name(id) => {
            if !vars.contains(&id.name)
                && let Some(&i) = index.get(id.name.as_str()) {
                    out.push((i, id.span));
                }
        }
        ExprKind::Field(b, _) => mentions_in(b, index, vars, out),
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
            mentions_in(a, index, vars, out);
            mentions_in(b, index, vars, out);
        }
        ExprKind::List(items) => items.iter().for_each(|i| mentions_in(i, index, vars, out)),
        ExprKind::Record(fields) => fields.iter().for_each(|(_, v)| mentions_in(v, index, vars, out)),
        ExprKind::Unary(_, a) => mentions_in(a, index, vars, out),
        ExprKind::Call { args, .. } => args.iter().for_each(|a| mentions_in(&a.value, index, vars, out)),
        ExprKind::Llm { prompt, .. } => mentions_in(prompt, index, vars, out),
        ExprKind::Block { steps, ret } => {
            let inner = steps.len();
            vars.extend(steps.iter().map(|s| s.name.name.clone()));
            for s in steps {
                mentions_in(&s.call, index, vars, out);
                for a in s.attrs.iter().flat_map(|a| &a.entries) {
                    mentions_in(&a.value, index, vars, out);
                }
            }
            mentions_in(ret, index, vars, out);
            vars.truncate(vars.len().saturating_sub(inner));
        }
        ExprKind::For { var, iter, body } => {
            mentions_in(iter, index, vars, out);
            vars.push(var.name.clone());
            mentions_in(body, index, vars, out);
            vars.pop();
        }
        ExprKind::Str(s) => {
            for p in &s.parts {
                if let StrPart::Interp(x) = p {
                    mentions_in(x, index, vars, out);
                }
            }
        }
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Null
        | ExprKind::Duration(_)
        | ExprKind::Money(_)
        | ExprKind::Price(_)
        | ExprKind::Error => {}
    }
}

/// Whether running `call` can change the world: an `effect: external`
/// tool, or a workflow with such a step.
pub fn has_external_effect(env: &Env, call: &ast::Expr, seen: &mut BTreeSet<String>) -> bool {
    match &call.kind {
        ExprKind::For { body, .. } => has_external_effect(env, body, seen),
        ExprKind::Call { callee, .. } if callee.len() > 1 => env.tools.get(&Env::tool_name(callee)).is_some_and(|t| {
            Env::attr(Env::entries(&t.decl.attrs), "effect")
                .is_some_and(|a| matches!(&a.value.kind, ExprKind::Name(id) if id.name == "external"))
        }),
        ExprKind::Call { callee, .. } => {
            let name = Env::tool_name(callee);
            if !seen.insert(name.clone()) {
                return false;
            }
            env.workflows
                .get(&name)
                .is_some_and(|wf| wf.decl.steps.iter().any(|s| has_external_effect(env, &s.call, seen)))
        }
        _ => false,
    }
}

/// Whether a step's call names something that exists (else its effect is
/// unknown, and the unknown name was reported already).
fn resolvable(env: &Env, call: &ast::Expr) -> bool {
    match &call.kind {
        ExprKind::For { body, .. } => resolvable(env, body),
        ExprKind::Call { callee, .. } if callee.len() > 1 => env.tools.contains_key(&Env::tool_name(callee)),
        ExprKind::Call { callee, .. } => env.workflows.contains_key(&Env::tool_name(callee)),
        ExprKind::Llm { .. } => true,
        _ => false,
    }
}
