//! Test blocks (`test "…" { … }`): names resolved against the checked
//! program, literals turned into JSON and checked against the types they
//! stand for (E0801 unknown names, E0802 values that do not fit, E0803
//! malformed blocks). The result is what `aosc test` runs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Number, Value};

use crate::ast::{BinaryOp, Expr, ExprKind, Ident, Scripted, StrPart, TestDecl, TestStmtKind, UnaryOp};
use crate::check::suggest::did_you_mean;
use crate::codes::Code;
use crate::diagnostic::Diagnostic;
use crate::ir::{self, Cmp, Type};
use crate::source::FileId;
use crate::span::Span;
use crate::testplan::{Expect, Expectation, STATUSES, SUBJECTS, Script, TestCase};

/// Checks the test blocks of one file against the program; returns those
/// that check.
pub fn check(file: FileId, tests: &[&TestDecl], program: &ir::Program, source: &str, diags: &mut Vec<Diagnostic>) -> Vec<TestCase> {
    let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
    let mut out = Vec::new();
    for t in tests {
        if let Some(first) = seen.get(t.name.as_str()) {
            diags.push(
                Diagnostic::error(Code::E0803, file, t.name_span, format!("a test named \"{}\" is already declared", t.name))
                    .with_label(file, *first, "first declared here")
                    .with_help("give each test of a file its own name"),
            );
            continue;
        }
        seen.insert(&t.name, t.name_span);
        let mut cx = Cx { file, program, source, diags, ok: true };
        if let Some(case) = cx.test(t)
            && cx.ok
        {
            out.push(case);
        }
    }
    out
}

struct Cx<'a> {
    file: FileId,
    program: &'a ir::Program,
    source: &'a str,
    diags: &'a mut Vec<Diagnostic>,
    ok: bool,
}

