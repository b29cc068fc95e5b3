//! The incremental re-check: an edit inside one workflow re-parses that
//! workflow alone and re-checks only the workflows whose findings it can
//! change; every other finding, tree and cost figure is kept from the
//! previous analysis (moved by the edit's length).
//!
//! The result is always what [`super::check_with`] in diagnostics-only mode
//! gives for the new text (a property test compares them over random
//! edits). Whatever this module cannot prove unaffected is re-checked
//! whole: an edit outside a workflow's body, one that changes a workflow's
//! signature, a file with syntax errors or test blocks, a change in a used
//! file, a caller outside the file, cost figures that would switch between
//! byte and exact counts.
//!
//! Which workflows can an edit of workflow `w` affect? Its own findings, and
//! those of the workflows that call it, directly or not (their cost, risk
//! and effects include its own): the *focus*. The focus is checked in a
//! reduced program: every declaration of the file, the focus and every
//! workflow it calls (transitively) whole, and the other workflows as bare
//! names (so that unknown names get the same did-you-mean), with its fan-out
//! blocks lifted into the workflows they run as (`WORKFLOW.STEP`, as a
//! whole check does). Only the findings inside the focus, and the cost of
//! the focus and of its blocks, are taken from it.

mod spans;

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{self, ExprKind, ItemKind, StrPart};
use crate::codes::Code;
use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Sources};
use crate::span::Span;

use super::{Analysis, Counting, FileLoader, Options, resolve};

/// How [`recheck`] answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recheck {
    /// Re-parsed one workflow and re-checked `workflows` workflows (the
    /// edited one and its callers).
    Incremental { workflows: usize },
    /// Checked the whole program again, for this reason.
    Whole(&'static str),
}

/// Checks `text`, the new text of the main file of `prev`, reusing what the
/// edit cannot have changed. Gives the same analysis as
/// [`super::check_with`]`(path, text, loader, Options { program: false })`.
pub fn recheck(prev: Analysis, text: &str, loader: &dyn FileLoader) -> (Analysis, Recheck) {
    let path = prev.sources.path(prev.main).to_string();
    let outcome = plan(&prev, text, loader).and_then(|plan| {
        let workflows = plan.focus.len();
        apply(prev, text, plan).map(|analysis| (analysis, Recheck::Incremental { workflows }))
    });
    outcome.unwrap_or_else(|reason| (super::check_with(&path, text, loader, Options { program: false }), Recheck::Whole(reason)))
}

/// The codes whose messages quote cost figures: one of them anywhere makes
/// the diagnostics-only check count exactly (`cost::analyze_for_diagnostics`).
const FIGURE_CODES: [Code; 3] = [Code::E0404, Code::E0501, Code::W0501];

/// What the edit is and what it affects, decided before anything moves.
struct Plan {
    /// The edited item's index in the main file.
    index: usize,
    /// The name of the edited workflow when it is gone (now broken text).
    removed: Option<String>,
    /// The old span of the edited item, and the edit's change in length.
    old_span: Span,
    delta: i64,
    /// The edited region in the old text (`start..end`).
    edit: (usize, usize),
    /// The new syntax tree.
    tree: NewTree,
    /// The edited workflow and its callers, by name.
    focus: BTreeSet<String>,
    /// Their spans in the old text.
    old_focus: Vec<Span>,
    /// Whether the cost pass counts exactly (the previous analysis did, and
    /// a finding outside the focus keeps it so).
    exact: bool,
}

