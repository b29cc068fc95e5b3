//! The worst-case cost of a run (§4 *Cost*): E0404, E0501, E0502, W0501,
//! and the table `aosc check --cost` prints.
//!
//! Every figure here is an upper bound. A prompt is bounded by its template's
//! tokens plus the bound of each value it interpolates; an LLM attempt costs
//! at most `prompt × input price + max_tokens × output price` on the dearest
//! model of its role; a step multiplies that by its billed attempts, its
//! retries and its fan-out; a workflow adds up its steps and the workflows it
//! calls.
//!
//! Literal text inside an interpolated expression (a separator of `join`, a
//! nested string) and the results of other workflows are bounded in UTF-8
//! bytes, which bounds every tokenizer at once; only the top-level text of a
//! prompt is counted with each model's own tokenizer.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::ast::{self, ExprKind, StrPart};
use crate::diagnostic::Diagnostic;
use crate::money::Usd;
use crate::codes::Code;
use crate::ir;
use crate::source::FileId;
use crate::span::Span;

use super::env::{Env, Local};
use super::roles;
use super::tokens::{self, Tokenizer};

/// `max_tokens` of an LLM step that does not set it.
pub const DEFAULT_MAX_TOKENS: u64 = 1024;
/// The reply bound of an LLM step that declares no `max_reply_bytes:`, in
/// UTF-8 bytes per token of `max_tokens` (docs/cost.md, *The reply bound*).
pub const REPLY_BYTES_PER_TOKEN: u64 = 4;
/// The output bound of a tool that declares none.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 8192;
/// The bound of each workflow parameter unless `max_param_tokens` says
/// otherwise.
pub const DEFAULT_MAX_PARAM_TOKENS: u64 = 2048;
/// Repair attempts of an LLM step: a reply that fails schema validation or
/// `min_confidence` is asked again once.
pub const REPAIRS: u64 = 1;
/// The instruction the runtime wraps around a verification prompt (the
/// verified prompt and reply come on top). The runtime's instruction must
/// stay within this many tokens of any tokenizer.
pub const VERIFY_INSTRUCTION_TOKENS: u64 = 256;
/// The most a verifier may answer.
pub const VERIFY_MAX_TOKENS: u64 = 256;
/// What a list adds per item when rendered as compact JSON (quotes, comma).
const ITEM_OVERHEAD: u64 = 3;
/// The bound of a number, boolean or `null` rendered as text: `i64::MIN`
/// and the longest shortest-roundtrip `f64` both fit.
const SCALAR_BOUND: u64 = 24;

/// The cost bound of every workflow.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CostReport {
    pub workflows: BTreeMap<String, WorkflowCost>,
}

/// The cost bound of one workflow.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct WorkflowCost {
    /// The most one run can spend, in USD; `None` when it has no bound
    /// (E0502 was reported).
    pub total_usd: Option<f64>,
    /// Each step's bound and how it was reached.
    pub steps: BTreeMap<String, ir::CostBound>,
    /// The steps in source order with their kind, for the table.
    pub order: Vec<(String, ir::StepKind)>,
    /// Steps whose cost has no bound.
    pub unbounded: Vec<String>,
    /// The `budget:` of the workflow, in USD.
    pub budget_usd: Option<f64>,
    /// `total_usd`, exact.
    #[serde(skip)]
    pub total: Option<Usd>,
    /// `budget_usd`, exact.
    #[serde(skip)]
    pub budget: Option<Usd>,
    /// Each step's bound (`steps[…].usd`), exact.
    #[serde(skip)]
    pub step_usd: BTreeMap<String, Usd>,
}

/// Computes the cost bound of every workflow, reporting E0404, E0501, E0502
/// and W0501.
pub fn analyze(env: &Env, models: &BTreeMap<String, ir::Model>, diags: &mut Vec<Diagnostic>) -> CostReport {
    let mut a = Analyzer {
        env,
        models,
        chains: roles::chains(env),
        costs: BTreeMap::new(),
        rets: BTreeMap::new(),
        diags,
    };
    for (name, wf) in &env.workflows {
        if !wf.std {
            a.workflow(name);
        }
    }
    let workflows = a.costs.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
    CostReport { workflows }
}

/// A bound on a value: its tokens when rendered into a prompt (`None`: no
/// bound), and its number of items when it is a list of known length.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Value {
    tokens: Option<u64>,
    items: Option<u64>,
}

impl Value {
    fn tokens(n: u64) -> Value {
        Value { tokens: Some(n), items: None }
    }

    const UNBOUNDED: Value = Value { tokens: None, items: None };
    /// What an unresolved name or a broken expression counts for: its
    /// mistake was reported elsewhere, and must not be reported again.
    const UNKNOWN: Value = Value { tokens: Some(0), items: None };

    fn plus(self, n: u64) -> Value {
        Value::of(self.tokens.map(|t| t.saturating_add(n)))
    }

    fn of(tokens: Option<u64>) -> Value {
        Value { tokens, items: None }
    }
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(a?.saturating_add(b?))
}

fn bytes(text: &str) -> u64 {
    u64::try_from(text.len()).unwrap_or(u64::MAX)
}

