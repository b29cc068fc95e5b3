//! Cycles between declarations: types with no finite value (E0204) and
//! workflows that call each other (E0303).
//!
//! Both are strongly connected components of a graph between declarations
//! (petgraph's Tarjan); each cycle is reported once, at its first member in
//! source order, naming the whole cycle.

use std::collections::BTreeMap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::ast::{self, ExprKind, TypeExprKind};
use crate::diagnostic::Diagnostic;
use crate::codes::Code;
use crate::source::FileId;
use crate::span::Span;

use super::env::Env;

/// An edge's place in the source: the file and the span of the reference.
type Site = (FileId, Span);

/// A graph between declarations named by `String`, with the site of each edge.
#[derive(Default)]
struct NameGraph {
    graph: DiGraph<String, Site>,
    nodes: BTreeMap<String, NodeIndex>,
}

impl NameGraph {
    fn node(&mut self, name: &str) -> NodeIndex {
        if let Some(&n) = self.nodes.get(name) {
            return n;
        }
        let n = self.graph.add_node(name.to_string());
        self.nodes.insert(name.to_string(), n);
        n
    }

    fn edge(&mut self, from: &str, to: &str, site: Site) {
        let (a, b) = (self.node(from), self.node(to));
        self.graph.add_edge(a, b, site);
    }

    /// Every cycle: its members (sorted by `order`) and the site of the edge
    /// leaving the first member inside the cycle.
    fn cycles(&self, order: impl Fn(&str) -> (FileId, u32)) -> Vec<(Vec<String>, Site)> {
        let mut out = Vec::new();
        for scc in tarjan_scc(&self.graph) {
            let looped = scc.len() > 1 || scc.first().is_some_and(|&n| self.graph.contains_edge(n, n));
            if !looped {
                continue;
            }
            let mut members: Vec<NodeIndex> = scc;
            members.sort_by_key(|&n| order(&self.graph[n]));
            let Some(&first) = members.first() else { continue };
            // The first edge (in source order) from the first member that
            // stays in the cycle, and the path it starts.
            let mut edges: Vec<_> = self.graph.edges(first).filter(|e| members.contains(&petgraph::visit::EdgeRef::target(e))).collect();
            edges.sort_by_key(|e| (e.weight().0, e.weight().1.start));
            let Some(edge) = edges.first() else { continue };
            let site = *edge.weight();
            let path = self.path(first, petgraph::visit::EdgeRef::target(edge), &members);
            out.push((path, site));
        }
        out.sort_by_key(|(_, site)| (site.0, site.1.start));
        out
    }

    /// The names along a cycle from `first` through `next` back to `first`.
    fn path(&self, first: NodeIndex, next: NodeIndex, members: &[NodeIndex]) -> Vec<String> {
        let mut names = vec![self.graph[first].clone()];
        let mut at = next;
        let mut seen = vec![first];
        while at != first && !seen.contains(&at) {
            names.push(self.graph[at].clone());
            seen.push(at);
            // Follow the neighbour in the cycle that is closest to home.
            let mut succ: Vec<NodeIndex> = self.graph.neighbors(at).filter(|n| members.contains(n)).collect();
            succ.sort_by_key(|n| usize::from(*n != first));
            match succ.first() {
                Some(&n) => at = n,
                None => break,
            }
        }
        names.push(self.graph[first].clone());
        names
    }
}

/// E0204: named types whose value would have to contain itself, through
/// aliases or record fields that are neither optional nor a list.
pub fn check_types(env: &Env, diags: &mut Vec<Diagnostic>) {
    let mut g = NameGraph::default();
    for (name, decl) in env.types.iter().filter(|(_, d)| !d.std) {
        g.node(name);
        required_refs(&decl.decl.ty, &mut |id| {
            if env.types.contains_key(&id.name) {
                g.edge(name, &id.name, (decl.file, id.span));
            }
        });
    }
    let order = |n: &str| env.types.get(n).map_or((FileId::default(), 0), |d| (d.file, d.span.start));
    for (path, _) in g.cycles(order) {
        let Some((head, first)) = path.first().and_then(|n| env.types.get(n).map(|d| (n, d))) else { continue };
        let alias = matches!(first.decl.ty.kind, TypeExprKind::Named(_));
        let shown = path.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" → ");
        let (message, help) = if path.len() == 2 && !alias {
            (
                format!("type `{head}` contains itself: it has no finite value"),
                "make the field optional (`T?`) or a list (`List<T>`) so that a value can end",
            )
        } else if alias && path.iter().all(|n| env.types.get(n).is_some_and(|d| matches!(d.decl.ty.kind, TypeExprKind::Named(_)))) {
            (format!("type aliases refer to each other in a cycle: {shown}"), "give one of them a definition that is not another alias")
        } else {
            (
                format!("types contain each other in a cycle: {shown}; none has a finite value"),
                "make one of the fields optional (`T?`) or a list (`List<T>`) so that a value can end",
            )
        };
        diags.push(
            Diagnostic::error(Code::E0204, first.file, first.decl.name.span, message)
                .with_primary_label("no finite value")
                .with_help(help),
        );
    }
}

/// The named types a value of `t` must contain (not under `?` or `List`).
fn required_refs<'t>(t: &'t ast::TypeExpr, f: &mut impl FnMut(&'t ast::Ident)) {
    match &t.kind {
        TypeExprKind::Named(id) => f(id),
        TypeExprKind::Record(fields) => {
            for (_, ft) in fields {
                required_refs(ft, f);
            }
        }
        TypeExprKind::Optional(_) | TypeExprKind::List(_) | TypeExprKind::Error => {}
    }
}

/// E0303: workflows that call each other (or themselves), through steps,
/// fan-outs and fallbacks. A run of one would never end, and its cost has no
/// finite bound.
pub fn check_workflows(env: &Env, diags: &mut Vec<Diagnostic>) {
    let mut g = NameGraph::default();
    for (name, wf) in env.workflows.iter().filter(|(_, w)| !w.std) {
        g.node(name);
        for s in &wf.decl.steps {
            let fallback = Env::attr(Env::entries(&s.attrs), "fallback").map(|a| &a.value);
            for call in std::iter::once(&s.call).chain(fallback) {
                if let Some(id) = workflow_callee(env, call) {
                    g.edge(name, &id.name, (wf.file, id.span));
                }
            }
        }
    }
    let order = |n: &str| env.workflows.get(n).map_or((FileId::default(), 0), |d| (d.file, d.span.start));
    for (path, (file, span)) in g.cycles(order) {
        let message = if let [head, _] = path.as_slice() {
            format!("workflow `{head}` calls itself")
        } else {
            format!("workflows call each other in a cycle: {}", path.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" → "))
        };
        diags.push(
            Diagnostic::error(Code::E0303, file, span, message)
                .with_primary_label("this call closes the cycle")
                .with_help("a run would never end and its cost has no finite bound; break the cycle"),
        );
    }
}

/// The workflow a step's call (or fan-out body) calls, if any.
fn workflow_callee<'a>(env: &Env, call: &'a ast::Expr) -> Option<&'a ast::Ident> {
    match &call.kind {
        ExprKind::For { body, .. } => workflow_callee(env, body),
        ExprKind::Call { callee, .. } => match callee.as_slice() {
            [one] if env.workflows.contains_key(&one.name) => Some(one),
            _ => None,
        },
        _ => None,
    }
}