fn plan(prev: &Analysis, text: &str, loader: &dyn FileLoader) -> Result<Plan, &'static str> {
    let main = prev.main;
    let old = prev.sources.text(main);
    if old == text {
        return Err("the text did not change");
    }
    let file = main_ast(prev).ok_or("no syntax tree")?;
    if file.items.iter().any(|i| matches!(i.kind, ItemKind::Test(_))) {
        return Err("test blocks are checked against the whole program");
    }
    // Syntax errors inside items are kept (or, in the edited workflow,
    // replaced); anywhere else they may have moved item boundaries.
    let in_an_item = |d: &Diagnostic| d.file == main && file.items.iter().any(|i| inside(d.primary, i.span));
    if prev.diagnostics.iter().any(|d| d.code == Code::E0104 || (d.code == Code::E0001 && !in_an_item(d))) {
        return Err("syntax errors between items, or unresolved uses");
    }
    let (start, old_end, new_end) = edited_region(old.as_bytes(), text.as_bytes());
    let delta = i64::try_from(new_end).unwrap_or(i64::MAX) - i64::try_from(old_end).unwrap_or(i64::MAX);
    // The workflow (or broken item) that holds the whole edit, its first
    // token and its closing brace untouched.
    let (index, item) = file
        .items
        .iter()
        .enumerate()
        .find(|(_, item)| {
            matches!(item.kind, ItemKind::Workflow(_) | ItemKind::Error)
                && (item.span.start as usize) < start
                && old_end < item.span.end as usize
        })
        .ok_or("the edit is not inside a workflow")?;
    let old_wf = match &item.kind {
        ItemKind::Workflow(w) => Some(w),
        _ => None,
    };
    if old_wf.is_some_and(|w| start < signature_end(w)) {
        return Err("the edit touches a workflow's signature");
    }
    let item_start = item.span.start as usize;
    let new_item_end = usize::try_from(i64::from(item.span.end) + delta).map_err(|_| "edit out of range")?;
    // A syntax error inside the edited item may come from the parse of an
    // item before it (chumsky looks ahead): then the whole file is parsed.
    let clean = !prev.diagnostics.iter().any(|d| d.code == Code::E0001 && d.file == main && inside(d.primary, item.span));
    let tree = reparse(file, index, text, main, delta, Span::new(item_start, new_item_end), clean)?;
    let new_item = match &tree {
        NewTree::Item { item, .. } => item,
        NewTree::File { file, .. } => file.items.get(index).ok_or("the items moved")?,
    };
    let new_wf = match &new_item.kind {
        ItemKind::Workflow(w) => Some(w),
        ItemKind::Error => None,
        _ => return Err("the edited item became another kind of item"),
    };
    let renamed = match (old_wf, new_wf) {
        (Some(a), Some(b)) if !same_signature(a, b) => return Err("the edit changes the workflow's signature"),
        (Some(_), Some(_)) | (None, None) => false,
        _ => true,
    };
    unchanged_uses(prev, loader)?;
    let names = |w: Option<&ast::Workflow>| w.map(|w| w.name.name.clone());
    let focus = focus(prev, main, index, names(old_wf).into_iter().chain(names(new_wf)).collect(), new_wf)?;
    let mut spans = workflow_spans(file, &focus);
    spans.push(item.span);
    let in_focus = |d: &Diagnostic| d.file == main && spans.iter().any(|s| inside(d.primary, *s));
    // A finding kept from before must not depend on the focus: none points
    // into it.
    let points_in = |file: FileId, span: Span| file == main && spans.iter().any(|s| s.start < span.end && span.start < s.end);
    let kept = || prev.diagnostics.iter().filter(|d| !in_focus(d));
    if kept().any(|d| d.code != Code::E0001 && (points_in(d.file, d.primary) || d.labels.iter().any(|l| points_in(l.file, l.span)))) {
        return Err("a finding outside the edited workflows points into them");
    }
    // A workflow that appears or disappears changes the names that an
    // unknown name's did-you-mean is chosen from.
    if renamed && kept().any(|d| d.code == Code::E0101) {
        return Err("a workflow appears or disappears while names elsewhere are unknown");
    }
    let exact = if prev.cost.exact {
        // Exact counts stay only while a finding that quotes figures
        // stays; one outside the focus does.
        let kept = prev.diagnostics.iter().any(|d| FIGURE_CODES.contains(&d.code) && !in_focus(d));
        if !kept {
            return Err("the cost figures may switch from exact to byte counts");
        }
        true
    } else {
        false
    };
    let removed = old_wf.filter(|_| renamed).map(|w| w.name.name.clone());
    Ok(Plan {
        index,
        removed,
        old_span: item.span,
        delta,
        edit: (start, old_end),
        tree,
        focus,
        old_focus: spans,
        exact,
    })
}

