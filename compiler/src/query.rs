//! Questions an editor asks about an analysed program: what is at this
//! offset, where is it declared, where else is it used.
//!
//! [`Index`] walks the syntax trees of an [`Analysis`] once and records every
//! declaration ([`Symbol`]) and every place a name refers to one
//! ([`Occurrence`], declarations included). It resolves names the way the
//! checker does (locals of the enclosing workflow, then program-wide names),
//! but silently: what does not resolve is simply not indexed, the checker
//! reports it.

use std::collections::{BTreeMap, HashMap};

use crate::ast::{self, ExprKind, ItemKind, StrPart, TypeExprKind};
use crate::check::Analysis;
use crate::check::env::BUILTIN_ROLES;
use crate::source::FileId;
use crate::span::Span;

/// What kind of thing a symbol is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SymbolKind {
    Type,
    Enum,
    Variant,
    Model,
    Role,
    Tool,
    Policy,
    Workflow,
    Param,
    Step,
    /// The variable of a `for x in … =>` fan-out.
    ForVar,
}

impl SymbolKind {
    /// The word a message uses for this kind.
    pub fn describe(self) -> &'static str {
        match self {
            SymbolKind::Type => "type",
            SymbolKind::Enum => "enum",
            SymbolKind::Variant => "enum variant",
            SymbolKind::Model => "model",
            SymbolKind::Role => "role",
            SymbolKind::Tool => "tool",
            SymbolKind::Policy => "policy",
            SymbolKind::Workflow => "workflow",
            SymbolKind::Param => "parameter",
            SymbolKind::Step => "step",
            SymbolKind::ForVar => "fan-out variable",
        }
    }
}

/// A declaration.
#[derive(Clone, Debug, PartialEq)]
pub struct Symbol {
    pub kind: SymbolKind,
    /// The name (dotted for tools, `Enum.variant` for variants).
    pub name: String,
    /// Where it is declared; `None` for built-ins (the built-in roles).
    pub file: Option<FileId>,
    /// The span of the declared name.
    pub name_span: Span,
    /// The span of the whole declaration (the item, parameter or step).
    pub span: Span,
    /// Declared in a standard library module.
    pub std: bool,
    /// The workflow a parameter, step or fan-out variable belongs to.
    pub workflow: Option<String>,
}

/// Which symbol of an [`Index`].
pub type SymbolId = usize;

/// One place a name refers to a symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Occurrence {
    pub file: FileId,
    pub span: Span,
    pub symbol: SymbolId,
    /// This is the declaration itself.
    pub is_decl: bool,
}

/// Every symbol of a program and every place it is named.
#[derive(Debug, Default)]
pub struct Index {
    pub symbols: Vec<Symbol>,
    pub occurrences: Vec<Occurrence>,
    /// Program-wide names: (kind group, name) → symbol. Types and enums share
    /// the `Type` group.
    globals: HashMap<(SymbolKind, String), SymbolId>,
    /// (workflow, local name) → parameter or step.
    locals: HashMap<(String, String), SymbolId>,
}