impl Cx<'_> {
    fn error(&mut self, code: Code, span: Span, message: String, help: Option<String>) {
        let mut d = Diagnostic::error(code, self.file, span, message);
        if let Some(h) = help {
            d = d.with_help(h);
        }
        self.diags.push(d);
        self.ok = false;
    }

    fn test(&mut self, t: &TestDecl) -> Option<TestCase> {
        let runs: Vec<&Expr> = t
            .stmts
            .iter()
            .filter_map(|s| match &s.kind {
                TestStmtKind::Run(e) => Some(e),
                _ => None,
            })
            .collect();
        let run = match runs.as_slice() {
            [one] => *one,
            [] => {
                self.error(Code::E0803, t.name_span, format!("test \"{}\" runs no workflow", t.name), Some("add `run WORKFLOW(name: value, …)`".into()));
                return None;
            }
            [_, second, ..] => {
                self.error(Code::E0803, second.span, format!("test \"{}\" has a second `run`", t.name), Some("a test runs one workflow: write another test".into()));
                return None;
            }
        };
        let ExprKind::Call { callee, args } = &run.kind else { return None };
        let name: Vec<&str> = callee.iter().map(|i| i.name.as_str()).collect();
        let name = name.join(".");
        let program = self.program;
        let Some(wf) = program.workflows.get(&name) else {
            let help = did_you_mean(&name, program.workflows.keys().map(String::as_str));
            self.error(Code::E0801, run.span, format!("no workflow `{name}` to run"), help);
            return None;
        };
        let mut case = TestCase {
            name: t.name.clone(),
            span: t.name_span,
            workflow: name,
            inputs: BTreeMap::new(),
            llm: BTreeMap::new(),
            tools: BTreeMap::new(),
            answers: BTreeMap::new(),
            expects: Vec::new(),
        };
        self.inputs(wf, args, run.span, &mut case);
        for s in &t.stmts {
            match &s.kind {
                TestStmtKind::Run(_) => {}
                TestStmtKind::GivenLlm { role, outcome, value } => {
                    if let Some(script) = self.llm_script(role, *outcome, value) {
                        case.llm.entry(role.name.clone()).or_default().push(script);
                    }
                }
                TestStmtKind::GivenTool { tool, outcome, value } => {
                    let name = tool.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(".");
                    let span = tool.first().map_or(s.span, |f| f.span.join(tool.last().map_or(f.span, |l| l.span)));
                    if let Some(script) = self.tool_script(&name, span, *outcome, value) {
                        case.tools.entry(name).or_default().push(script);
                    }
                }
                TestStmtKind::Answer { approve, step } => {
                    match wf.steps.iter().find(|st| st.name == step.name) {
                        None => self.unknown_step(wf, step),
                        Some(st) if st.approval.is_none() => self.error(
                            Code::E0803,
                            step.span,
                            format!("step `{}` of `{}` has no approval gate to answer", step.name, wf.name),
                            None,
                        ),
                        Some(_) => {
                            case.answers.insert(step.name.clone(), *approve);
                        }
                    }
                }
                TestStmtKind::Expect { subject, op, value } => {
                    if let Some(kind) = self.expect(wf, subject, *op, value) {
                        let text = self.source.get(s.span.range()).unwrap_or("").to_string();
                        case.expects.push(Expectation { kind, text, span: s.span });
                    }
                }
            }
        }
        Some(case)
    }

    fn inputs(&mut self, wf: &ir::Workflow, args: &[crate::ast::Arg], span: Span, case: &mut TestCase) {
        for (i, a) in args.iter().enumerate() {
            let param = match &a.name {
                Some(n) => match wf.params.iter().find(|p| p.name == n.name) {
                    Some(p) => p,
                    None => {
                        let help = did_you_mean(&n.name, wf.params.iter().map(|p| p.name.as_str()));
                        self.error(Code::E0801, n.span, format!("workflow `{}` has no parameter `{}`", wf.name, n.name), help);
                        continue;
                    }
                },
                None => match wf.params.get(i) {
                    Some(p) => p,
                    None => {
                        self.error(Code::E0802, a.span, format!("workflow `{}` takes {} parameters", wf.name, wf.params.len()), None);
                        continue;
                    }
                },
            };
            let Some(v) = self.value(&a.value) else { continue };
            if let Err(e) = fits(&v, &param.ty) {
                self.error(Code::E0802, a.value.span, format!("parameter `{}` is {}, found {}: {e}", param.name, ty_name(&param.ty), short(&v)), None);
                continue;
            }
            case.inputs.insert(param.name.clone(), v);
        }
        for p in &wf.params {
            if !case.inputs.contains_key(&p.name) && p.default.is_none() && !matches!(p.ty, Type::Optional { .. }) && self.ok {
                self.error(Code::E0802, span, format!("`run {}` misses the parameter `{}`", wf.name, p.name), Some(format!("add `{}: …`", p.name)));
            }
        }
    }

    fn llm_script(&mut self, role: &Ident, outcome: Scripted, value: &Expr) -> Option<Script> {
        let program = self.program;
        if !program.roles.contains_key(&role.name) {
            let help = did_you_mean(&role.name, program.roles.keys().map(String::as_str));
            self.error(Code::E0801, role.span, format!("no role `{}` to script", role.name), help);
            return None;
        }
        if outcome == Scripted::Calls {
            return self.call_script(role, value);
        }
        let v = self.value(value)?;
        if outcome == Scripted::Fails {
            return self.message(v, value.span).map(Script::Fails);
        }
        // A reply that is not text only makes sense for a typed step (or a verdict).
        let typed = program.workflows.values().flat_map(|w| &w.steps).any(|s| {
            matches!(&s.call, ir::Call::Llm { role: r, .. } if *r == role.name) && s.typed
                || s.verify.as_ref().is_some_and(|v| v.role == role.name)
        });
        if !v.is_string() && !typed {
            self.error(
                Code::E0802,
                value.span,
                format!("role `{}` answers only untyped steps: its reply is text, found {}", role.name, short(&v)),
                Some("write the reply as a string".into()),
            );
            return None;
        }
        Some(Script::Returns(v))
    }