/// What was parsed again.
enum NewTree {
    /// The edited workflow alone (spans in the new text, its old doc), which
    /// parsed without an error, and its comments.
    Item { item: ast::Item, comments: Vec<ast::Comment> },
    /// The whole main file, when the edited workflow has a syntax error
    /// (chumsky's recovery may then look past it), with its syntax
    /// diagnostics; its items line up with the old ones.
    File { file: ast::File, diags: Vec<Diagnostic> },
}

/// Parses the edited workflow where it stands (the text before it blanked,
/// so that its spans are those of the new text), or, when it has a syntax
/// error (now, or before the edit: `clean` is false), the whole file, whose items must be the old ones (moved) but for
/// the edited one.
fn reparse(old: &ast::File, index: usize, text: &str, main: FileId, delta: i64, span: Span, clean: bool) -> Result<NewTree, &'static str> {
    if clean {
        let slice = text.get(span.range()).ok_or("edit out of range")?;
        let mut padded = String::with_capacity(span.end as usize);
        padded.extend(std::iter::repeat_n(' ', span.start as usize));
        padded.push_str(slice);
        let (mut parsed, diags) = crate::parser::parse(&padded, main);
        if diags.is_empty() && parsed.items.len() == 1 && parsed.items.first().is_some_and(|i| i.span == span) {
            let mut item = parsed.items.remove(0);
            item.doc.clone_from(&old.items.get(index).and_then(|i| i.doc.clone()));
            return Ok(NewTree::Item { item, comments: parsed.comments });
        }
    }
    let (file, diags) = crate::parser::parse(text, main);
    let lined_up = file.items.len() == old.items.len()
        && file.items.iter().zip(&old.items).enumerate().all(|(i, (new, old))| {
            let mut want = old.span;
            if i > index {
                spans::shift(&mut want, delta);
            } else if i == index {
                want = span;
            }
            new.span == want && std::mem::discriminant(&new.kind) == std::mem::discriminant(&old.kind)
        });
    if !lined_up {
        return Err("the edit moves item boundaries");
    }
    Ok(NewTree::File { file, diags })
}

fn main_ast(a: &Analysis) -> Option<&ast::File> {
    a.files.iter().find(|(id, _)| *id == a.main).map(|(_, f)| f)
}

/// The edited region: `start`, its end in the old text and in the new one
/// (the longest common prefix and suffix are left out).
fn edited_region(old: &[u8], new: &[u8]) -> (usize, usize, usize) {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let room = old.len().min(new.len()) - prefix;
    let suffix = old.iter().rev().zip(new.iter().rev()).take(room).take_while(|(a, b)| a == b).count();
    (prefix, old.len() - suffix, new.len() - suffix)
}

/// Where a workflow's signature (name, parameters, return type) ends.
fn signature_end(w: &ast::Workflow) -> usize {
    let params = w.params.iter().map(|p| p.span.end);
    let ret = w.ret.iter().map(|t| t.span.end);
    params.chain(ret).chain([w.name.span.end]).max().unwrap_or(0) as usize
}

fn same_signature(a: &ast::Workflow, b: &ast::Workflow) -> bool {
    a.name == b.name && a.params == b.params && a.ret == b.ret
}

/// `inner` lies within `outer`.
fn inside(inner: Span, outer: Span) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// The files the program uses still read as they did.
fn unchanged_uses(prev: &Analysis, loader: &dyn FileLoader) -> Result<(), &'static str> {
    for (id, _) in &prev.files {
        let path = prev.sources.path(*id);
        if *id == prev.main || crate::query::is_std_path(path) {
            continue;
        }
        match loader.load(std::path::Path::new(path)) {
            Ok(text) if text == prev.sources.text(*id) => {}
            _ => return Err("a used file changed"),
        }
    }
    Ok(())
}