/// One workflow's names.
struct Scope<'w> {
    file: FileId,
    locals: BTreeMap<&'w str, Local<'w>>,
    max_param: u64,
}

/// The fan-out variable in scope, with the bound of one item.
type Var<'v> = Option<(&'v str, Value)>;

/// A piece of a prompt: literal text (counted per tokenizer) or an
/// interpolated value.
enum Piece<'p> {
    Text(&'p str),
    Value { label: String, span: Span, value: Value },
}

/// The bound of one prompt under one tokenizer.
struct Prompt {
    /// Tokens of the literal text.
    template: u64,
    /// One token per seam between pieces.
    boundaries: u64,
    /// The whole prompt, before `max_input_tokens`.
    total: Option<u64>,
}

fn count_prompt(pieces: &[Piece<'_>], tok: Tokenizer) -> Prompt {
    let mut template = 0u64;
    let mut total = Some(0u64);
    for p in pieces {
        match p {
            Piece::Text(t) => {
                let n = tokens::count_with(tok, t);
                template = template.saturating_add(n);
                total = total.map(|s| s.saturating_add(n));
            }
            Piece::Value { value, .. } => total = add(total, value.tokens),
        }
    }
    let b = tokens::boundaries(pieces.len());
    Prompt { template, boundaries: b, total: total.map(|t| t.saturating_add(b)) }
}

/// The cost of one LLM call (one item, before attempts and retries).
struct Attempt {
    /// USD of one attempt on the dearest model, with its verification.
    usd: Usd,
    prompt: u64,
    model: Option<String>,
    lines: Vec<String>,
    unbounded: bool,
}

struct Analyzer<'r, 'a> {
    env: &'r Env<'a>,
    models: &'r BTreeMap<String, ir::Model>,
    chains: BTreeMap<String, Vec<String>>,
    /// `None` while the workflow is being computed (a call cycle).
    costs: BTreeMap<String, Option<WorkflowCost>>,
    rets: BTreeMap<String, Option<Value>>,
    diags: &'r mut Vec<Diagnostic>,
}

impl<'r, 'a> Analyzer<'r, 'a> {
    fn scope(&self, wf: &'a ast::Workflow, file: FileId) -> Scope<'a> {
        let max_param = int_attr(&wf.attrs, "max_param_tokens").unwrap_or(DEFAULT_MAX_PARAM_TOKENS);
        Scope { file, locals: Env::locals(wf), max_param }
    }

    /// The worst case of one run of workflow `name`: `None` when unbounded.
    /// A workflow that (transitively) calls itself counts as 0 inside the
    /// cycle: the cycle is reported elsewhere.
    fn workflow(&mut self, name: &str) -> Option<Usd> {
        match self.costs.get(name) {
            Some(Some(c)) => return c.total,
            Some(None) => return Some(Usd::ZERO),
            None => {}
        }
        let Some(decl) = self.env.workflows.get(name).copied() else { return Some(Usd::ZERO) };
        self.costs.insert(name.to_string(), None);
        let wf = decl.decl;
        let scope = self.scope(wf, decl.file);
        let mut cost = WorkflowCost::default();
        let mut total = Some(Usd::ZERO);
        for step in &wf.steps {
            let (kind, bound, exact, bounded) = self.step(&scope, step);
            total = match (total, bounded) {
                (Some(t), true) => Some(t.plus(exact)),
                _ => None,
            };
            cost.step_usd.entry(step.name.name.clone()).or_insert(exact);
            if !bounded {
                cost.unbounded.push(step.name.name.clone());
            }
            cost.order.push((step.name.name.clone(), kind));
            cost.steps.entry(step.name.name.clone()).or_insert(bound);
        }
        cost.total = total;
        cost.total_usd = total.map(Usd::to_f64);
        cost.budget = self.check_budget(name, wf, decl.file, &cost);
        cost.budget_usd = cost.budget.map(Usd::to_f64);
        self.costs.insert(name.to_string(), Some(cost));
        total
    }

    /// E0501 / W0501; returns the budget.
    fn check_budget(&mut self, name: &str, wf: &ast::Workflow, file: FileId, cost: &WorkflowCost) -> Option<Usd> {
        let Some(attr) = Env::attr(&wf.attrs, "budget") else {
            let worst = match cost.total {
                Some(t) => format!("a run can cost up to {t}"),
                None => "and a run's cost has no bound".to_string(),
            };
            let mut d = Diagnostic::warning(Code::W0501, file, wf.name.span, format!("workflow `{name}` has no `budget`; {worst}"))
                .with_primary_label("no `budget:` in this workflow");
            if let Some(t) = cost.total {
                d = d.with_help(format!("add `budget: {t}` (or more) to its header"));
            }
            self.diags.push(d);
            return None;
        };
        // A budget that is not an amount is a type error reported elsewhere.
        let ExprKind::Money(m) = &attr.value.kind else { return None };
        let budget = Usd::from_micros(m.micros);
        let total = cost.total?;
        if total <= budget {
            return Some(budget);
        }
        let mut d = Diagnostic::error(
            Code::E0501,
            file,
            attr.span,
            format!(
                "a run of `{name}` can cost up to {total}, more than its budget of ${}",
                m.text
            ),
        )
        .with_primary_label(format!("budget ${}", m.text));
        let mut dear: Vec<(&String, &Usd)> = cost.step_usd.iter().filter(|(_, b)| **b > Usd::ZERO).collect();
        dear.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        for (step_name, b) in dear.iter().take(3) {
            if let Some(step) = wf.steps.iter().find(|s| &&s.name.name == step_name) {
                d = d.with_label(file, step.name.span, format!("`{step_name}` can cost up to {b}"));
            }
        }
        d = d.with_help(format!(
            "raise the budget, or lower `max_tokens`, `max_items`, `retry` or the models' prices; `aosc check --cost` shows how the {total} is reached"
        ));
        self.diags.push(d);
        Some(budget)
    }

    /// The bound of the value workflow `name` returns.
    fn workflow_ret(&mut self, name: &str) -> Value {
        match self.rets.get(name) {
            Some(Some(v)) => return *v,
            Some(None) => return Value::UNKNOWN,
            None => {}
        }
        let Some(decl) = self.env.workflows.get(name).copied() else { return Value::UNKNOWN };
        self.rets.insert(name.to_string(), None);
        let scope = self.scope(decl.decl, decl.file);
        let v = match &decl.decl.ret_expr {
            Some((e, _)) => self.value(&scope, None, e),
            None => Value::tokens(4), // `null`
        };
        self.rets.insert(name.to_string(), Some(v));
        v
    }

    /// The bound of step `step`'s value.
    fn step_output(&mut self, scope: &Scope<'a>, step: &'a ast::Step) -> Value {
        let attrs = Env::entries(&step.attrs);
        let (body, items) = match &step.call.kind {
            ExprKind::For { iter, body, .. } => (body.as_ref(), Some(fan_out_items(attrs, iter))),
            _ => (&step.call, None),
        };
        let mut one = self.call_output(scope, body, attrs);
        if let Some(fb) = Env::attr(attrs, "fallback") {
            let f = self.call_output(scope, &fb.value, attrs);
            one = Value::of(one.tokens.zip(f.tokens).map(|(a, b)| a.max(b)));
        }
        match items {
            None => one,
            Some(None) => Value::UNBOUNDED,
            Some(Some(n)) => Value {
                tokens: one.tokens.map(|t| n.saturating_mul(t.saturating_add(ITEM_OVERHEAD)).saturating_add(2)),
                items: Some(n),
            },
        }
    }

    /// The bound of what one call returns.
    fn call_output(&mut self, _scope: &Scope<'a>, call: &'a ast::Expr, attrs: &[ast::Attr]) -> Value {
        match &call.kind {
            ExprKind::Llm { .. } => Value::tokens(reply_bytes(attrs)),
            ExprKind::Call { callee, .. } if callee.len() >= 2 => {
                let name = Env::tool_name(callee);
                let Some(tool) = self.env.tools.get(&name) else { return Value::UNKNOWN };
                let n = int_attr(attrs, "max_output_tokens")
                    .or_else(|| int_attr(Env::entries(&tool.decl.attrs), "max_output_tokens"))
                    .unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS);
                Value::tokens(n)
            }
            ExprKind::Call { callee, .. } => match callee.first() {
                Some(id) if self.env.workflows.contains_key(&id.name) => self.workflow_ret(&id.name),
                _ => Value::UNKNOWN,
            },
            _ => Value::UNKNOWN,
        }
    }

    /// The bound of an expression's value rendered as prompt text.
    fn value(&mut self, scope: &Scope<'a>, var: Var<'_>, e: &'a ast::Expr) -> Value {
        match &e.kind {
            ExprKind::Int(n) => Value::tokens(bytes(&n.to_string())),
            ExprKind::Float(_) | ExprKind::Money(_) | ExprKind::Price(_) | ExprKind::Duration(_) => {
                Value::tokens(SCALAR_BOUND)
            }
            ExprKind::Bool(_) | ExprKind::Unary(ast::UnaryOp::Not, _) => Value::tokens(5),
            ExprKind::Null => Value::tokens(4),
            ExprKind::Str(s) => {
                let mut total = Some(0u64);
                for part in &s.parts {
                    let n = match part {
                        StrPart::Text(t) => Some(bytes(t)),
                        StrPart::Interp(x) => self.value(scope, var, x).tokens,
                    };
                    total = add(total, n);
                }
                Value::of(total).plus(tokens::boundaries(s.parts.len()))
            }
            ExprKind::Name(id) => self.name(scope, var, &id.name),
            ExprKind::Field(of, field) => {
                if let ExprKind::Name(id) = &of.kind {
                    let is_local = var.is_some_and(|(v, _)| v == id.name) || scope.locals.contains_key(id.name.as_str());
                    if !is_local && self.env.enums.contains_key(&id.name) {
                        return Value::tokens(bytes(&field.name));
                    }
                }
                Value::of(self.value(scope, var, of).tokens)
            }
            ExprKind::Index(of, _) => Value::of(self.value(scope, var, of).tokens),
            ExprKind::List(items) => {
                let mut total = Some(2u64);
                for x in items {
                    total = add(total, self.value(scope, var, x).tokens.map(|t| t.saturating_add(ITEM_OVERHEAD)));
                }
                Value { tokens: total, items: u64::try_from(items.len()).ok() }
            }
            ExprKind::Record(fields) => {
                let mut total = Some(2u64);
                for (k, x) in fields {
                    let field = bytes(&k.name).saturating_add(4);
                    total = add(total, self.value(scope, var, x).tokens.map(|t| t.saturating_add(field)));
                }
                Value::of(total)
            }
            ExprKind::Unary(ast::UnaryOp::Neg, x) => self.value(scope, var, x).plus(1),
            ExprKind::Binary(ast::BinaryOp::Coalesce, a, b) => {
                let (a, b) = (self.value(scope, var, a), self.value(scope, var, b));
                Value::of(a.tokens.zip(b.tokens).map(|(a, b)| a.max(b)))
            }
            ExprKind::Binary(..) => Value::tokens(5),
            ExprKind::Call { callee, args } => self.builtin(scope, var, callee, args),
            ExprKind::Llm { .. } | ExprKind::For { .. } | ExprKind::Error => Value::UNKNOWN,
        }
    }

    fn name(&mut self, scope: &Scope<'a>, var: Var<'_>, name: &str) -> Value {
        if let Some((_, bound)) = var.filter(|(v, _)| *v == name) {
            return bound;
        }
        match scope.locals.get(name).copied() {
            Some(Local::Param(_)) => Value::tokens(scope.max_param),
            Some(Local::Step(s)) => self.step_output(scope, s),
            None => Value::UNKNOWN,
        }
    }

    /// The pure built-ins are bounded by their arguments.
    fn builtin(&mut self, scope: &Scope<'a>, var: Var<'_>, callee: &[ast::Ident], args: &'a [ast::Arg]) -> Value {
        let [f] = callee else { return Value::UNKNOWN };
        let mut arg = |i: usize| args.get(i).map(|a| self.value(scope, var, &a.value));
        match f.name.as_str() {
            "len" => Value::tokens(SCALAR_BOUND),
            "json" => arg(0).map_or(Value::UNKNOWN, |v| v.plus(2)),
            "lower" | "upper" | "trim" => arg(0).map_or(Value::UNKNOWN, |v| Value::of(v.tokens)),
            // At most the list's tokens, and at most `n` items.
            "take" => {
                let Some(list) = arg(0) else { return Value::UNKNOWN };
                let n = args.get(1).and_then(|a| take_count(&a.value));
                Value { tokens: list.tokens, items: match (list.items, n) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                } }
            }
            "join" => {
                let Some(list) = arg(0) else { return Value::UNKNOWN };
                let sep = arg(1).map_or(Some(0), |v| v.tokens);
                // Without a known length, each item of the list takes at
                // least one token of its bound, so there are no more
                // separators than that.
                let seps = list.items.or(list.tokens);
                let joined = seps.zip(sep).map(|(n, s)| n.saturating_mul(s.saturating_add(1)));
                Value::of(add(list.tokens, joined))
            }
            _ => Value::UNKNOWN,
        }
    }

    /// The pieces of a prompt.
    fn pieces(&mut self, scope: &Scope<'a>, var: Var<'_>, prompt: &'a ast::Expr) -> Vec<Piece<'a>> {
        match &prompt.kind {
            ExprKind::Str(s) => s
                .parts
                .iter()
                .map(|p| match p {
                    StrPart::Text(t) => Piece::Text(t.as_str()),
                    StrPart::Interp(x) => {
                        Piece::Value { label: self.label(scope, var, x), span: x.span, value: self.value(scope, var, x) }
                    }
                })
                .collect(),
            _ => vec![Piece::Value {
                label: self.label(scope, var, prompt),
                span: prompt.span,
                value: self.value(scope, var, prompt),
            }],
        }
    }

    /// How an interpolated value is named in explanations, with where its
    /// bound comes from when it is a plain name.
    fn label(&self, scope: &Scope<'a>, var: Var<'_>, e: &ast::Expr) -> String {
        let text = describe(e);
        let ExprKind::Name(id) = &e.kind else { return format!("`{text}`") };
        if var.is_some_and(|(v, _)| v == id.name) {
            return format!("`{text}` (one item of the fan-out)");
        }
        let why = match scope.locals.get(id.name.as_str()) {
            Some(Local::Param(_)) => "a parameter: `max_param_tokens`".to_string(),
            Some(Local::Step(s)) => {
                let fan_out = matches!(s.call.kind, ExprKind::For { .. });
                let body = match &s.call.kind {
                    ExprKind::For { body, .. } => body.as_ref(),
                    _ => &s.call,
                };
                let what = match &body.kind {
                    ExprKind::Llm { .. } => "the step's reply bound in bytes (`max_reply_bytes`)".to_string(),
                    ExprKind::Call { callee, .. } if callee.len() >= 2 => "the step's `max_output_tokens`".to_string(),
                    ExprKind::Call { callee, .. } => {
                        format!("what `{}` returns", callee.first().map_or("", |c| c.name.as_str()))
                    }
                    _ => return format!("`{text}`"),
                };
                if fan_out { format!("{what} per item") } else { what }
            }
            None => return format!("`{text}`"),
        };
        format!("`{text}` ({why})")
    }

    /// The cost of one attempt of `llm ROLE(prompt)` with its verification,
    /// reporting E0404.
    #[allow(clippy::too_many_arguments)]
    fn llm_attempt(
        &mut self,
        scope: &Scope<'a>,
        var: Var<'_>,
        step: &'a ast::Step,
        role: &ast::Ident,
        prompt: &'a ast::Expr,
        verifier: Option<&ast::Ident>,
        report: bool,
    ) -> Attempt {
        let attrs = Env::entries(&step.attrs);
        let max_tokens = int_attr(attrs, "max_tokens").unwrap_or(DEFAULT_MAX_TOKENS);
        let reply = reply_bytes(attrs);
        let cap = int_attr(attrs, "max_input_tokens");
        let pieces = self.pieces(scope, var, prompt);
        let mut out = Attempt { usd: Usd::ZERO, prompt: 0, model: None, lines: Vec::new(), unbounded: false };
        let chain = self.chain(&role.name);
        if chain.is_empty() {
            out.lines.push(format!("role `{}` has no model: not counted", role.name));
            return out;
        }
        // The dearest model of the chain, and every model whose window the
        // prompt may not fit.
        let mut best: Option<(Usd, &ir::Model, Prompt, u64)> = None;
        let mut overflows: Vec<(&ir::Model, u64)> = Vec::new();
        for m in &chain {
            let p = count_prompt(&pieces, tokens::tokenizer(m));
            let bound = match (p.total, cap) {
                (Some(t), Some(c)) => t.min(c),
                (Some(t), None) => t,
                (None, Some(c)) => c,
                (None, None) => {
                    out.unbounded = true;
                    continue;
                }
            };
            if bound > m.context {
                overflows.push((m, bound));
            }
            let usd = Usd::of_tokens(bound, m.input_per_m).plus(Usd::of_tokens(max_tokens, m.output_per_m));
            if best.as_ref().is_none_or(|(b, ..)| usd > *b) {
                best = Some((usd, m, p, bound));
            }
        }
        if let (true, Some(&(m, bound))) = (report, overflows.first()) {
            self.overflow(scope.file, step, m, bound, &pieces, overflows.len(), false);
        }
        let Some((attempt_usd, model, p, bound)) = best else {
            out.lines.push("the prompt has no size bound".to_string());
            return out;
        };
        out.model = Some(model.name.clone());
        out.prompt = bound;
        let mut breakdown = vec![format!("{} of template", p.template)];
        for piece in &pieces {
            if let Piece::Value { label, value, .. } = piece {
                breakdown.push(format!("{} for {label}", value.tokens.map_or("unbounded".to_string(), |t| t.to_string())));
            }
        }
        if p.boundaries > 0 {
            breakdown.push(format!("{} {}", p.boundaries, plural(p.boundaries, "boundary", "boundaries")));
        }
        let capped = match (p.total, cap) {
            (Some(t), Some(c)) if c < t => format!(", capped by `max_input_tokens: {c}`"),
            (None, Some(c)) => format!(", capped by `max_input_tokens: {c}`"),
            _ => String::new(),
        };
        out.lines.push(format!(
            "prompt ≤ {bound} tokens ({}{capped}; counted in {})",
            breakdown.join(" + "),
            tokens::tokenizer(model).as_str()
        ));
        let dearest = if chain.len() > 1 { format!(" (the dearest of `{}`)", role.name) } else { String::new() };
        out.lines.push(format!(
            "one attempt on `{}`{dearest}: {bound} × {} + {max_tokens} × {} = {attempt_usd}",
            model.name,
            fmt_price(model.input_per_m),
            fmt_price(model.output_per_m),
        ));
        out.usd = attempt_usd;
        if let Some(v) = verifier {
            let vchain = self.chain(&v.name);
            let mut vbest: Option<(Usd, &ir::Model, u64)> = None;
            let mut voverflow: Option<(&ir::Model, u64)> = None;
            for m in &vchain {
                let p = count_prompt(&pieces, tokens::tokenizer(m));
                let Some(prompt) = p.total.map(|t| cap.map_or(t, |c| t.min(c))).or(cap) else {
                    out.unbounded = true;
                    continue;
                };
                let vp = prompt.saturating_add(reply).saturating_add(VERIFY_INSTRUCTION_TOKENS);
                if vp > m.context && voverflow.is_none() {
                    voverflow = Some((m, vp));
                }
                let usd = Usd::of_tokens(vp, m.input_per_m).plus(Usd::of_tokens(VERIFY_MAX_TOKENS, m.output_per_m));
                if vbest.as_ref().is_none_or(|(b, ..)| usd > *b) {
                    vbest = Some((usd, m, vp));
                }
            }
            if let (true, true, Some((m, vp))) = (report, overflows.is_empty(), voverflow) {
                self.overflow(scope.file, step, m, vp, &pieces, 1, true);
            }
            if let Some((vusd, m, vp)) = vbest {
                out.lines.push(format!(
                    "verified by `{}` on `{}`: ({} prompt + {reply} reply bytes + {VERIFY_INSTRUCTION_TOKENS} instruction) × {} + {VERIFY_MAX_TOKENS} × {} = {vusd} per attempt",
                    v.name,
                    m.name,
                    vp - reply - VERIFY_INSTRUCTION_TOKENS,
                    fmt_price(m.input_per_m),
                    fmt_price(m.output_per_m),
                ));
                out.lines.push(format!("each attempt with its verification: {} + {vusd} = {}", out.usd, out.usd.plus(vusd)));
                out.usd = out.usd.plus(vusd);
            }
        }
        out
    }

    /// E0404 on `step`: a prompt bound above `model`'s window.
    #[allow(clippy::too_many_arguments)]
    fn overflow(
        &mut self,
        file: FileId,
        step: &ast::Step,
        model: &ir::Model,
        bound: u64,
        pieces: &[Piece<'_>],
        how_many: usize,
        verification: bool,
    ) {
        let what = if verification { "the verification prompt of step" } else { "the prompt of step" };
        let mut d = Diagnostic::error(
            Code::E0404,
            file,
            step.name.span,
            format!(
                "{what} `{}` can reach {bound} tokens, more than the {}-token context window of model `{}`",
                step.name.name, model.context, model.name
            ),
        )
        .with_primary_label(format!("up to {bound} prompt tokens"));
        let biggest = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Value { span, value, .. } => value.tokens.map(|t| (t, *span)),
                Piece::Text(_) => None,
            })
            .max_by_key(|(t, _)| *t);
        if let Some((t, span)) = biggest {
            d = d.with_label(file, span, format!("this value alone can be {t} tokens"));
        }
        if let Some(decl) = self.env.models.get(&model.name) {
            d = d.with_label(decl.file, decl.decl.name.span, format!("`{}` has a {}-token window", model.name, model.context));
        }
        let others = if how_many > 1 { format!(" ({} models of the role are too small)", how_many) } else { String::new() };
        d = d.with_help(format!(
            "set `max_input_tokens: {}` on the step so the runtime fits the prompt into the window, or lower the bound of what it interpolates{others}",
            model.context
        ));
        self.diags.push(d);
    }

    /// The models of a role that exist, in chain order.
    fn chain(&self, role: &str) -> Vec<&'r ir::Model> {
        self.chains.get(role).map_or(Vec::new(), |c| c.iter().filter_map(|m| self.models.get(m)).collect())
    }

    /// One step's bound: kind, figures, and whether it is bounded.
    fn step(&mut self, scope: &Scope<'a>, step: &'a ast::Step) -> (ir::StepKind, ir::CostBound, Usd, bool) {
        let attrs = Env::entries(&step.attrs);
        let retry = int_attr(attrs, "retry").unwrap_or(0);
        let tries = retry.saturating_add(1);
        let mut bound = ir::CostBound { items: 1, ..ir::CostBound::default() };
        let mut lines = Vec::new();
        let mut bounded = true;
        let mut per_attempt = Usd::ZERO;
        let mut exact = Usd::ZERO;

        // Fan-out: the multiplier and the bound of one item.
        let (body, var_name, items, item_value) = match &step.call.kind {
            ExprKind::For { var, iter, body } => {
                let items = fan_out_items(attrs, iter);
                if items.is_none() && !matches!(iter.kind, ExprKind::Error) {
                    bounded = false;
                    self.diags.push(
                        Diagnostic::error(
                            Code::E0502,
                            scope.file,
                            iter.span,
                            format!(
                                "the cost of step `{}` cannot be bounded: its fan-out over `{}` has no `max_items`",
                                step.name.name,
                                describe(iter)
                            ),
                        )
                        .with_primary_label("a list of unknown length")
                        .with_label(scope.file, step.name.span, "this step runs once per item")
                        .with_help("add `max_items: N` to the step's attributes (a longer list fails the step)"),
                    );
                }
                let item_value = match &iter.kind {
                    ExprKind::List(xs) => {
                        let mut m = Some(0u64);
                        for x in xs {
                            let v = self.value(scope, None, x).tokens;
                            m = m.zip(v).map(|(a, b)| a.max(b));
                        }
                        Value::of(m)
                    }
                    _ => Value::of(self.value(scope, None, iter).tokens),
                };
                (body.as_ref(), Some(var.name.as_str()), items, item_value)
            }
            _ => (&step.call, None, Some(1), Value::UNKNOWN),
        };
        let n = items.unwrap_or(1);
        bound.items = n;
        let var = var_name.map(|v| (v, item_value));

        let kind = match &body.kind {
            ExprKind::Llm { role, prompt } => {
                let verifier = roles::verify_role(step);
                let a = self.llm_attempt(scope, var, step, role, prompt, verifier, true);
                let attempts = (1 + REPAIRS).saturating_mul(tries);
                bound.prompt_tokens = a.prompt;
                bound.output_tokens = int_attr(attrs, "max_tokens").unwrap_or(DEFAULT_MAX_TOKENS);
                bound.attempts = attempts;
                bound.model = a.model.clone();
                exact = a.usd.times(attempts).times(n);
                per_attempt = a.usd;
                bounded &= !a.unbounded;
                lines.extend(a.lines);
                lines.push(format!(
                    "attempts: (1 + {REPAIRS} repair) × {tries} {} = {attempts}",
                    if retry == 0 { "try".to_string() } else { format!("tries (`retry: {retry}`)") }
                ));
                ir::StepKind::Llm
            }
            ExprKind::Call { callee, .. } if callee.len() >= 2 => {
                bound.attempts = tries;
                bound.output_tokens = self.call_output(scope, body, attrs).tokens.unwrap_or(0);
                let tries_text = if retry == 0 { String::new() } else { format!("; {tries} tries (`retry: {retry}`)") };
                lines.push(format!(
                    "tool `{}`: no model cost; output ≤ {} tokens{tries_text}",
                    Env::tool_name(callee),
                    bound.output_tokens
                ));
                ir::StepKind::Tool
            }
            ExprKind::Call { callee, .. } => {
                bound.attempts = tries;
                if let Some(id) = callee.first().filter(|id| self.env.workflows.contains_key(&id.name)) {
                    match self.workflow(&id.name) {
                        Some(t) => {
                            exact = t.times(tries).times(n);
                            lines.push(format!("workflow `{}`: up to {t} per run, × {tries} {}", id.name, plural(tries, "try", "tries")));
                        }
                        None => {
                            bounded = false;
                            lines.push(format!("workflow `{}` has no cost bound", id.name));
                        }
                    }
                    bound.output_tokens = self.workflow_ret(&id.name).tokens.unwrap_or(0);
                }
                ir::StepKind::Workflow
            }
            _ => ir::StepKind::Tool,
        };
        if var_name.is_some() {
            match items {
                Some(n) => lines.push(format!("fan-out: × {n} {}", plural(n, "item", "items"))),
                None => lines.push("fan-out: no `max_items`, so no bound".to_string()),
            }
        }
        // A fallback runs once per item after every try failed.
        if let Some(fb) = Env::attr(attrs, "fallback") {
            match &fb.value.kind {
                ExprKind::Llm { role, prompt } => {
                    let a = self.llm_attempt(scope, var, step, role, prompt, None, false);
                    let usd = a.usd.times(1 + REPAIRS).times(n);
                    bounded &= !a.unbounded;
                    lines.push(format!("fallback `llm {}`: (1 + {REPAIRS} repair) × {} = {usd} (added)", role.name, a.usd));
                    exact = exact.plus(usd);
                }
                ExprKind::Call { callee, .. } if callee.len() == 1 => {
                    if let Some(id) = callee.first().filter(|id| self.env.workflows.contains_key(&id.name)) {
                        match self.workflow(&id.name) {
                            Some(t) => {
                                exact = exact.plus(t.times(n));
                                lines.push(format!("fallback workflow `{}`: up to {t}", id.name));
                            }
                            None => bounded = false,
                        }
                    }
                }
                _ => {}
            }
        }
        if bounded && kind == ir::StepKind::Llm {
            let items = if n == 1 { String::new() } else { format!(" × {n} items") };
            lines.push(format!("step total: {} attempts × {per_attempt}{items} = {exact}", bound.attempts));
        } else if bounded {
            lines.push(format!("step total: {exact}"));
        } else {
            lines.push("step total: no bound".to_string());
        }
        bound.explanation = lines.join("\n");
        bound.usd = exact.to_f64();
        (kind, bound, exact, bounded)
    }
}