impl Index {
    /// Indexes every file of an analysis.
    pub fn new(analysis: &Analysis) -> Index {
        let std_files: Vec<FileId> = analysis
            .files
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| is_std_path(analysis.sources.path(*id)))
            .collect();
        let mut ix = Index::default();
        // Declarations first (names are visible file-wide, in any order);
        // stdlib first so that a user's duplicate does not shadow it.
        let ordered = analysis
            .files
            .iter()
            .filter(|(id, _)| std_files.contains(id))
            .chain(analysis.files.iter().filter(|(id, _)| !std_files.contains(id)));
        for (id, file) in ordered.clone() {
            ix.declare_file(*id, file, std_files.contains(id));
        }
        for role in BUILTIN_ROLES {
            let key = (SymbolKind::Role, (*role).to_string());
            if !ix.globals.contains_key(&key) {
                let sid = ix.push(Symbol {
                    kind: SymbolKind::Role,
                    name: (*role).to_string(),
                    file: None,
                    name_span: Span::default(),
                    span: Span::default(),
                    std: true,
                    workflow: None,
                });
                ix.globals.insert(key, sid);
            }
        }
        for (id, file) in ordered {
            ix.refs_file(*id, file);
        }
        ix.occurrences.sort_by_key(|o| (o.file, o.span.start, o.span.end));
        ix
    }

    fn push(&mut self, s: Symbol) -> SymbolId {
        self.symbols.push(s);
        self.symbols.len() - 1
    }

    fn occur(&mut self, file: FileId, span: Span, symbol: SymbolId, is_decl: bool) {
        self.occurrences.push(Occurrence { file, span, symbol, is_decl });
    }

    fn global(&mut self, kind: SymbolKind, name: &ast::Ident, file: FileId, span: Span, std: bool) {
        let group = if kind == SymbolKind::Enum { SymbolKind::Type } else { kind };
        let key = (group, name.name.clone());
        if self.globals.contains_key(&key) {
            return;
        }
        let sid = self.push(Symbol {
            kind,
            name: name.name.clone(),
            file: Some(file),
            name_span: name.span,
            span,
            std,
            workflow: None,
        });
        self.globals.insert(key, sid);
        self.occur(file, name.span, sid, true);
    }

    fn declare_file(&mut self, file: FileId, f: &ast::File, std: bool) {
        for item in &f.items {
            match &item.kind {
                ItemKind::Type(t) => self.global(SymbolKind::Type, &t.name, file, item.span, std),
                ItemKind::Enum(e) => {
                    self.global(SymbolKind::Enum, &e.name, file, item.span, std);
                    for v in &e.variants {
                        let full = ast::Ident { name: format!("{}.{}", e.name.name, v.name), span: v.span };
                        self.global(SymbolKind::Variant, &full, file, v.span, std);
                    }
                }
                ItemKind::Model(m) => self.global(SymbolKind::Model, &m.name, file, item.span, std),
                ItemKind::Role(r) => self.global(SymbolKind::Role, &r.name, file, item.span, std),
                ItemKind::Policy(p) => self.global(SymbolKind::Policy, &p.name, file, item.span, std),
                ItemKind::Tool(t) => {
                    if let Some(span) = path_span(&t.path) {
                        let name = ast::Ident { name: tool_name(&t.path), span };
                        self.global(SymbolKind::Tool, &name, file, item.span, std);
                    }
                }
                ItemKind::Workflow(w) => {
                    self.global(SymbolKind::Workflow, &w.name, file, item.span, std);
                    for p in &w.params {
                        self.local(&w.name.name, SymbolKind::Param, &p.name, p.span, file, std);
                    }
                    for s in &w.steps {
                        self.local(&w.name.name, SymbolKind::Step, &s.name, s.span, file, std);
                    }
                }
                ItemKind::Use(_) | ItemKind::Test(_) | ItemKind::Error => {}
            }
        }
    }

    fn local(&mut self, wf: &str, kind: SymbolKind, name: &ast::Ident, span: Span, file: FileId, std: bool) {
        let key = (wf.to_string(), name.name.clone());
        if self.locals.contains_key(&key) {
            return;
        }
        let sid = self.push(Symbol {
            kind,
            name: name.name.clone(),
            file: Some(file),
            name_span: name.span,
            span,
            std,
            workflow: Some(wf.to_string()),
        });
        self.locals.insert(key, sid);
        self.occur(file, name.span, sid, true);
    }

    /// The program-wide symbol of this kind and name.
    pub fn lookup(&self, kind: SymbolKind, name: &str) -> Option<SymbolId> {
        let group = if kind == SymbolKind::Enum { SymbolKind::Type } else { kind };
        self.globals.get(&(group, name.to_string())).copied()
    }

    /// A parameter or step of a workflow.
    pub fn lookup_local(&self, workflow: &str, name: &str) -> Option<SymbolId> {
        self.locals.get(&(workflow.to_string(), name.to_string())).copied()
    }

    fn refs_file(&mut self, file: FileId, f: &ast::File) {
        for item in &f.items {
            match &item.kind {
                ItemKind::Type(t) => self.type_refs(file, &t.ty),
                ItemKind::Role(r) => {
                    for m in &r.models {
                        self.named(file, SymbolKind::Model, m);
                    }
                }
                ItemKind::Tool(t) => {
                    for p in &t.params {
                        self.type_refs(file, &p.ty);
                    }
                    if let Some(ret) = &t.ret {
                        self.type_refs(file, ret);
                    }
                }
                ItemKind::Workflow(w) => self.workflow_refs(file, w),
                ItemKind::Test(t) => self.test_refs(file, t),
                ItemKind::Model(_) | ItemKind::Policy(_) | ItemKind::Enum(_) | ItemKind::Use(_) | ItemKind::Error => {}
            }
        }
    }

    fn named(&mut self, file: FileId, kind: SymbolKind, name: &ast::Ident) -> bool {
        match self.lookup(kind, &name.name) {
            Some(sid) => {
                self.occur(file, name.span, sid, false);
                true
            }
            None => false,
        }
    }

    fn type_refs(&mut self, file: FileId, ty: &ast::TypeExpr) {
        match &ty.kind {
            TypeExprKind::Named(n) => {
                self.named(file, SymbolKind::Type, n);
            }
            TypeExprKind::List(inner) | TypeExprKind::Optional(inner) => self.type_refs(file, inner),
            TypeExprKind::Record(fields) => {
                for (_, t) in fields {
                    self.type_refs(file, t);
                }
            }
            TypeExprKind::Error => {}
        }
    }

    /// A test block's references: the workflow it runs, the roles and
    /// tools it scripts, the steps it names (go to definition, rename).
    fn test_refs(&mut self, file: FileId, t: &ast::TestDecl) {
        let workflow = t.stmts.iter().find_map(|s| match &s.kind {
            ast::TestStmtKind::Run(ast::Expr { kind: ast::ExprKind::Call { callee, .. }, .. }) if callee.len() == 1 => callee.first(),
            _ => None,
        });
        if let Some(w) = workflow {
            self.named(file, SymbolKind::Workflow, w);
        }
        let steps_of = |this: &Self, name: &ast::Ident| workflow.and_then(|w| this.lookup_local(&w.name, &name.name));
        for s in &t.stmts {
            match &s.kind {
                ast::TestStmtKind::GivenLlm { role, .. } => {
                    self.named(file, SymbolKind::Role, role);
                }
                ast::TestStmtKind::GivenTool { tool, .. } => {
                    if let Some(span) = path_span(tool) {
                        let name = ast::Ident { name: tool_name(tool), span };
                        self.named(file, SymbolKind::Tool, &name);
                    }
                }
                ast::TestStmtKind::Answer { step, .. } => {
                    if let Some(sid) = steps_of(self, step) {
                        self.occur(file, step.span, sid, false);
                    }
                }
                ast::TestStmtKind::Expect { value: ast::Expr { kind: ast::ExprKind::List(items), .. }, .. } => {
                    for i in items {
                        if let ast::ExprKind::Name(n) = &i.kind
                            && let Some(sid) = steps_of(self, n)
                        {
                            self.occur(file, n.span, sid, false);
                        }
                    }
                }
                ast::TestStmtKind::Run(_) | ast::TestStmtKind::Expect { .. } => {}
            }
        }
    }

    fn workflow_refs(&mut self, file: FileId, w: &ast::Workflow) {
        let mut scope = Scope { file, workflow: &w.name.name, vars: Vec::new() };
        for p in &w.params {
            self.type_refs(file, &p.ty);
            if let Some(d) = &p.default {
                self.expr_refs(&mut scope, d, None);
            }
        }
        if let Some(ret) = &w.ret {
            self.type_refs(file, ret);
        }
        for a in &w.attrs {
            self.expr_refs(&mut scope, &a.value, Some(&a.key.name));
        }
        for s in &w.steps {
            if let Some(ty) = &s.ty {
                self.type_refs(file, ty);
            }
            self.expr_refs(&mut scope, &s.call, None);
            for a in crate::check::env::Env::entries(&s.attrs) {
                self.expr_refs(&mut scope, &a.value, Some(&a.key.name));
            }
        }
        if let Some((e, _)) = &w.ret_expr {
            self.expr_refs(&mut scope, e, None);
        }
    }

    fn expr_refs(&mut self, scope: &mut Scope<'_>, e: &ast::Expr, key: Option<&str>) {
        let file = scope.file;
        match &e.kind {
            ExprKind::Name(n) => {
                if let Some(sid) = scope.vars.iter().rev().find(|(name, _)| *name == n.name).map(|(_, s)| *s) {
                    self.occur(file, n.span, sid, false);
                } else if let Some(sid) = self.lookup_local(scope.workflow, &n.name) {
                    self.occur(file, n.span, sid, false);
                } else if matches!(key, Some("verify")) {
                    self.named(file, SymbolKind::Role, n);
                } else if !self.named(file, SymbolKind::Workflow, n) {
                    self.named(file, SymbolKind::Type, n);
                }
            }
            ExprKind::Field(base, field) => {
                if let ExprKind::Name(n) = &base.kind {
                    let is_local = self.lookup_local(scope.workflow, &n.name).is_some()
                        || scope.vars.iter().any(|(name, _)| *name == n.name);
                    if !is_local {
                        if let Some(eid) = self.lookup(SymbolKind::Type, &n.name) {
                            self.occur(file, n.span, eid, false);
                            let full = format!("{}.{}", n.name, field.name);
                            if let Some(vid) = self.lookup(SymbolKind::Variant, &full) {
                                self.occur(file, field.span, vid, false);
                            }
                            return;
                        }
                    }
                }
                self.expr_refs(scope, base, None);
            }
            ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
                self.expr_refs(scope, a, None);
                self.expr_refs(scope, b, None);
            }
            ExprKind::Unary(_, a) => self.expr_refs(scope, a, None),
            ExprKind::List(items) => {
                for i in items {
                    self.expr_refs(scope, i, key);
                }
            }
            ExprKind::Record(fields) => {
                for (_, v) in fields {
                    self.expr_refs(scope, v, None);
                }
            }
            ExprKind::Str(s) => {
                for p in &s.parts {
                    if let StrPart::Interp(x) = p {
                        self.expr_refs(scope, x, None);
                    }
                }
            }
            ExprKind::Call { callee, args } => {
                let name = tool_name(callee);
                let mut workflow = None;
                if callee.len() >= 2 {
                    if let (Some(sid), Some(span)) = (self.lookup(SymbolKind::Tool, &name), path_span(callee)) {
                        self.occur(file, span, sid, false);
                    }
                } else if let Some(first) = callee.first() {
                    if self.named(file, SymbolKind::Workflow, first) {
                        workflow = Some(first.name.clone());
                    }
                }
                for a in args {
                    if let (Some(wf), Some(n)) = (&workflow, &a.name) {
                        if let Some(pid) = self.lookup_local(wf, &n.name) {
                            if self.symbols.get(pid).is_some_and(|s| s.kind == SymbolKind::Param) {
                                self.occur(file, n.span, pid, false);
                            }
                        }
                    }
                    self.expr_refs(scope, &a.value, None);
                }
            }
            ExprKind::Llm { role, prompt, .. } => {
                self.named(file, SymbolKind::Role, role);
                self.expr_refs(scope, prompt, None);
            }
            ExprKind::For { var, iter, body } => {
                self.expr_refs(scope, iter, None);
                let sid = self.push(Symbol {
                    kind: SymbolKind::ForVar,
                    name: var.name.clone(),
                    file: Some(file),
                    name_span: var.span,
                    span: e.span,
                    std: false,
                    workflow: Some(scope.workflow.to_string()),
                });
                self.occur(file, var.span, sid, true);
                scope.vars.push((var.name.clone(), sid));
                self.expr_refs(scope, body, None);
                scope.vars.pop();
            }
            ExprKind::Block { steps, ret } => {
                for s in steps {
                    self.expr_refs(scope, &s.call, None);
                }
                self.expr_refs(scope, ret, None);
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

    /// The occurrence under a byte offset (a cursor right after a name
    /// counts as on it).
    pub fn at(&self, file: FileId, offset: usize) -> Option<&Occurrence> {
        let hits = self
            .occurrences
            .iter()
            .filter(|o| o.file == file && (o.span.start as usize) <= offset && offset <= o.span.end as usize);
        // Prefer the occurrence that starts at or before the cursor and is
        // the narrowest (`Tone.formal`: the variant, not the enum).
        hits.min_by_key(|o| (o.span.end as usize == offset, o.span.len()))
    }

    /// Every occurrence of a symbol, its declaration included.
    pub fn references(&self, symbol: SymbolId) -> impl Iterator<Item = &Occurrence> {
        self.occurrences.iter().filter(move |o| o.symbol == symbol)
    }

    pub fn symbol(&self, id: SymbolId) -> Option<&Symbol> {
        self.symbols.get(id)
    }

    /// Every program-wide symbol of a kind, by name.
    pub fn globals_of(&self, kind: SymbolKind) -> BTreeMap<&str, SymbolId> {
        self.symbols
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == kind && s.workflow.is_none())
            .map(|(i, s)| (s.name.as_str(), i))
            .collect()
    }
}