/// The edited workflow (its old and new name: a broken item has none) and
/// every workflow that calls it, directly or not; all must be in the main
/// file, under names declared once.
fn focus(
    prev: &Analysis,
    main: FileId,
    index: usize,
    edited: BTreeSet<String>,
    new_wf: Option<&ast::Workflow>,
) -> Result<BTreeSet<String>, &'static str> {
    let mut callers: BTreeMap<&str, Vec<(&str, FileId)>> = BTreeMap::new();
    let mut declared: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, file) in &prev.files {
        for (i, item) in file.items.iter().enumerate() {
            let w = match (&item.kind, *id == main && i == index) {
                (_, true) => new_wf,
                (ItemKind::Workflow(w), false) => Some(w),
                _ => None,
            };
            let Some(w) = w else { continue };
            *declared.entry(w.name.name.as_str()).or_default() += 1;
            for callee in referenced_names(w) {
                callers.entry(callee).or_default().push((w.name.name.as_str(), *id));
            }
        }
    }
    let new_name = new_wf.map(|w| w.name.name.as_str());
    if new_name.is_some_and(|n| declared.get(n) != Some(&1))
        || edited.iter().any(|n| Some(n.as_str()) != new_name && declared.contains_key(n.as_str()))
    {
        return Err("the edited workflow's name is declared twice");
    }
    let mut focus: BTreeSet<String> = new_wf.map(|w| w.name.name.clone()).into_iter().collect();
    let mut todo: Vec<&str> = edited.iter().map(String::as_str).collect();
    while let Some(name) = todo.pop() {
        for (caller, file) in callers.get(name).into_iter().flatten() {
            if *file != main {
                return Err("a workflow of another file calls the edited one");
            }
            if focus.insert((*caller).to_string()) {
                todo.push(caller);
            }
        }
    }
    Ok(focus)
}

/// Every name a workflow's body mentions that could be another workflow
/// (bare names and one-segment calls): an over-approximation of its calls.
fn referenced_names(w: &ast::Workflow) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    let exprs = w
        .params
        .iter()
        .filter_map(|p| p.default.as_ref())
        .chain(w.attrs.iter().map(|a| &a.value))
        .chain(w.steps.iter().flat_map(|s| {
            std::iter::once(&s.call).chain(s.attrs.iter().flat_map(|a| a.entries.iter().map(|e| &e.value)))
        }))
        .chain(w.ret_expr.iter().map(|(e, _)| e));
    for e in exprs {
        names(e, &mut out);
    }
    out
}