/// `given llm ROLE calls TOOL(ARGS)`: the tool must be one an agent step
    /// of the role may call, the arguments literals that fit its parameters.
    fn call_script(&mut self, role: &Ident, value: &Expr) -> Option<Script> {
        let ExprKind::Call { callee, args } = &value.kind else { return None };
        let name = callee.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(".");
        let span = callee.first().map_or(value.span, |f| f.span.join(callee.last().map_or(f.span, |l| l.span)));
        let program = self.program;
        let callable: Vec<&str> = program
            .workflows
            .values()
            .flat_map(|w| &w.steps)
            .filter_map(|s| match &s.call {
                ir::Call::Llm { role: r, agent: Some(a), .. } if *r == role.name => Some(a),
                _ => None,
            })
            .flat_map(|a| a.tools.iter().map(|t| t.tool.as_str()))
            .collect();
        if !callable.contains(&name.as_str()) {
            let help = did_you_mean(&name, callable.iter().copied())
                .or_else(|| Some(format!("the agent steps of role `{}` may call: {}", role.name, if callable.is_empty() { "nothing".to_string() } else { callable.join(", ") })));
            self.error(Code::E0801, span, format!("no agent step of role `{}` may call tool `{name}`", role.name), help);
            return None;
        }
        let tool = program.tools.get(&name)?;
        let mut obj = serde_json::Map::new();
        for a in args {
            let Some(n) = &a.name else {
                self.error(Code::E0802, a.span, "a scripted tool call names its arguments".to_string(), Some("write `name: value`".into()));
                continue;
            };
            let Some(p) = tool.params.iter().find(|p| p.name == n.name) else {
                let help = did_you_mean(&n.name, tool.params.iter().map(|p| p.name.as_str()));
                self.error(Code::E0801, n.span, format!("tool `{name}` has no parameter `{}`", n.name), help);
                continue;
            };
            let Some(v) = self.value(&a.value) else { continue };
            if let Err(e) = fits(&v, &p.ty) {
                self.error(Code::E0802, a.value.span, format!("parameter `{}` is {}, found {}: {e}", p.name, ty_name(&p.ty), short(&v)), None);
                continue;
            }
            obj.insert(n.name.clone(), v);
        }
        Some(Script::Calls { tool: name, args: Value::Object(obj) })
    }

    fn tool_script(&mut self, name: &str, span: Span, outcome: Scripted, value: &Expr) -> Option<Script> {
        let program = self.program;
        let Some(tool) = program.tools.get(name) else {
            let help = did_you_mean(name, program.tools.keys().map(String::as_str));
            self.error(Code::E0801, span, format!("no tool `{name}` to script"), help.or_else(|| Some("a standard tool needs its `use std.…`".into())));
            return None;
        };
        let v = self.value(value)?;
        if outcome == Scripted::Fails {
            return self.message(v, value.span).map(Script::Fails);
        }
        if let Err(e) = fits(&v, &tool.ret) {
            self.error(Code::E0802, value.span, format!("tool `{name}` returns {}, found {}: {e}", ty_name(&tool.ret), short(&v)), None);
            return None;
        }
        Some(Script::Returns(v))
    }

    fn message(&mut self, v: Value, span: Span) -> Option<String> {
        match v {
            Value::String(s) => Some(s),
            other => {
                self.error(Code::E0802, span, format!("a failure is a message (a string), found {}", short(&other)), None);
                None
            }
        }
    }

    fn unknown_step(&mut self, wf: &ir::Workflow, step: &Ident) {
        let help = did_you_mean(&step.name, wf.steps.iter().map(|s| s.name.as_str()));
        self.error(Code::E0801, step.span, format!("workflow `{}` has no step `{}`", wf.name, step.name), help);
    }

    fn expect(&mut self, wf: &ir::Workflow, subject: &Ident, op: Option<BinaryOp>, value: &Expr) -> Option<Expect> {
        let cmp = op.map(|o| match o {
            BinaryOp::Eq => Cmp::Eq,
            BinaryOp::Ne => Cmp::Ne,
            BinaryOp::Lt => Cmp::Lt,
            BinaryOp::Le => Cmp::Le,
            BinaryOp::Gt => Cmp::Gt,
            _ => Cmp::Ge,
        });
        let s = subject.name.as_str();
        let wants = |this: &mut Self, form: &str| {
            this.error(Code::E0803, subject.span.join(value.span), format!("`expect {s}` is written `expect {form}`"), None);
        };
        match s {
            "output" => {
                let equal = match cmp {
                    Some(Cmp::Eq) => true,
                    Some(Cmp::Ne) => false,
                    _ => {
                        wants(self, "output == VALUE` or `expect output != VALUE");
                        return None;
                    }
                };
                let v = self.value(value)?;
                let ty = wf.ret.clone().unwrap_or(Type::Null);
                if let Err(e) = fits(&v, &ty) {
                    self.error(Code::E0802, value.span, format!("workflow `{}` returns {}, found {}: {e}", wf.name, ty_name(&ty), short(&v)), None);
                    return None;
                }
                Some(Expect::Output { equal, value: v })
            }
            "cost" => {
                let Some(cmp) = cmp else {
                    wants(self, "cost <= $AMOUNT");
                    return None;
                };
                match &value.kind {
                    ExprKind::Money(m) => Some(Expect::Cost { cmp, micros: m.micros }),
                    _ => {
                        self.error(Code::E0802, value.span, "a cost is an amount such as `$0.01`".into(), None);
                        None
                    }
                }
            }
            "ran" | "skipped" | "approvals" => {
                if cmp.is_some() {
                    wants(self, &format!("{s} [STEP, …]"));
                    return None;
                }
                let ExprKind::List(items) = &value.kind else {
                    wants(self, &format!("{s} [STEP, …]"));
                    return None;
                };
                let mut names = Vec::new();
                for i in items {
                    match &i.kind {
                        ExprKind::Name(n) if wf.steps.iter().any(|st| st.name == n.name) => names.push(n.name.clone()),
                        ExprKind::Name(n) => self.unknown_step(wf, n),
                        _ => self.error(Code::E0802, i.span, "expected a step name".into(), None),
                    }
                }
                Some(match s {
                    "ran" => Expect::Ran(names),
                    "skipped" => Expect::Skipped(names),
                    _ => Expect::Approvals(names),
                })
            }
            "status" => {
                if cmp != Some(Cmp::Eq) {
                    wants(self, "status == succeeded");
                    return None;
                }
                match &value.kind {
                    ExprKind::Name(n) if STATUSES.contains(&n.name.as_str()) => Some(Expect::Status(n.name.clone())),
                    _ => {
                        let written = self.source.get(value.span.range()).unwrap_or("");
                        let help = did_you_mean(written, STATUSES).unwrap_or_else(|| format!("one of {}", STATUSES.join(", ")));
                        self.error(Code::E0802, value.span, format!("`{written}` is not a run status"), Some(help));
                        None
                    }
                }
            }
            "error" => {
                if cmp.is_some() {
                    wants(self, "error \"TEXT\"");
                    return None;
                }
                let v = self.value(value)?;
                self.message(v, value.span).map(Expect::Error)
            }
            _ => {
                let help = did_you_mean(s, SUBJECTS).unwrap_or_else(|| format!("expect one of {}", SUBJECTS.join(", ")));
                self.error(Code::E0803, subject.span, format!("unknown expectation `{s}`"), Some(help));
                None
            }
        }
    }

    /// A literal as JSON (E0802 when the expression is not a literal).
    fn value(&mut self, e: &Expr) -> Option<Value> {
        match literal(e) {
            Ok(v) => Some(v),
            Err(span) => {
                self.error(
                    Code::E0802,
                    span,
                    "a test value must be a literal".into(),
                    Some("write the value itself: a string, number, amount, list, record or `null` (no names, calls or interpolations)".into()),
                );
                None
            }
        }
    }
}

