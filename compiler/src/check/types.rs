//! Names and types: every name a workflow mentions resolves (E0101, E0103),
//! every value fits where it goes (E0201, E0202, E0203), and no secret
//! flows where it could leak (E0701).
//!
//! Scopes inside a workflow: its parameters and steps (in any order) and,
//! inside a fan-out body, the fan-out variable. Policy conditions name facts,
//! not values: they are the policy pass's business.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;

use crate::ast::{self, BinaryOp, ExprKind, StrPart, UnaryOp};
use crate::diagnostic::Diagnostic;
use crate::codes::Code;
use crate::source::FileId;
use crate::span::Span;

use super::env::{BUILTIN_ROLES, Decl, Env, PURE_BUILTINS};
use super::suggest;
use super::ty::{self, BUILTIN_TYPES, Ty, assignable};

mod calls;
mod expr;
mod decls;

use decls::*;

/// The constructors usable in attribute values and `secret(…)`.
pub const CONSTRUCTORS: &[&str] = &["cron", "event", "fixed", "exponential", "secret"];

/// What the pass learned: the value type of every step, for lowering.
#[derive(Debug, Default)]
pub struct TypeInfo {
    /// workflow → step → the step's value type (optional under `when:`).
    pub steps: BTreeMap<String, BTreeMap<String, Ty>>,
    /// Each workflow's return type (`None` when it returns nothing).
    pub returns: BTreeMap<String, Option<Ty>>,
}

/// Checks names and types of every user declaration.
pub fn check(env: &Env, diags: &mut Vec<Diagnostic>) -> TypeInfo {
    let cx = Cx::new(env);
    check_type_names(env, diags);
    check_role_models(env, diags);
    let mut info = TypeInfo::default();
    for tool in env.tools.values().filter(|t| !t.std) {
        check_defaults(&cx, tool.file, &tool.decl.params, diags);
    }
    for (name, wf) in &env.workflows {
        let mut w = Walker::new(&cx, wf.file, wf.decl, diags);
        w.workflow();
        let steps = info.steps.entry(name.clone()).or_default();
        for (s, t) in w.step_tys {
            steps.insert(s.to_string(), t);
        }
        info.returns.insert(name.clone(), cx.workflow_ret(name));
    }
    info
}

/// Shared, read-only context with the memo of workflow return types.
pub(crate) struct Cx<'e, 'a> {
    pub env: &'e Env<'a>,
    returns: RefCell<BTreeMap<String, Option<Ty>>>,
    in_progress: RefCell<BTreeSet<String>>,
}

impl<'e, 'a> Cx<'e, 'a> {
    pub fn new(env: &'e Env<'a>) -> Self {
        Cx { env, returns: RefCell::new(BTreeMap::new()), in_progress: RefCell::new(BTreeSet::new()) }
    }

    fn resolve(&self, t: &ast::TypeExpr) -> Ty {
        ty::resolve(self.env, t)
    }

    /// The return type of a workflow: declared, else inferred from its
    /// `return` (quietly: its own check reports its mistakes), else `None`.
    pub fn workflow_ret(&self, name: &str) -> Option<Ty> {
        if let Some(t) = self.returns.borrow().get(name) {
            return t.clone();
        }
        let wf = self.env.workflows.get(name)?;
        let t = if let Some(ret) = &wf.decl.ret {
            Some(self.resolve(ret))
        } else if let Some((e, _)) = &wf.decl.ret_expr {
            if !self.in_progress.borrow_mut().insert(name.to_string()) {
                return Some(Ty::Unknown);
            }
            let mut sink = Vec::new();
            let t = {
                let mut w = Walker::new(self, wf.file, wf.decl, &mut sink);
                w.expr(e)
            };
            self.in_progress.borrow_mut().remove(name);
            Some(t)
        } else {
            None
        };
        self.returns.borrow_mut().insert(name.to_string(), t.clone());
        t
    }

    /// The value type of calling `callee` (a tool or workflow), quietly.
    fn call_result(&self, callee: &[ast::Ident]) -> Ty {
        match callee {
            [one] => {
                if self.env.workflows.contains_key(&one.name) {
                    self.workflow_ret(&one.name).unwrap_or(Ty::Null)
                } else {
                    Ty::Unknown
                }
            }
            _ => match self.env.tools.get(&Env::tool_name(callee)) {
                Some(t) => t.decl.ret.as_ref().map_or(Ty::Json, |r| self.resolve(r)),
                None => Ty::Unknown,
            },
        }
    }