fn names<'e>(e: &'e ast::Expr, out: &mut BTreeSet<&'e str>) {
    match &e.kind {
        ExprKind::Name(n) => {
            out.insert(n.name.as_str());
        }
        ExprKind::Call { callee, args } => {
            if let [one] = callee.as_slice() {
                out.insert(one.name.as_str());
            }
            for a in args {
                names(&a.value, out);
            }
        }
        ExprKind::Str(s) => {
            for p in &s.parts {
                if let StrPart::Interp(x) = p {
                    names(x, out);
                }
            }
        }
        ExprKind::Field(a, _) | ExprKind::Unary(_, a) => names(a, out),
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
            names(a, out);
            names(b, out);
        }
        ExprKind::List(items) => items.iter().for_each(|x| names(x, out)),
        ExprKind::Record(fields) => fields.iter().for_each(|(_, x)| names(x, out)),
        ExprKind::Llm { prompt, .. } => names(prompt, out),
        ExprKind::For { iter, body, .. } => {
            names(iter, out);
            names(body, out);
        }
        ExprKind::Block { steps, ret } => {
            for s in steps {
                names(&s.call, out);
                for a in s.attrs.iter().flat_map(|a| &a.entries) {
                    names(&a.value, out);
                }
            }
            names(ret, out);
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

/// The spans of the named workflows of a file.
fn workflow_spans(file: &ast::File, names: &BTreeSet<String>) -> Vec<Span> {
    file.items
        .iter()
        .filter_map(|i| match &i.kind {
            ItemKind::Workflow(w) if names.contains(&w.name.name) => Some(i.span),
            _ => None,
        })
        .collect()
}

/// Builds the new analysis from the previous one and the plan; fails (and
/// the caller checks from scratch) when the re-checked workflows newly
/// quote cost figures, which turns exact counting on for the whole file.
fn apply(prev: Analysis, text: &str, plan: Plan) -> Result<Analysis, &'static str> {
    let Analysis { sources, main, mut files, diagnostics, cost, .. } = prev;
    let old_focus = plan.old_focus;
    // The new tree of the main file: the edited workflow re-parsed, the
    // items and comments after it moved (or the whole file re-parsed).
    let mut syntax = None;
    if let Some((_, file)) = files.iter_mut().find(|(id, _)| *id == main) {
        match plan.tree {
            NewTree::Item { item, comments: new_comments } => {
                let old_end = plan.old_span.end;
                for item in file.items.iter_mut().skip(plan.index + 1) {
                    spans::shift_item(item, plan.delta);
                }
                if let Some(slot) = file.items.get_mut(plan.index) {
                    *slot = item;
                }
                let mut comments = Vec::with_capacity(file.comments.len() + new_comments.len());
                let mut new_ones = Some(new_comments);
                for mut c in std::mem::take(&mut file.comments) {
                    if c.span.end <= plan.old_span.start {
                        comments.push(c);
                    } else if c.span.start >= old_end {
                        comments.extend(new_ones.take().into_iter().flatten());
                        spans::shift(&mut c.span, plan.delta);
                        comments.push(c);
                    }
                }
                comments.extend(new_ones.take().into_iter().flatten());
                file.comments = comments;
            }
            NewTree::File { file: new_file, diags } => {
                *file = new_file;
                syntax = Some(diags);
            }
        }
    }
    let mut new_sources = Sources::new();
    for (id, path, t) in sources.iter() {
        new_sources.add(path, if id == main { text } else { t });
    }
    drop(sources);
    // The focus, checked in the reduced program.
    let loaded = reduced(&files, &new_sources, main, &plan.focus);
    // Fan-out blocks are checked as the workflows they run as, as in a
    // whole check (`WORKFLOW.STEP`, see `blocks`).
    let lifted = super::blocks::lift(&loaded);
    let mut scratch = Vec::new();
    let env = resolve::build_env(lifted.as_ref().unwrap_or(&loaded), &mut scratch);
    let counting = if plan.exact { Counting::Exact } else { Counting::Bytes };
    let facts = super::passes(&env, &mut scratch, counting);
    drop(env);
    let mut new_focus = main_ast_of(&files, main).map(|f| workflow_spans(f, &plan.focus)).unwrap_or_default();
    let mut edited = plan.old_span;
    edited.end = u32::try_from(i64::from(edited.end) + plan.delta).unwrap_or(edited.end);
    new_focus.push(edited);
    let in_focus = |d: &Diagnostic, spans: &[Span]| d.file == main && spans.iter().any(|s| inside(d.primary, *s));
    let fresh: Vec<Diagnostic> = scratch.into_iter().filter(|d| in_focus(d, &new_focus)).collect();
    if !plan.exact && fresh.iter().any(|d| FIGURE_CODES.contains(&d.code)) {
        return Err("a finding now quotes cost figures: the file is counted exactly");
    }
    let edit_end = plan.edit.1;
    // Syntax errors come from the parse: those of the edited workflow (or,
    // after a whole parse, of the file) are replaced; the checks' findings
    // in the focus are replaced by the fresh ones.
    let reparsed = |d: &Diagnostic| match syntax {
        Some(_) => d.file == main,
        // None: the edited item had no syntax error (see `reparse`).
        None => false,
    };
    let mut diags: Vec<Diagnostic> = diagnostics
        .into_iter()
        .filter(|d| if d.code == Code::E0001 { !reparsed(d) } else { !in_focus(d, &old_focus) })
        .map(|mut d| {
            let moved = |span: &mut Span| {
                if span.start as usize >= edit_end {
                    spans::shift(span, plan.delta);
                }
            };
            if d.file == main {
                moved(&mut d.primary);
            }
            for l in d.labels.iter_mut().filter(|l| l.file == main) {
                moved(&mut l.span);
            }
            d
        })
        .collect();
    diags.extend(fresh);
    diags.extend(syntax.into_iter().flatten());
    super::sort_diagnostics(&mut diags);
    // The cost of the focus and of the blocks lifted out of it
    // (`WORKFLOW.STEP`, which an edit may add or remove) is replaced.
    let owner = |name: &str| name.split('.').next().unwrap_or_default().to_string();
    let mut cost = cost;
    cost.workflows.retain(|name, _| {
        let owner = owner(name);
        !plan.focus.contains(&owner) && plan.removed.as_ref() != Some(&owner)
    });
    for (name, c) in &facts.cost.workflows {
        if plan.focus.contains(&owner(name)) {
            cost.workflows.insert(name.clone(), c.clone());
        }
    }
    Ok(Analysis { sources: new_sources, main, files, diagnostics: diags, program: None, cost, tests: Vec::new() })
}