struct Scope<'w> {
    file: FileId,
    workflow: &'w str,
    /// Fan-out variables in scope, innermost last.
    vars: Vec<(String, SymbolId)>,
}

/// Whether a `Sources` path is a stdlib module's display path.
pub fn is_std_path(path: &str) -> bool {
    path.starts_with("<std>/")
}

/// The dotted name of a path of identifiers.
pub fn tool_name(path: &[ast::Ident]) -> String {
    path.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(".")
}

/// The span covering a dotted path.
pub fn path_span(path: &[ast::Ident]) -> Option<Span> {
    path.iter().map(|i| i.span).reduce(Span::join)
}

/// The syntax tree of a file of the analysis.
pub fn file_ast(analysis: &Analysis, file: FileId) -> Option<&ast::File> {
    analysis.files.iter().find(|(id, _)| *id == file).map(|(_, f)| f)
}

/// The workflow whose span contains `offset` in `file`.
pub fn workflow_at(file: &ast::File, offset: usize) -> Option<(&ast::Item, &ast::Workflow)> {
    file.items.iter().find_map(|item| match &item.kind {
        ItemKind::Workflow(w) if contains(item.span, offset) => Some((item, w)),
        _ => None,
    })
}

/// `start <= offset <= end`.
pub fn contains(span: Span, offset: usize) -> bool {
    (span.start as usize) <= offset && offset <= span.end as usize
}

