//! Names and types: every name a workflow mentions resolves (E0101, E0103),
//! every value fits where it goes (E0201, E0202, E0203), and no secret
//! flows where it could leak (E0701).
//!
//! Scopes inside a workflow: its parameters and steps (in any order) and,
//! inside a fan-out body, the fan-out variable. Policy conditions name facts,
//! not values: they are the policy pass's business.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ast::{self, BinaryOp, ExprKind, StrPart, UnaryOp};
use crate::diagnostic::Diagnostic;
use crate::codes::Code;
use crate::source::FileId;
use crate::span::Span;

use super::env::{BUILTIN_ROLES, Decl, Env, PURE_BUILTINS};
use super::suggest;
use super::ty::{self, BUILTIN_TYPES, Ty, assignable};

/// The constructors usable in attribute values and `secret(…)`.
pub const CONSTRUCTORS: &[&str] = &["cron", "event", "fixed", "exponential", "secret"];

/// What the pass learned: the value type of every step, for lowering.
#[derive(Debug, Default)]
pub struct TypeInfo {
    /// (workflow, step) → the step's value type (optional under `when:`).
    pub steps: BTreeMap<(String, String), Ty>,
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
        for (s, t) in w.step_tys {
            info.steps.insert((name.clone(), s.to_string()), t);
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
    params: HashMap<&'a str, &'a ast::Param>,
    steps: HashMap<&'a str, &'a ast::Step>,
    step_tys: BTreeMap<&'a str, Ty>,
    /// Fan-out variables in scope, innermost last.
    vars: Vec<(String, Ty)>,
    diags: &'d mut Vec<Diagnostic>,
}

impl<'c, 'e, 'a, 'd> Walker<'c, 'e, 'a, 'd> {
    fn new(cx: &'c Cx<'e, 'a>, file: FileId, wf: &'a ast::Workflow, diags: &'d mut Vec<Diagnostic>) -> Self {
        let mut params = HashMap::new();
        for p in &wf.params {
            params.entry(p.name.name.as_str()).or_insert(p);
        }
        let mut steps = HashMap::new();
        let mut step_tys = BTreeMap::new();
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
            "max_concurrency" | "max_param_tokens" => self.attr_expect(a, &Ty::Int),
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
            ExprKind::Llm { role, prompt } => self.llm(role, prompt),
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
            "retry" | "max_tokens" | "max_reply_bytes" | "max_input_tokens" | "max_output_tokens" | "max_items" | "concurrency" => {
                self.attr_expect(a, &Ty::Int);
            }
            "timeout" => self.attr_expect(a, &Ty::Duration),
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

    /// A tool or workflow call made by a step; returns its value type.
    fn call(&mut self, callee: &[ast::Ident], args: &[ast::Arg], span: Span) -> Ty {
        let env = self.env();
        let Some(last) = callee.last() else { return Ty::Unknown };
        let path_span = callee.iter().map(|i| i.span).fold(last.span, Span::join);
        let name = Env::tool_name(callee);
        if let [one] = callee {
            if PURE_BUILTINS.contains(&one.name.as_str()) || CONSTRUCTORS.contains(&one.name.as_str()) {
                self.args_only(args);
                self.push(
                    Diagnostic::error(Code::E0201, self.file, path_span, format!("`{name}` is a built-in function, not a step's call"))
                        .with_primary_label("a step must call a tool, a workflow or a model")
                        .with_help(format!("use `{name}(…)` inside an expression, e.g. in a prompt: \"{{{name}(…)}}\"")),
                );
                return Ty::Unknown;
            }
            let Some(wf) = env.workflows.get(&one.name) else {
                self.args_only(args);
                let mut d = Diagnostic::error(Code::E0101, self.file, path_span, format!("unknown workflow `{name}`"))
                    .with_primary_label("no workflow of this name");
                if let Some(h) = suggest::did_you_mean(&name, env.workflows.keys().map(String::as_str)) {
                    d = d.with_help(h);
                }
                self.push(d);
                return Ty::Unknown;
            };
            let kind = format!("workflow `{name}`");
            self.args(&kind, &name, &wf.decl.params, wf.file, args, path_span, span);
            return self.cx.call_result(callee);
        }
        let Some(tool) = env.tools.get(&name) else {
            self.args_only(args);
            let mut d = Diagnostic::error(Code::E0103, self.file, path_span, format!("unknown tool `{name}`"))
                .with_primary_label("no tool of this name is visible");
            if let Some(module) = env.unused_std_tools.get(&name) {
                d = d.with_help(format!("`{name}` is in the standard library: add `use std.{module}`"));
            } else if let Some(h) = suggest::did_you_mean(&name, env.tools.keys().map(String::as_str)) {
                d = d.with_help(h);
            } else if let Some(near) = suggest::closest(&name, env.unused_std_tools.keys().map(String::as_str)) {
                let module = env.unused_std_tools.get(near).copied().unwrap_or("");
                d = d.with_help(format!("did you mean `{near}`? it is in the standard library: add `use std.{module}`"));
            }
            self.push(d);
            return Ty::Unknown;
        };
        let kind = format!("tool `{name}`");
        self.args(&kind, &name, &tool.decl.params, tool.file, args, path_span, span);
        self.cx.call_result(callee)
    }

    /// Type the values of arguments whose callee is unknown (for names).
    fn args_only(&mut self, args: &[ast::Arg]) {
        for a in args {
            let _ = self.expr(&a.value);
        }
    }

    /// Named arguments against parameters (E0202), each value against its
    /// parameter's type.
    #[allow(clippy::too_many_arguments)]
    fn args(
        &mut self,
        kind: &str,
        callee: &str,
        params: &[ast::Param],
        decl_file: FileId,
        args: &[ast::Arg],
        path_span: Span,
        _call_span: Span,
    ) {
        let mut given: HashMap<&str, Span> = HashMap::new();
        let names: Vec<&str> = params.iter().map(|p| p.name.name.as_str()).collect();
        for a in args {
            let t = self.expr(&a.value);
            let Some(name) = &a.name else {
                let d = Diagnostic::error(Code::E0202, self.file, a.span, format!("the arguments of {kind} must be named"))
                    .with_primary_label("positional argument")
                    .with_help(format!("write `name: value`; the parameters are {}", list_names(&names)));
                self.push(d);
                continue;
            };
            if let Some(first) = given.get(name.name.as_str()) {
                let d = Diagnostic::error(Code::E0202, self.file, name.span, format!("argument `{}` is given twice", name.name))
                    .with_primary_label("given again here")
                    .with_label(self.file, *first, "first given here");
                self.push(d);
                continue;
            }
            given.insert(&name.name, name.span);
            let Some(p) = params.iter().find(|p| p.name.name == name.name) else {
                let mut d = Diagnostic::error(Code::E0202, self.file, name.span, format!("{kind} has no parameter `{}`", name.name))
                    .with_primary_label("unknown argument");
                d = match suggest::closest(&name.name, names.iter().copied()) {
                    Some(near) => d.with_help(format!("did you mean `{near}`?")),
                    None if names.is_empty() => d.with_help(format!("{kind} takes no arguments")),
                    None => d.with_help(format!("the parameters are {}", list_names(&names))),
                };
                self.push(d);
                continue;
            };
            let expected = self.cx.resolve(&p.ty);
            self.expect(&t, &expected, a.value.span, &Sink::Param { callee, param: &p.name.name });
        }
        // A positional argument or a misspelt name already has its
        // diagnostic; the parameter it was meant for is not "missing" too.
        if args.iter().any(|a| a.name.is_none()) {
            return;
        }
        let misspelt: Vec<&str> = args
            .iter()
            .filter_map(|a| a.name.as_ref())
            .filter(|n| !names.contains(&n.name.as_str()))
            .filter_map(|n| suggest::closest(&n.name, names.iter().copied()))
            .collect();
        let missing: Vec<&ast::Param> = params
            .iter()
            .filter(|p| {
                !given.contains_key(p.name.name.as_str())
                    && !misspelt.contains(&p.name.name.as_str())
                    && p.default.is_none()
                    && !matches!(p.ty.kind, ast::TypeExprKind::Optional(_))
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        let list: Vec<&str> = missing.iter().map(|p| p.name.name.as_str()).collect();
        let msg = if let [one] = list.as_slice() {
            format!("missing argument `{one}` in the call of {kind}")
        } else {
            format!("missing arguments {} in the call of {kind}", list_names(&list))
        };
        let mut d = Diagnostic::error(Code::E0202, self.file, path_span, msg).with_primary_label("called here");
        for p in &missing {
            d = d.with_label(decl_file, p.name.span, format!("`{}` is declared here", p.name.name));
        }
        let example: Vec<String> = missing.iter().map(|p| format!("`{}: …`", p.name.name)).collect();
        d = d.with_help(format!("add {}", example.join(", ")));
        self.push(d);
    }

    /// Report whatever keeps a `found` value from going where `expected`
    /// is needed.
    fn expect(&mut self, found: &Ty, expected: &Ty, span: Span, sink: &Sink) {
        if found.contains_secret() && !expected.contains_secret() && *expected != Ty::Unknown {
            self.leak(span, sink);
            return;
        }
        if assignable(found, expected) {
            return;
        }
        if let Ty::Optional(inner) = found
            && assignable(inner, expected) {
                let d = Diagnostic::error(Code::E0203, self.file, span, format!("{}, but this may be null", sink.expects(expected)))
                    .with_primary_label(format!("this is `{found}`"))
                    .with_help("give a default with `??` (`value ?? fallback`), or remove the `when:` that makes it optional");
                self.push(d);
                return;
            }
        let d = Diagnostic::error(Code::E0201, self.file, span, format!("{}, found `{found}`", sink.expects(expected)))
            .with_primary_label(format!("this is `{found}`"));
        self.push(d);
    }

    fn leak(&mut self, span: Span, sink: &Sink) {
        let d = Diagnostic::error(Code::E0701, self.file, span, sink.leak())
            .with_primary_label("this is a `Secret`")
            .with_help("a secret may only be passed to a tool parameter declared `Secret`; the runtime resolves it there");
        self.push(d);
    }

    /// The type of an expression, reporting unknown names and misuses.
    fn expr(&mut self, e: &ast::Expr) -> Ty {
        match &e.kind {
            ExprKind::Int(_) => Ty::Int,
            ExprKind::Float(_) => Ty::Float,
            ExprKind::Bool(_) => Ty::Bool,
            ExprKind::Null => Ty::Null,
            ExprKind::Duration(_) => Ty::Duration,
            ExprKind::Money(_) | ExprKind::Price(_) => Ty::Money,
            ExprKind::Error => Ty::Unknown,
            ExprKind::Str(s) => {
                for part in &s.parts {
                    if let StrPart::Interp(x) = part {
                        let t = self.expr(x);
                        if t.contains_secret() {
                            self.leak(x.span, &Sink::Interp);
                        }
                    }
                }
                Ty::String
            }
            ExprKind::Name(id) => self.name(id),
            ExprKind::Field(base, field) => self.field(base, field),
            ExprKind::Index(base, index) => {
                let bt = self.expr(base);
                let it = self.expr(index);
                match &bt {
                    Ty::List(item) => {
                        self.expect(&it, &Ty::Int, index.span, &Sink::Operand("[…]"));
                        (**item).clone()
                    }
                    Ty::Json | Ty::Unknown => Ty::Json,
                    Ty::Optional(_) => {
                        self.optional_base(base.span, &bt);
                        Ty::Unknown
                    }
                    other => {
                        self.push(
                            Diagnostic::error(Code::E0201, self.file, base.span, format!("`{other}` cannot be indexed"))
                                .with_primary_label(format!("this is `{other}`"))
                                .with_help("only lists and `Json` values can be indexed"),
                        );
                        Ty::Unknown
                    }
                }
            }
            ExprKind::List(items) => {
                let mut item_ty: Option<Ty> = None;
                for i in items {
                    let t = self.expr(i);
                    match &item_ty {
                        None => item_ty = Some(t),
                        Some(Ty::Unknown) => item_ty = Some(t),
                        Some(first) => {
                            if !assignable(&t, first) {
                                if assignable(first, &t) {
                                    item_ty = Some(t);
                                } else {
                                    item_ty = Some(Ty::Json);
                                }
                            }
                        }
                    }
                }
                Ty::List(Box::new(item_ty.unwrap_or(Ty::Unknown)))
            }
            ExprKind::Record(fields) => {
                let mut seen: HashMap<&str, Span> = HashMap::new();
                let mut out = Vec::new();
                for (name, value) in fields {
                    let t = self.expr(value);
                    if let Some(first) = seen.get(name.name.as_str()) {
                        let d = Diagnostic::error(Code::E0102, self.file, name.span, format!("field `{}` is given twice", name.name))
                            .with_primary_label("given again here")
                            .with_label(self.file, *first, "first given here");
                        self.push(d);
                        continue;
                    }
                    seen.insert(&name.name, name.span);
                    out.push((name.name.clone(), t));
                }
                Ty::Record(None, out)
            }
            ExprKind::Unary(op, a) => {
                let t = self.expr(a);
                match op {
                    UnaryOp::Not => {
                        self.expect(&t, &Ty::Bool, a.span, &Sink::Operand("not"));
                        Ty::Bool
                    }
                    UnaryOp::Neg => {
                        if !t.unwrap_optional().is_numeric() || t.is_optional() {
                            self.expect(&t, &Ty::Float, a.span, &Sink::Operand("-"));
                            return Ty::Unknown;
                        }
                        t
                    }
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b),
            ExprKind::Call { callee, args } => self.builtin(callee, args),
            ExprKind::Llm { role, prompt } => {
                self.llm(role, prompt);
                self.push(
                    Diagnostic::error(Code::E0201, self.file, e.span, "an LLM call can only be the call of a step")
                        .with_primary_label("not allowed inside an expression")
                        .with_help("make it a step of its own: `step answer = llm ROLE(…)`, then use `answer`"),
                );
                Ty::Unknown
            }
            ExprKind::For { .. } => {
                self.push(
                    Diagnostic::error(Code::E0201, self.file, e.span, "a fan-out can only be the call of a step")
                        .with_primary_label("not allowed inside an expression")
                        .with_help("make it a step of its own: `step xs = for x in list => CALL`"),
                );
                Ty::Unknown
            }
        }
    }

    fn name(&mut self, id: &ast::Ident) -> Ty {
        if let Some((_, t)) = self.vars.iter().rev().find(|(n, _)| *n == id.name) {
            return t.clone();
        }
        if let Some(p) = self.params.get(id.name.as_str()) {
            return self.cx.resolve(&p.ty);
        }
        if let Some(t) = self.step_tys.get(id.name.as_str()) {
            return t.clone();
        }
        if self.env().enums.contains_key(&id.name) {
            self.push(
                Diagnostic::error(Code::E0201, self.file, id.span, format!("`{}` is an enum type, not a value", id.name))
                    .with_primary_label("a type")
                    .with_help(format!("name one of its variants: `{}.VARIANT`", id.name)),
            );
            return Ty::Unknown;
        }
        let mut candidates: Vec<&str> = self.vars.iter().map(|(n, _)| n.as_str()).collect();
        candidates.extend(self.wf.params.iter().map(|p| p.name.name.as_str()));
        candidates.extend(self.wf.steps.iter().map(|s| s.name.name.as_str()));
        let mut d = Diagnostic::error(Code::E0101, self.file, id.span, format!("unknown step or parameter `{}`", id.name))
            .with_primary_label(format!("not a parameter, step or variable of workflow `{}`", self.wf.name.name));
        if let Some(h) = suggest::did_you_mean(&id.name, candidates) {
            d = d.with_help(h);
        }
        self.push(d);
        Ty::Unknown
    }

    fn is_local(&self, name: &str) -> bool {
        self.vars.iter().any(|(n, _)| n == name) || self.params.contains_key(name) || self.steps.contains_key(name)
    }

    fn field(&mut self, base: &ast::Expr, field: &ast::Ident) -> Ty {
        // `Enum.variant`
        if let ExprKind::Name(id) = &base.kind
            && !self.is_local(&id.name)
                && let Some(e) = self.env().enums.get(&id.name) {
                    let variants: Vec<&str> = e.decl.variants.iter().map(|v| v.name.as_str()).collect();
                    if !variants.contains(&field.name.as_str()) {
                        let mut d = Diagnostic::error(
                            Code::E0101,
                            self.file,
                            field.span,
                            format!("enum `{}` has no variant `{}`", id.name, field.name),
                        )
                        .with_primary_label("unknown variant")
                        .with_label(e.file, e.decl.name.span, format!("`{}` is declared here", id.name));
                        d = match suggest::did_you_mean(&field.name, variants.iter().copied()) {
                            Some(h) => d.with_help(h),
                            None => d.with_help(format!("its variants are {}", list_names(&variants))),
                        };
                        self.push(d);
                        return Ty::Unknown;
                    }
                    return ty::resolve(
                        self.env(),
                        &ast::TypeExpr { kind: ast::TypeExprKind::Named(id.clone()), span: id.span },
                    );
                }
        let bt = self.expr(base);
        match &bt {
            Ty::Record(name, fields) => match fields.iter().find(|(n, _)| *n == field.name) {
                Some((_, t)) => t.clone(),
                None => {
                    let what = match (name, &base.kind) {
                        (_, ExprKind::Name(id)) => format!("`{}`", id.name),
                        (Some(n), _) => format!("`{n}`"),
                        (None, _) => "this record".to_string(),
                    };
                    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
                    let mut d = Diagnostic::error(Code::E0101, self.file, field.span, format!("{what} has no field `{}`", field.name))
                        .with_primary_label("unknown field");
                    d = match suggest::did_you_mean(&field.name, names.iter().copied()) {
                        Some(h) => d.with_help(h),
                        None => d.with_help(format!("its fields are {}", list_names(&names))),
                    };
                    self.push(d);
                    Ty::Unknown
                }
            },
            Ty::Json | Ty::Unknown => bt.clone(),
            Ty::Optional(_) => {
                self.optional_base(base.span, &bt);
                Ty::Unknown
            }
            other => {
                self.push(
                    Diagnostic::error(Code::E0201, self.file, field.span, format!("`{other}` has no fields"))
                        .with_primary_label(format!("`.{}` on a `{other}`", field.name)),
                );
                Ty::Unknown
            }
        }
    }

    fn optional_base(&mut self, span: Span, t: &Ty) {
        self.push(
            Diagnostic::error(Code::E0203, self.file, span, format!("this value is `{t}` and may be null"))
                .with_primary_label("may be null")
                .with_help("give a default with `??` first, e.g. `(value ?? fallback).field`"),
        );
    }

    fn binary(&mut self, op: BinaryOp, a: &ast::Expr, b: &ast::Expr) -> Ty {
        let ta = self.expr(a);
        let tb = self.expr(b);
        let sym = op.as_str();
        match op {
            BinaryOp::And | BinaryOp::Or => {
                self.expect(&ta, &Ty::Bool, a.span, &Sink::Operand(sym));
                self.expect(&tb, &Ty::Bool, b.span, &Sink::Operand(sym));
                Ty::Bool
            }
            BinaryOp::Eq | BinaryOp::Ne => {
                let (ua, ub) = (ta.unwrap_optional(), tb.unwrap_optional());
                if !(assignable(ua, ub) || assignable(ub, ua) || ta == Ty::Null || tb == Ty::Null) {
                    self.push(
                        Diagnostic::error(Code::E0201, self.file, b.span, format!("cannot compare `{ta}` with `{tb}`"))
                            .with_primary_label(format!("this is `{tb}`"))
                            .with_label(self.file, a.span, format!("this is `{ta}`")),
                    );
                }
                Ty::Bool
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                for (t, e) in [(&ta, a), (&tb, b)] {
                    if t.is_optional() {
                        self.expect(t, t.unwrap_optional(), e.span, &Sink::Operand(sym));
                    } else if !(t.is_numeric() || *t == Ty::String) {
                        self.push(
                            Diagnostic::error(Code::E0201, self.file, e.span, format!("`{sym}` compares numbers or strings, found `{t}`"))
                                .with_primary_label(format!("this is `{t}`")),
                        );
                    }
                }
                Ty::Bool
            }
            BinaryOp::Coalesce => {
                let inner = ta.unwrap_optional().clone();
                if assignable(&tb, &inner) {
                    if tb.is_optional() { inner.optional() } else { inner }
                } else if assignable(&inner, &tb) {
                    tb
                } else {
                    self.push(
                        Diagnostic::error(Code::E0201, self.file, b.span, format!("the default of `??` must be `{inner}`, found `{tb}`"))
                            .with_primary_label(format!("this is `{tb}`"))
                            .with_label(self.file, a.span, format!("this is `{ta}`")),
                    );
                    Ty::Unknown
                }
            }
        }
    }

    /// A call inside an expression: a pure built-in or a constructor.
    fn builtin(&mut self, callee: &[ast::Ident], args: &[ast::Arg]) -> Ty {
        let Some(last) = callee.last() else { return Ty::Unknown };
        let span = callee.iter().map(|i| i.span).fold(last.span, Span::join);
        let name = Env::tool_name(callee);
        let tys: Vec<(Ty, Span)> = args.iter().map(|a| (self.expr(&a.value), a.value.span)).collect();
        let sig: Option<(&[Ty], Ty)> = match name.as_str() {
            "len" => Some((&[Ty::Unknown], Ty::Int)),
            "json" => Some((&[Ty::Unknown], Ty::String)),
            "join" => Some((&[Ty::Unknown, Ty::String], Ty::String)),
            "lower" | "upper" | "trim" => Some((&[Ty::String], Ty::String)),
            // `take(xs, n)`: `List<T> -> List<T>` (the list's own type, below).
            "take" => Some((&[Ty::Unknown, Ty::Int], Ty::Unknown)),
            "secret" | "cron" | "event" => Some((&[Ty::String], Ty::Unknown)),
            "fixed" | "exponential" => Some((&[Ty::Duration], Ty::Backoff)),
            _ => None,
        };
        let Some((params, ret)) = sig else {
            let env = self.env();
            let d = if callee.len() > 1 && env.tools.contains_key(&name) || env.workflows.contains_key(&name) {
                Diagnostic::error(Code::E0201, self.file, span, format!("`{name}` can only be called by a step"))
                    .with_primary_label("not allowed inside an expression")
                    .with_help(format!("make it a step: `step result = {name}(…)`, then use `result`"))
            } else {
                let candidates = PURE_BUILTINS.iter().chain(CONSTRUCTORS.iter()).copied();
                let mut d = Diagnostic::error(Code::E0101, self.file, span, format!("unknown function `{name}`"))
                    .with_primary_label("not a built-in function")
                    .with_help(format!("the built-in functions are {}", list_names(PURE_BUILTINS)));
                if let Some(h) = suggest::did_you_mean(&name, candidates) {
                    d = d.with_help(h);
                }
                d
            };
            self.push(d);
            return Ty::Unknown;
        };
        if tys.len() != params.len() {
            let n = params.len();
            let s = if n == 1 { "" } else { "s" };
            self.push(
                Diagnostic::error(Code::E0202, self.file, span, format!("`{name}` takes {n} argument{s}, found {}", tys.len()))
                    .with_primary_label("called here"),
            );
            return ret_of(&name, ret);
        }
        for ((t, sp), p) in tys.iter().zip(params) {
            if name == "secret" {
                continue;
            }
            if t.contains_secret() {
                self.leak(*sp, &Sink::Builtin(&name));
                continue;
            }
            if name == "len" || name == "join" || (name == "take" && *p == Ty::Unknown) {
                if t.is_optional() {
                    self.expect(t, t.unwrap_optional(), *sp, &Sink::Builtin(&name));
                    continue;
                }
                if name == "take" && matches!(t, Ty::String | Ty::Record(..)) {
                    self.push(
                        Diagnostic::error(Code::E0201, self.file, *sp, format!("`take` expects a list, found `{t}`"))
                            .with_primary_label(format!("this is `{t}`")),
                    );
                    continue;
                }
                if *p == Ty::Unknown && !matches!(t, Ty::List(_) | Ty::Json | Ty::Unknown | Ty::String | Ty::Record(..)) {
                    let want = if name == "len" { "a list, a string or a record" } else { "a list" };
                    self.push(
                        Diagnostic::error(Code::E0201, self.file, *sp, format!("`{name}` expects {want}, found `{t}`"))
                            .with_primary_label(format!("this is `{t}`")),
                    );
                    continue;
                }
            }
            self.expect(t, p, *sp, &Sink::Builtin(&name));
        }
        if name == "secret"
            && let Some(a) = args.first()
                && !matches!(&a.value.kind, ExprKind::Str(s) if s.parts.iter().all(|p| matches!(p, StrPart::Text(_)))) {
                    self.push(
                        Diagnostic::error(Code::E0201, self.file, a.value.span, "`secret` takes the secret's name as a plain string")
                            .with_primary_label("not a plain string")
                            .with_help("write `secret(\"API_KEY\")`"),
                    );
                }
        if name == "take" {
            return take_type(tys.first().map(|(t, _)| t));
        }
        ret_of(&name, ret)
    }
}

/// The type of `take(xs, n)`: the list's own type.
fn take_type(list: Option<&Ty>) -> Ty {
    match list {
        Some(t @ (Ty::List(_) | Ty::Json)) => t.clone(),
        _ => Ty::Unknown,
    }
}

fn ret_of(name: &str, ret: Ty) -> Ty {
    match name {
        "secret" => Ty::Secret,
        "cron" | "event" => Ty::Trigger,
        _ => ret,
    }
}

fn list_names(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// Default values of parameters against their types (no names in scope).
fn check_defaults(cx: &Cx, file: FileId, params: &[ast::Param], diags: &mut Vec<Diagnostic>) {
    static EMPTY: std::sync::OnceLock<ast::Workflow> = std::sync::OnceLock::new();
    let empty = EMPTY.get_or_init(|| ast::Workflow {
        name: ast::Ident { name: String::new(), span: Span::default() },
        params: Vec::new(),
        ret: None,
        attrs: Vec::new(),
        steps: Vec::new(),
        ret_expr: None,
    });
    for p in params {
        let Some(default) = &p.default else { continue };
        let expected = cx.resolve(&p.ty);
        let mut w = Walker::new(cx, file, empty, diags);
        let t = w.expr(default);
        w.expect(&t, &expected, default.span, &Sink::Default { param: &p.name.name });
    }
}

/// E0101 for type names that are neither built-in nor declared, anywhere a
/// type is written.
fn check_type_names(env: &Env, diags: &mut Vec<Diagnostic>) {
    fn walk(env: &Env, file: FileId, t: &ast::TypeExpr, diags: &mut Vec<Diagnostic>) {
        match &t.kind {
            ast::TypeExprKind::Error => {}
            ast::TypeExprKind::List(i) | ast::TypeExprKind::Optional(i) => walk(env, file, i, diags),
            ast::TypeExprKind::Record(fields) => fields.iter().for_each(|(_, f)| walk(env, file, f, diags)),
            ast::TypeExprKind::Named(id) => {
                let n = id.name.as_str();
                if BUILTIN_TYPES.contains(&n) || n == "List" || env.types.contains_key(n) || env.enums.contains_key(n) {
                    return;
                }
                let candidates: Vec<&str> = BUILTIN_TYPES
                    .iter()
                    .copied()
                    .chain(env.types.keys().map(String::as_str))
                    .chain(env.enums.keys().map(String::as_str))
                    .collect();
                let mut d = Diagnostic::error(Code::E0101, file, id.span, format!("unknown type `{n}`"))
                    .with_primary_label("no type of this name");
                d = match suggest::did_you_mean(n, candidates) {
                    Some(h) => d.with_help(h),
                    None => d.with_help(format!("declare it (`type {n} = {{ … }}` or `enum {n} {{ … }}`) or use a built-in type")),
                };
                diags.push(d);
            }
        }
    }
    fn params(env: &Env, file: FileId, ps: &[ast::Param], diags: &mut Vec<Diagnostic>) {
        for p in ps {
            walk(env, file, &p.ty, diags);
        }
    }
    for t in env.types.values() {
        walk(env, t.file, &t.decl.ty, diags);
    }
    for t in env.tools.values() {
        params(env, t.file, &t.decl.params, diags);
        if let Some(r) = &t.decl.ret {
            walk(env, t.file, r, diags);
        }
    }
    for w in env.workflows.values() {
        params(env, w.file, &w.decl.params, diags);
        if let Some(r) = &w.decl.ret {
            walk(env, w.file, r, diags);
        }
        for s in &w.decl.steps {
            if let Some(t) = &s.ty {
                walk(env, w.file, t, diags);
            }
        }
    }
}

/// E0101 for models a role names that are not declared.
fn check_role_models(env: &Env, diags: &mut Vec<Diagnostic>) {
    for role in env.roles.values() {
        let role: &Decl<ast::RoleDecl> = role;
        for m in &role.decl.models {
            if env.models.contains_key(&m.name) {
                continue;
            }
            let mut d = Diagnostic::error(Code::E0101, role.file, m.span, format!("unknown model `{}`", m.name))
                .with_primary_label(format!("role `{}` names no declared model", role.decl.name.name));
            d = match suggest::did_you_mean(&m.name, env.models.keys().map(String::as_str)) {
                Some(h) => d.with_help(h),
                None => d.with_help(format!("declare it: `model {} = openai(\"MODEL_ID\") {{ input: $…/M, output: $…/M, context: … }}`", m.name)),
            };
            diags.push(d);
        }
    }
}