fn main_ast_of(files: &[(FileId, ast::File)], main: FileId) -> Option<&ast::File> {
    files.iter().find(|(id, _)| *id == main).map(|(_, f)| f)
}

/// The program the focus is checked in: every file, except that the main
/// file's workflows that are neither in the focus nor called from it
/// (transitively) are bare names.
pub(crate) fn reduced(files: &[(FileId, ast::File)], sources: &Sources, main: FileId, focus: &BTreeSet<String>) -> resolve::Loaded {
    let std_files = files
        .iter()
        .filter_map(|(id, _)| {
            let path = sources.path(*id);
            path.strip_prefix("<std>/").and_then(|p| p.strip_suffix(".aos")).map(|name| (*id, name.to_string()))
        })
        .collect();
    let mut kept: BTreeSet<&str> = focus.iter().map(String::as_str).collect();
    if let Some(file) = main_ast_of(files, main) {
        let bodies: BTreeMap<&str, &ast::Workflow> = file
            .items
            .iter()
            .filter_map(|i| match &i.kind {
                ItemKind::Workflow(w) => Some((w.name.name.as_str(), w)),
                _ => None,
            })
            .collect();
        let mut todo: Vec<&str> = kept.iter().copied().collect();
        while let Some(name) = todo.pop() {
            let Some(w) = bodies.get(name) else { continue };
            for callee in referenced_names(w) {
                if bodies.contains_key(callee) && kept.insert(callee) {
                    todo.push(callee);
                }
            }
        }
    }
    let files = files
        .iter()
        .map(|(id, f)| {
            if *id != main {
                return (*id, f.clone());
            }
            let items = f
                .items
                .iter()
                .map(|item| match &item.kind {
                    ItemKind::Workflow(w) if !kept.contains(w.name.name.as_str()) => ast::Item {
                        kind: ItemKind::Workflow(ast::Workflow {
                            name: w.name.clone(),
                            params: Vec::new(),
                            ret: None,
                            attrs: Vec::new(),
                            steps: Vec::new(),
                            ret_expr: None,
                        }),
                        doc: None,
                        span: item.span,
                    },
                    _ => item.clone(),
                })
                .collect();
            (*id, ast::File { items, comments: Vec::new() })
        })
        .collect();
    resolve::Loaded { files, std_files }
}