/// A literal expression as JSON; the span of the first part that is not one.
fn literal(e: &Expr) -> Result<Value, Span> {
    Ok(match &e.kind {
        ExprKind::Int(i) => Value::from(*i),
        ExprKind::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        ExprKind::Bool(b) => Value::Bool(*b),
        ExprKind::Null => Value::Null,
        ExprKind::Str(s) => {
            let mut text = String::new();
            for p in &s.parts {
                match p {
                    StrPart::Text(t) => text.push_str(t),
                    StrPart::Interp(i) => return Err(i.span),
                }
            }
            Value::String(text)
        }
        ExprKind::Money(m) => Number::from_f64(m.dollars()).map_or(Value::Null, Value::Number),
        ExprKind::Duration(d) => Value::from(d.as_millis()),
        ExprKind::Unary(UnaryOp::Neg, inner) => match &inner.kind {
            ExprKind::Int(i) => Value::from(-*i),
            ExprKind::Float(f) => Number::from_f64(-*f).map_or(Value::Null, Value::Number),
            _ => return Err(e.span),
        },
        ExprKind::List(items) => Value::Array(items.iter().map(literal).collect::<Result<_, _>>()?),
        ExprKind::Record(fields) => {
            let mut m = Map::new();
            for (k, v) in fields {
                m.insert(k.name.clone(), literal(v)?);
            }
            Value::Object(m)
        }
        _ => return Err(e.span),
    })
}

