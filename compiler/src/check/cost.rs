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

use super::attrs::{Block, StepAttrs, ToolAttrs, WorkflowAttrs};
use super::env::{Env, Local};
use super::{agent, roles};
use super::tokens::{self, Tokenizer};

mod value;
mod llm;
mod embed;
mod table;

pub use table::{fmt_price, fmt_usd, render_table};
use table::plural;

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
    /// Whether prompts were counted with each model's own tokenizer (always,
    /// except from [`analyze_for_diagnostics`], whose figures may be byte
    /// bounds: sound, but looser).
    #[serde(skip)]
    pub exact: bool,
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
    run(env, models, diags, true)
}

/// [`analyze`] for the diagnostics alone: every prompt is first counted in
/// UTF-8 bytes, a sound bound of every tokenizer that needs no BPE loaded.
/// Byte counts are never below the exact counts, so when they reach no
/// finding that depends on a figure (E0404, E0501, W0501, whose messages
/// quote the figures), the exact counts would not either, and the findings
/// are the same as [`analyze`]'s; otherwise the pass is run again with the
/// exact tokenizers. The report's figures are exact only when
/// [`CostReport::exact`] says so.
pub fn analyze_for_diagnostics(env: &Env, models: &BTreeMap<String, ir::Model>, diags: &mut Vec<Diagnostic>) -> CostReport {
    let mut scratch = Vec::new();
    let report = run(env, models, &mut scratch, false);
    if scratch.iter().any(|d| matches!(d.code, Code::E0404 | Code::E0501 | Code::W0501)) {
        return analyze(env, models, diags);
    }
    diags.append(&mut scratch);
    report
}

/// [`analyze`] counting every prompt in UTF-8 bytes, whatever the findings
/// (the incremental re-check decides about exact counts itself).
pub(crate) fn analyze_bytes(env: &Env, models: &BTreeMap<String, ir::Model>, diags: &mut Vec<Diagnostic>) -> CostReport {
    run(env, models, diags, false)
}

fn run(env: &Env, models: &BTreeMap<String, ir::Model>, diags: &mut Vec<Diagnostic>, exact: bool) -> CostReport {
    let mut a = Analyzer {
        env,
        models,
        chains: roles::chains(env),
        costs: BTreeMap::new(),
        rets: BTreeMap::new(),
        diags,
        exact,
    };
    for (name, wf) in &env.workflows {
        if !wf.std {
            a.workflow(name);
        }
    }
    let workflows = a.costs.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
    CostReport { workflows, exact }
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
    lines: Notes,
    unbounded: bool,
}

/// The lines of a step's explanation ([`ir::CostBound::explanation`]),
/// written only when the figures are exact: a byte-count pass (the
/// diagnostics-only check, the incremental re-check) shows no explanation,
/// so it does not spend its time formatting one.
struct Notes {
    on: bool,
    lines: Vec<String>,
}

impl Notes {
    fn new(on: bool) -> Notes {
        Notes { on, lines: Vec::new() }
    }

    /// Adds the line `line` makes, when explaining.
    fn push(&mut self, line: impl FnOnce() -> String) {
        if self.on {
            self.lines.push(line());
        }
    }

    fn extend(&mut self, other: Notes) {
        self.lines.extend(other.lines);
    }

    fn join(&self) -> String {
        self.lines.join("\n")
    }
}

struct Analyzer<'r, 'a> {
    env: &'r Env<'a>,
    models: &'r BTreeMap<String, ir::Model>,
    chains: BTreeMap<String, Vec<String>>,
    /// `None` while the workflow is being computed (a call cycle).
    costs: BTreeMap<String, Option<WorkflowCost>>,
    rets: BTreeMap<String, Option<Value>>,
    diags: &'r mut Vec<Diagnostic>,
    /// Count with each model's tokenizer (else in UTF-8 bytes); only
    /// exact figures are explained (see [`Notes`]).
    exact: bool,
}

impl<'r, 'a> Analyzer<'r, 'a> {
    /// The tokenizer prompts for `model` are counted with.
    fn tokenizer(&self, model: &ir::Model) -> Tokenizer {
        if self.exact { tokens::tokenizer(model) } else { Tokenizer::Bytes }
    }

    fn scope(&self, wf: &'a ast::Workflow, file: FileId) -> Scope<'a> {
        let max_param = WorkflowAttrs::read(&wf.attrs).max_param_tokens.unwrap_or(DEFAULT_MAX_PARAM_TOKENS);
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
            // A fan-out block's workflow (`W.STEP`) is within its caller's budget.
            if name.contains('.') {
                return None;
            }
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

}

/// How many items a fan-out runs at most: `max_items`, or the length of a
/// literal list (the smaller when both are known).
fn fan_out_items(attrs: &[ast::Attr], iter: &ast::Expr) -> Option<u64> {
    let literal = list_len(iter);
    match (StepAttrs::read(attrs).max_items, literal) {
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
    let a = StepAttrs::read(attrs);
    a.max_reply_bytes.unwrap_or_else(|| a.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).saturating_mul(REPLY_BYTES_PER_TOKEN))
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