/// The cost bounds of every step and the risk facts of every workflow, as
/// the checker computes them (recomputed from the trees of the analysis;
/// findings are discarded, `check` already reported them).
pub struct Facts {
    pub cost: crate::check::cost::CostReport,
    /// (workflow, step) → (risk, effect, why).
    pub risk: BTreeMap<(String, String), (crate::ir::Risk, crate::ir::Effect, String)>,
    pub models: BTreeMap<String, crate::ir::Model>,
}

/// Recomputes cost, risk and model facts for hovers.
pub fn facts(analysis: &Analysis) -> Facts {
    let std_files = analysis
        .files
        .iter()
        .filter_map(|(id, _)| {
            let path = analysis.sources.path(*id);
            path.strip_prefix("<std>/")
                .and_then(|p| p.strip_suffix(".aos"))
                .map(|name| (*id, name.to_string()))
        })
        .collect();
    let loaded = crate::check::resolve::Loaded { files: analysis.files.clone(), std_files };
    facts_of(&loaded)
}

/// [`facts`] for one workflow (and the workflows it calls) and every model:
/// what a hover inside that workflow shows, computed from the stored trees
/// over the declarations and that workflow alone (the other workflows stand
/// as bare names), so that its cost does not grow with the file. With
/// `None`, the models alone.
pub fn facts_for(analysis: &Analysis, workflow: Option<&str>) -> Facts {
    let focus = workflow.map(str::to_string).into_iter().collect();
    let loaded = crate::check::incremental::reduced(&analysis.files, &analysis.sources, analysis.main, &focus);
    facts_of(&loaded)
}

fn facts_of(loaded: &crate::check::resolve::Loaded) -> Facts {
    use crate::check::{cost, models, resolve, risk};
    let mut scratch = Vec::new();
    let env = resolve::build_env(loaded, &mut scratch);
    let models = models::lower_models(&env, &mut scratch);
    let cost = cost::analyze(&env, &models, &mut scratch);
    let mut risks = BTreeMap::new();
    for wf in risk::analyze(&env, &mut scratch) {
        for s in &wf.steps {
            risks.insert((wf.name.clone(), s.step.name.name.clone()), (s.risk, s.effect, s.source.describe()));
        }
    }
    Facts { cost, risk: risks, models }
}