/// Whether a JSON value is a value of `ty`; the first problem otherwise.
pub fn fits(v: &Value, ty: &Type) -> Result<(), String> {
    let ok = match ty {
        Type::Json => true,
        Type::String | Type::Secret => v.is_string(),
        Type::Int | Type::Duration => v.is_i64() || v.is_u64(),
        Type::Float | Type::Money => v.is_number(),
        Type::Bool => v.is_boolean(),
        Type::Null => v.is_null(),
        Type::Optional { inner } => return if v.is_null() { Ok(()) } else { fits(v, inner) },
        Type::Enum { variants, .. } => v.as_str().is_some_and(|s| variants.iter().any(|x| x == s)),
        Type::List { item } => {
            let Some(items) = v.as_array() else { return Err("not a list".into()) };
            for (i, x) in items.iter().enumerate() {
                fits(x, item).map_err(|e| format!("item {i}: {e}"))?;
            }
            true
        }
        Type::Record { fields, .. } => {
            let Some(obj) = v.as_object() else { return Err("not a record".into()) };
            let known: BTreeSet<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
            if let Some(extra) = obj.keys().find(|k| !known.contains(k.as_str())) {
                return Err(format!("no field `{extra}`"));
            }
            for (name, fty) in fields {
                match obj.get(name) {
                    Some(x) => fits(x, fty).map_err(|e| format!("field `{name}`: {e}"))?,
                    None if matches!(fty, Type::Optional { .. }) => {}
                    None => return Err(format!("field `{name}` is missing")),
                }
            }
            true
        }
    };
    if ok { Ok(()) } else { Err(format!("not {}", ty_name(ty))) }
}

/// `String`, `List<SalesRow>`, `{ a: Int }`.
pub fn ty_name(ty: &Type) -> String {
    match ty {
        Type::String => "a `String`".into(),
        Type::Int => "an `Int`".into(),
        Type::Float => "a `Float`".into(),
        Type::Bool => "a `Bool`".into(),
        Type::Json => "`Json`".into(),
        Type::Duration => "a `Duration`".into(),
        Type::Money => "`Money`".into(),
        Type::Secret => "a `Secret`".into(),
        Type::Null => "nothing (`null`)".into(),
        Type::List { .. } => "a list".into(),
        Type::Optional { inner } => format!("{} or `null`", ty_name(inner)),
        Type::Record { name: Some(n), .. } => format!("a `{n}`"),
        Type::Record { name: None, .. } => "a record".into(),
        Type::Enum { name, .. } => format!("a `{name}`"),
    }
}

/// A value shortened for messages.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 { format!("{}…", s.chars().take(40).collect::<String>()) } else { s }
}