/// How many items a fan-out runs at most: `max_items`, or the length of a
/// literal list (the smaller when both are known).
fn fan_out_items(attrs: &[ast::Attr], iter: &ast::Expr) -> Option<u64> {
    let literal = list_len(iter);
    match (int_attr(attrs, "max_items"), literal) {
        (Some(m), Some(l)) => Some(m.min(l)),
        (m, l) => m.or(l),
    }
}

/// The most items a list expression has, when the syntax says: a literal
/// list, or `take(xs, N)` (at most N, and at most what `xs` has).
fn list_len(e: &ast::Expr) -> Option<u64> {
    match &e.kind {
        ExprKind::List(xs) => u64::try_from(xs.len()).ok(),
        ExprKind::Call { callee, args } if callee.len() == 1 && callee.first().is_some_and(|c| c.name == "take") => {
            let n = args.get(1).and_then(|a| take_count(&a.value));
            let inner = args.first().and_then(|a| list_len(&a.value));
            match (n, inner) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        _ => None,
    }
}

/// The count of `take(xs, N)` when it is a literal (a negative one takes nothing).
fn take_count(e: &ast::Expr) -> Option<u64> {
    match &e.kind {
        ExprKind::Int(n) => Some(u64::try_from(*n).unwrap_or(0)),
        _ => None,
    }
}

/// A whole-number attribute that is not negative (a malformed one is a type
/// error reported elsewhere, and counts as absent).
/// The reply bound of an LLM step in UTF-8 bytes, which bounds the reply
/// in every tokenizer that reads it: `max_reply_bytes:` when declared, else
/// `REPLY_BYTES_PER_TOKEN × max_tokens`. The runtime never cuts a reply to
/// make it hold; a longer reply is reported (`reply_over_bound`).
pub fn reply_bytes(attrs: &[ast::Attr]) -> u64 {
    int_attr(attrs, "max_reply_bytes")
        .unwrap_or_else(|| int_attr(attrs, "max_tokens").unwrap_or(DEFAULT_MAX_TOKENS).saturating_mul(REPLY_BYTES_PER_TOKEN))
}

fn int_attr(attrs: &[ast::Attr], key: &str) -> Option<u64> {
    match Env::attr(attrs, key)?.value.kind {
        ExprKind::Int(n) => u64::try_from(n).ok(),
        _ => None,
    }
}


/// A short text for an interpolated expression.
fn describe(e: &ast::Expr) -> String {
    match &e.kind {
        ExprKind::Name(id) => id.name.clone(),
        ExprKind::Field(of, f) => format!("{}.{}", describe(of), f.name),
        ExprKind::Index(of, _) => format!("{}[…]", describe(of)),
        ExprKind::Call { callee, .. } => format!("{}(…)", Env::tool_name(callee)),
        ExprKind::Str(_) => "a string".to_string(),
        ExprKind::List(_) => "a list".to_string(),
        _ => "an expression".to_string(),
    }
}

fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// US dollars rounded up to the micro-dollar (so the figure shown is still
/// an upper bound), with at least two decimals: `$0.063748`, `$2.50`.
pub fn fmt_usd(usd: f64) -> String {
    if usd <= 0.0 {
        return "$0".to_string();
    }
    // Subtract a little noise before rounding up: 0.3 must not become 0.300001.
    let micros = (usd * 1e6 - 1e-6).ceil().max(0.0);
    fmt_dollars(micros / 1e6)
}

/// A per-million price as written in source: `$2.50/M` (exact: prices
/// are whole micro-dollars).
pub fn fmt_price(per_m: f64) -> String {
    let micros = Usd::of_tokens(1_000_000, per_m).micros_ceil();
    format!("{}/M", crate::money::dollars(micros))
}

fn fmt_dollars(x: f64) -> String {
    let mut s = format!("{x:.6}");
    while s.ends_with('0') && s.len() > s.find('.').map_or(0, |i| i + 3) {
        s.pop();
    }
    format!("${s}")
}

/// The table of `aosc check --cost`: for each workflow, each step's bound
/// and how it was reached, and the total against the budget.
pub fn render_table(report: &CostReport) -> String {
    let mut out = String::new();
    for (name, wf) in &report.workflows {
        let total = wf.total.map_or("no bound".to_string(), |t| t.to_string());
        let budget = match (wf.budget, wf.total) {
            (Some(b), Some(t)) => {
                let verdict = if t > b { "OVER budget" } else { "within budget" };
                match t.percent_of(b) {
                    Some(p) => format!("budget {b} ({p}% used, {verdict})"),
                    None => format!("budget {b} ({verdict})"),
                }
            }
            (Some(b), None) => format!("budget {b}"),
            (None, _) => "no budget".to_string(),
        };
        let _ = writeln!(out, "workflow {name}: worst case {total} per run; {budget}");
        let header = ["step", "kind", "model", "prompt tok", "output tok", "attempts", "items", "USD"];
        let mut rows: Vec<[String; 8]> = Vec::new();
        for (step, kind) in &wf.order {
            let Some(b) = wf.steps.get(step) else { continue };
            let llm = *kind == ir::StepKind::Llm;
            let usd = if wf.unbounded.contains(step) {
                "no bound".to_string()
            } else {
                wf.step_usd.get(step).map_or_else(|| fmt_usd(b.usd), Usd::to_string)
            };
            rows.push([
                step.clone(),
                kind_name(*kind).to_string(),
                b.model.clone().unwrap_or_else(|| "-".to_string()),
                if llm { b.prompt_tokens.to_string() } else { "-".to_string() },
                b.output_tokens.to_string(),
                b.attempts.to_string(),
                b.items.to_string(),
                usd,
            ]);
        }
        rows.push([
            "total".to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            total.clone(),
        ]);
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(widths.iter()).enumerate() {
                // Names left-aligned, figures right-aligned.
                if i < 3 {
                    let _ = write!(s, "  {c:<w$}");
                } else {
                    let _ = write!(s, "  {c:>w$}");
                }
            }
            s.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(&header.map(str::to_string)));
        let n = rows.len();
        for (i, r) in rows.iter().enumerate() {
            if i + 1 == n {
                let width: usize = widths.iter().sum::<usize>() + 2 * widths.len();
                let _ = writeln!(out, "  {}", "-".repeat(width.saturating_sub(2)));
            }
            let _ = writeln!(out, "{}", line(r));
        }
        for (step, _) in &wf.order {
            let Some(b) = wf.steps.get(step) else { continue };
            let _ = writeln!(out, "\n  {step}:");
            for l in b.explanation.lines() {
                let _ = writeln!(out, "    {l}");
            }
        }
        out.push('\n');
    }
    out
}

fn kind_name(kind: ir::StepKind) -> &'static str {
    match kind {
        ir::StepKind::Tool => "tool",
        ir::StepKind::Llm => "llm",
        ir::StepKind::Workflow => "workflow",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_is_rounded_up_to_the_micro() {
        assert_eq!(fmt_usd(0.0), "$0");
        assert_eq!(fmt_usd(0.5), "$0.50");
        assert_eq!(fmt_usd(0.3), "$0.30");
        assert_eq!(fmt_usd(0.000_000_1), "$0.000001");
        assert_eq!(fmt_usd(0.063_747_2), "$0.063748");
        assert_eq!(fmt_price(2.5), "$2.50/M");
        assert_eq!(fmt_price(0.15), "$0.15/M");
    }


}