    /// The value type of a step, from its declaration and call alone (no
    /// diagnostics): steps may refer to each other in any order.
    pub fn step_type(&self, step: &ast::Step) -> Ty {
        let declared = step.ty.as_ref().map(|t| self.resolve(t));
        let base = self.call_value_type(&step.call, declared);
        if Env::attr(Env::entries(&step.attrs), "when").is_some() { base.optional() } else { base }
    }

    /// The value type of a step's call (or fallback), given the step's
    /// declared type, quietly.
    fn call_value_type(&self, call: &ast::Expr, declared: Option<Ty>) -> Ty {
        match (&call.kind, declared) {
            (ExprKind::Llm { .. }, d) => d.unwrap_or(Ty::String),
            (ExprKind::Call { callee, .. }, None) => self.call_result(callee),
            (ExprKind::For { body, .. }, None) => {
                let item = match &body.kind {
                    ExprKind::Llm { .. } => Ty::String,
                    ExprKind::Call { callee, .. } => self.call_result(callee),
                    _ => Ty::Unknown,
                };
                Ty::List(Box::new(item))
            }
            (_, Some(d)) => d,
            (_, None) => Ty::Unknown,
        }
    }
}

/// Where a value goes, for the wording of E0201/E0203/E0701.
enum Sink<'s> {
    Param { callee: &'s str, param: &'s str },
    Return { workflow: &'s str },
    Prompt,
    Interp,
    Builtin(&'s str),
    Attr(&'s str),
    Operand(&'s str),
    Default { param: &'s str },
}

impl Sink<'_> {
    fn expects(&self, expected: &Ty) -> String {
        match self {
            Sink::Param { callee, param } => format!("parameter `{param}` of `{callee}` expects `{expected}`"),
            Sink::Return { workflow } => format!("workflow `{workflow}` returns `{expected}`"),
            Sink::Prompt => "a prompt must be text".to_string(),
            Sink::Interp => "an interpolation renders a value".to_string(),
            Sink::Builtin(name) => format!("`{name}` expects `{expected}`"),
            Sink::Attr(key) => format!("`{key}:` expects `{expected}`"),
            Sink::Operand(op) => format!("`{op}` expects `{expected}`"),
            Sink::Default { param } => format!("parameter `{param}` is `{expected}`"),
        }
    }

    fn leak(&self) -> String {
        match self {
            Sink::Param { callee, param } => {
                format!("a secret is passed to parameter `{param}` of `{callee}`, which is not declared `Secret`")
            }
            Sink::Return { workflow } => format!("workflow `{workflow}` returns a secret"),
            Sink::Prompt => "a secret flows into an LLM prompt".to_string(),
            Sink::Interp => "a secret is interpolated into a string".to_string(),
            Sink::Builtin(name) => format!("a secret is passed to `{name}`"),
            Sink::Attr(key) => format!("a secret is used as `{key}:`"),
            Sink::Operand(op) => format!("a secret is used as an operand of `{op}`"),
            Sink::Default { param } => format!("a secret is the default of parameter `{param}`"),
        }
    }
}

struct Walker<'c, 'e, 'a, 'd> {
    cx: &'c Cx<'e, 'a>,
    file: FileId,
    wf: &'a ast::Workflow,
    params: FxHashMap<&'a str, &'a ast::Param>,
    steps: FxHashMap<&'a str, &'a ast::Step>,
    step_tys: FxHashMap<&'a str, Ty>,
    /// Fan-out variables in scope, innermost last.
    vars: Vec<(String, Ty)>,
    diags: &'d mut Vec<Diagnostic>,
}

impl<'c, 'e, 'a, 'd> Walker<'c, 'e, 'a, 'd> {
    fn new(cx: &'c Cx<'e, 'a>, file: FileId, wf: &'a ast::Workflow, diags: &'d mut Vec<Diagnostic>) -> Self {
        let mut params = FxHashMap::default();
        for p in &wf.params {
            params.entry(p.name.name.as_str()).or_insert(p);
        }
        let mut steps = FxHashMap::default();
        let mut step_tys = FxHashMap::default();
        for s in &wf.steps {
            if params.contains_key(s.name.name.as_str()) || steps.contains_key(s.name.name.as_str()) {
                continue;
            }
            steps.insert(s.name.name.as_str(), s);
            step_tys.insert(s.name.name.as_str(), cx.step_type(s));
        }
        Walker { cx, file, wf, params, steps, step_tys, vars: Vec::new(), diags }
    }

    fn env(&self) -> &'e Env<'a> {
        self.cx.env
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn workflow(&mut self) {
        let wf = self.wf;
        check_defaults(self.cx, self.file, &wf.params, self.diags);
        for a in &wf.attrs {
            self.workflow_attr(a);
        }
        for s in &wf.steps {
            self.step(s);
        }
        if let Some((e, _)) = &wf.ret_expr {
            let t = self.expr(e);
            match &wf.ret {
                Some(r) => {
                    let expected = self.cx.resolve(r);
                    self.expect(&t, &expected, e.span, &Sink::Return { workflow: &wf.name.name });
                }
                None if t.contains_secret() => {
                    let d = Diagnostic::error(Code::E0701, self.file, e.span, Sink::Return { workflow: &wf.name.name }.leak())
                        .with_primary_label("this is a `Secret`")
                        .with_help("secrets may only be passed to tool parameters declared `Secret`");
                    self.push(d);
                }
                None => {}
            }
        }
    }

    fn workflow_attr(&mut self, a: &ast::Attr) {
        let key = a.key.name.as_str();
        match key {
            "intent" => self.attr_expect(a, &Ty::String),
            "budget" => self.attr_expect(a, &Ty::Money),
            "max_concurrency" | "max_param_tokens" | "priority" => self.attr_expect(a, &Ty::Int),
            // `risk:` levels are read (and reported) by the risk pass.
            "trigger" => self.attr_expect(a, &Ty::Trigger),
            _ => {}
        }
    }

    fn attr_expect(&mut self, a: &ast::Attr, expected: &Ty) {
        let t = self.expr(&a.value);
        self.expect(&t, expected, a.value.span, &Sink::Attr(&a.key.name));
    }

    fn step(&mut self, s: &'a ast::Step) {
        let declared = s.ty.as_ref().map(|t| self.cx.resolve(t));
        self.step_call(s, &s.call, declared.as_ref());
        for a in Env::entries(&s.attrs) {
            self.step_attr(s, a, declared.as_ref());
        }
    }

    /// The call of a step (or of its `fallback:`), checked against the
    /// step's declared type.
    fn step_call(&mut self, s: &ast::Step, call: &ast::Expr, declared: Option<&Ty>) {
        match &call.kind {
            ExprKind::Llm { role, prompt, .. } => self.llm(role, prompt),
            ExprKind::Call { callee, args } => {
                let t = self.call(callee, args, call.span);
                if let Some(d) = declared {
                    self.refine(s, &t, d, call.span);
                }
            }
            ExprKind::For { var, iter, body } => {
                let iter_t = self.expr(iter);
                let item = match &iter_t {
                    Ty::List(t) => (**t).clone(),
                    Ty::Json | Ty::Unknown => Ty::Json,
                    Ty::Optional(_) => {
                        self.push(
                            Diagnostic::error(Code::E0203, self.file, iter.span, format!("a fan-out needs a list, and this is `{iter_t}`"))
                                .with_primary_label("may be null")
                                .with_help("give a default with `??`, e.g. `xs ?? []`"),
                        );
                        Ty::Unknown
                    }
                    other => {
                        self.push(
                            Diagnostic::error(Code::E0201, self.file, iter.span, format!("a fan-out needs a list, and this is `{other}`"))
                                .with_primary_label(format!("this is `{other}`")),
                        );
                        Ty::Unknown
                    }
                };
                let elem_declared = match declared {
                    Some(Ty::List(t)) => Some((**t).clone()),
                    Some(Ty::Unknown | Ty::Json) | None => None,
                    Some(other) => {
                        self.push(
                            Diagnostic::error(
                                Code::E0201,
                                self.file,
                                s.ty.as_ref().map_or(s.name.span, |t| t.span),
                                format!("step `{}` is a fan-out, so its type is a list, not `{other}`", s.name.name),
                            )
                            .with_primary_label("declared here")
                            .with_help(format!("declare it `List<{other}>`")),
                        );
                        None
                    }
                };
                self.vars.push((var.name.clone(), item));
                self.step_call(s, body, elem_declared.as_ref());
                self.vars.pop();
            }
            ExprKind::Error => {}
            _ => {
                let t = self.expr(call);
                let _ = t;
                self.push(
                    Diagnostic::error(Code::E0201, self.file, call.span, "a step must call a tool, a workflow or a model")
                        .with_primary_label("not a call")
                        .with_help("write `tool.name(arg: value)`, `workflow_name(arg: value)`, `llm ROLE(\"prompt\")` or `for x in list => CALL`"),
                );
            }
        }
    }

    /// A fallback of a step without a declared type must give a value of the
    /// type its call gives (steps downstream rely on it).
    fn fallback_fits(&mut self, s: &ast::Step, fallback: &ast::Expr) {
        let primary = self.cx.call_value_type(&s.call, None);
        let found = self.cx.call_value_type(fallback, None);
        if assignable(&found, &primary) || assignable(&primary, &found) {
            return;
        }
        let d = Diagnostic::error(
            Code::E0201,
            self.file,
            fallback.span,
            format!("the fallback of step `{}` returns `{found}`, but its call returns `{primary}`", s.name.name),
        )
        .with_primary_label(format!("this returns `{found}`"))
        .with_label(self.file, s.call.span, format!("this returns `{primary}`"))
        .with_help(format!("make the fallback return `{primary}`, or declare the step's type: `step {}: T = …`", s.name.name));
        self.push(d);
    }

    /// A declared step type may refine what the call returns.
    fn refine(&mut self, s: &ast::Step, found: &Ty, declared: &Ty, span: Span) {
        if assignable(found, declared) || assignable(declared, found) {
            return;
        }
        let d = Diagnostic::error(
            Code::E0201,
            self.file,
            s.ty.as_ref().map_or(span, |t| t.span),
            format!("step `{}` is declared `{declared}`, but its call returns `{found}`", s.name.name),
        )
        .with_primary_label("declared here")
        .with_label(self.file, span, format!("this returns `{found}`"));
        self.push(d);
    }

    fn llm(&mut self, role: &ast::Ident, prompt: &ast::Expr) {
        self.role_name(role);
        let t = self.expr(prompt);
        if t.contains_secret() {
            self.leak(prompt.span, &Sink::Prompt);
        }
    }

    /// A role named by `llm ROLE(…)` or `verify:`: declared or built-in.
    fn role_name(&mut self, role: &ast::Ident) {
        let env = self.env();
        if env.roles.contains_key(&role.name) || BUILTIN_ROLES.contains(&role.name.as_str()) {
            return;
        }
        let candidates: Vec<&str> = env.roles.keys().map(String::as_str).chain(BUILTIN_ROLES.iter().copied()).collect();
        let mut d = Diagnostic::error(Code::E0101, self.file, role.span, format!("unknown role `{}`", role.name))
            .with_primary_label("no role of this name");
        d = match suggest::did_you_mean(&role.name, candidates.iter().copied()) {
            Some(h) => d.with_help(h),
            None => {
                let model = env.models.keys().next().map_or("MODEL", String::as_str);
                d.with_help(format!("declare it: `role {} = [{model}]`", role.name))
            }
        };
        self.push(d);
    }

    fn step_attr(&mut self, s: &'a ast::Step, a: &ast::Attr, declared: Option<&Ty>) {
        let key = a.key.name.as_str();
        match key {
            "when" => self.attr_expect(a, &Ty::Bool),
            "retry" | "max_tokens" | "max_reply_bytes" | "max_input_tokens" | "max_output_tokens" | "max_items" | "concurrency" | "max_turns"
            | "max_tool_calls" => {
                self.attr_expect(a, &Ty::Int);
            }
            "timeout" | "cache" => self.attr_expect(a, &Ty::Duration),
            "backoff" => self.attr_expect(a, &Ty::Backoff),
            "approval" => self.attr_expect(a, &Ty::String),
            "min_confidence" => self.attr_expect(a, &Ty::Float),
            "verify" => match &a.value.kind {
                ExprKind::Name(id) => self.role_name(id),
                _ => self.push(
                    Diagnostic::error(Code::E0201, self.file, a.value.span, "`verify:` expects a role name")
                        .with_primary_label("not a role name")
                        .with_help("write `verify: verifier`"),
                ),
            },
            "after" => {
                let ok = matches!(&a.value.kind, ExprKind::List(items)
                    if items.iter().all(|i| matches!(i.kind, ExprKind::Name(_) | ExprKind::Error)));
                if !ok {
                    self.push(
                        Diagnostic::error(Code::E0201, self.file, a.value.span, "`after:` expects a list of step names")
                            .with_primary_label("not a list of step names")
                            .with_help("write `after: [step_a, step_b]`"),
                    );
                }
            }
            "fallback" => {
                self.step_call(s, &a.value, declared);
                if declared.is_none() {
                    self.fallback_fits(s, &a.value);
                }
            }
            "idempotency_key" => {
                let _ = self.expr(&a.value);
            }
            _ => {}
        }
    }

}
