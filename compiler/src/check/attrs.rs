//! Attribute blocks, validated against the one table ([`crate::attrs`]) and
//! read once into typed values.
//!
//! A key the item does not take is E0105 (with a did-you-mean, or the name
//! of the item that does take it); a literal out of its range — a negative
//! count or duration, a zero token bound, a duration whose milliseconds do not
//! fit in 64 bits — is E0106. Types of values that are expressions (a `when:`
//! condition, a `budget:` amount) are the type pass's (E0201); the shape of a
//! tool's literal attributes is checked here, since no other pass reads them.
//! Model attributes are read by `models` (malformed is E0403); only their keys
//! are checked here.

use crate::ast::{self, ExprKind, UnaryOp};
use crate::attrs::{self, AttrSpec, AttrType, Item};
use crate::diagnostic::Diagnostic;
use crate::codes::Code;
use crate::source::FileId;

use super::env::Env;
use super::suggest;

/// The largest duration, in milliseconds, that the runtime represents.
pub const MAX_DURATION_MS: u64 = i64::MAX as u64;

/// Checks the keys and literal ranges of every attribute block of the
/// program's own declarations (the standard library is trusted).
pub fn check(env: &Env, diags: &mut Vec<Diagnostic>) {
    for wf in env.workflows.values().filter(|w| !w.std) {
        block(Item::Workflow, wf.file, &wf.decl.attrs, diags);
        for s in &wf.decl.steps {
            block(Item::Step, wf.file, Env::entries(&s.attrs), diags);
        }
    }
    for t in env.tools.values().filter(|t| !t.std) {
        block(Item::Tool, t.file, Env::entries(&t.decl.attrs), diags);
        embeds(t.file, t.decl, diags);
    }
    for m in env.models.values().filter(|m| !m.std) {
        block(Item::Model, m.file, Env::entries(&m.decl.attrs), diags);
    }
    for r in env.roles.values().filter(|r| !r.std) {
        block(Item::Role, r.file, Env::entries(&r.decl.attrs), diags);
    }
}

fn block(item: Item, file: FileId, entries: &[ast::Attr], diags: &mut Vec<Diagnostic>) {
    for a in entries {
        match attrs::lookup(item, &a.key.name) {
            None => diags.push(unknown(item, file, a)),
            // A model's values are the model pass's (E0403).
            Some(_) if item == Item::Model => {}
            Some(spec) => {
                if let Some(d) = out_of_range(spec, file, a) {
                    diags.push(d);
                } else if item == Item::Tool
                    && let Some(d) = tool_shape(spec, file, a)
                {
                    diags.push(d);
                }
            }
        }
    }
}

/// E0201 for a name in a tool's `embeds:` that is not one of its
/// parameters.
fn embeds(file: FileId, tool: &ast::ToolDecl, diags: &mut Vec<Diagnostic>) {
    for id in Block(Env::entries(&tool.attrs)).names("embeds") {
        if tool.params.iter().any(|p| p.name.name == id.name) {
            continue;
        }
        let mut d = Diagnostic::error(Code::E0201, file, id.span, format!("`embeds:` names `{}`, which is not a parameter of the tool", id.name))
            .with_primary_label("not a parameter");
        if let Some(s) = suggest::closest(&id.name, tool.params.iter().map(|p| p.name.name.as_str())) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        diags.push(d);
    }
}

/// E0105: `a.key` is not an attribute of `item`.
fn unknown(item: Item, file: FileId, a: &ast::Attr) -> Diagnostic {
    let key = a.key.name.as_str();
    let d = Diagnostic::error(Code::E0105, file, a.key.span, format!("a {item} has no attribute `{key}`"))
        .with_primary_label(format!("not a {item} attribute"));
    let names: Vec<&str> = attrs::of(item).map(|s| s.name).collect();
    if let Some(s) = suggest::closest(key, names.iter().copied()) {
        return d.with_help(format!("did you mean `{s}`?"));
    }
    let others = attrs::taken_by_others(item, key);
    if let Some(other) = others.first() {
        let place = match other {
            Item::Workflow => "a workflow's header",
            Item::Step => "a step's block",
            Item::Tool => "a tool declaration",
            Item::Model => "a model declaration",
            Item::Role => "a role declaration",
        };
        return d.with_help(format!("`{key}:` belongs in {place}"));
    }
    d.with_help(format!("a {item} takes {}", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")))
}

/// A literal number: `n`, or `-n`.
fn literal_int(e: &ast::Expr) -> Option<i128> {
    match &e.kind {
        ExprKind::Int(n) => Some(i128::from(*n)),
        ExprKind::Unary(UnaryOp::Neg, inner) => literal_int(inner).map(|n| -n),
        _ => None,
    }
}

fn literal_float(e: &ast::Expr) -> Option<f64> {
    match &e.kind {
        #[allow(clippy::cast_precision_loss)]
        ExprKind::Int(n) => Some(*n as f64),
        ExprKind::Float(f) => Some(*f),
        ExprKind::Unary(UnaryOp::Neg, inner) => literal_float(inner).map(|f| -f),
        _ => None,
    }
}

/// A duration literal in milliseconds, negative when written `-D`; `None`
/// for another shape, `Some(Err(()))` when it does not fit.
fn literal_duration(e: &ast::Expr) -> Option<Result<i128, ()>> {
    match &e.kind {
        ExprKind::Duration(d) => Some(duration_ms(d).map(i128::from).ok_or(())),
        ExprKind::Unary(UnaryOp::Neg, inner) => literal_duration(inner).map(|r| r.map(|n| -n)),
        _ => None,
    }
}

/// The milliseconds of a duration, when they fit in [`MAX_DURATION_MS`].
pub fn duration_ms(d: &ast::Duration) -> Option<u64> {
    let factor: u64 = match d.unit {
        ast::DurationUnit::Ms => 1,
        ast::DurationUnit::S => 1_000,
        ast::DurationUnit::M => 60_000,
        ast::DurationUnit::H => 3_600_000,
        ast::DurationUnit::D => 86_400_000,
    };
    d.value.checked_mul(factor).filter(|ms| *ms <= MAX_DURATION_MS)
}

fn literal_money_negative(e: &ast::Expr) -> bool {
    matches!(&e.kind, ExprKind::Unary(UnaryOp::Neg, inner) if matches!(inner.kind, ExprKind::Money(_) | ExprKind::Price(_)))
}

/// E0106 for a literal outside the attribute's range.
fn out_of_range(spec: &AttrSpec, file: FileId, a: &ast::Attr) -> Option<Diagnostic> {
    let key = spec.name;
    let err = |msg: String, help: String| {
        Some(Diagnostic::error(Code::E0106, file, a.value.span, msg).with_primary_label("out of range").with_help(help))
    };
    match spec.ty {
        AttrType::Int { min, max } => {
            let n = literal_int(&a.value)?;
            if n < i128::from(min) {
                let what = if n < 0 { "negative" } else { "too small" };
                return err(format!("`{key}:` is {what} ({n})"), format!("`{key}:` takes {}", spec.ty.describe()));
            }
            if n > i128::from(max) {
                return err(format!("`{key}:` is too large ({n})"), format!("`{key}:` takes at most {max}"));
            }
            None
        }
        AttrType::Float { min, max } => {
            let f = literal_float(&a.value)?;
            if f < min || f > max || f.is_nan() {
                return err(format!("`{key}:` is out of range ({f})"), format!("`{key}:` takes {}", spec.ty.describe()));
            }
            None
        }
        AttrType::Duration { min_ms } => match literal_duration(&a.value)? {
            Err(()) => err(
                format!("`{key}:` is too long to represent"),
                format!("a duration must be at most {MAX_DURATION_MS} ms (about 292 million years)"),
            ),
            Ok(ms) if ms < 0 => err(format!("`{key}:` is a negative duration"), format!("write a positive duration, like `{}`", spec.example)),
            Ok(ms) if ms < i128::from(min_ms) => {
                err(format!("`{key}:` is zero"), format!("a zero `{key}:` could never succeed; write a positive duration, like `{}`", spec.example))
            }
            Ok(_) => None,
        },
        AttrType::Money | AttrType::Price if literal_money_negative(&a.value) => {
            err(format!("`{key}:` is a negative amount"), "amounts are at least `$0`".to_string())
        }
        _ => None,
    }
}

/// E0201 for a tool attribute whose literal has the wrong shape.
fn tool_shape(spec: &AttrSpec, file: FileId, a: &ast::Attr) -> Option<Diagnostic> {
    let v = &a.value;
    let ok = match spec.ty {
        AttrType::Int { .. } => literal_int(v).is_some(),
        AttrType::Duration { .. } => literal_duration(v).is_some(),
        AttrType::String => matches!(&v.kind, ExprKind::Str(s) if s.parts.iter().all(|p| matches!(p, ast::StrPart::Text(_)))),
        AttrType::StringList => matches!(&v.kind, ExprKind::List(items)
            if items.iter().all(|i| matches!(&i.kind, ExprKind::Str(_)))),
        AttrType::ParamList => matches!(&v.kind, ExprKind::List(items)
            if items.iter().all(|i| matches!(&i.kind, ExprKind::Name(_)))),
        // Risk and effect names are the risk pass's (E0101/E0201).
        _ => true,
    };
    if ok || matches!(v.kind, ExprKind::Error) {
        return None;
    }
    Some(
        Diagnostic::error(Code::E0201, file, v.span, format!("`{}:` expects {}", spec.name, spec.ty.describe()))
            .with_primary_label("wrong kind of value")
            .with_help(format!("write `{}: {}`", spec.name, spec.example)),
    )
}

/// An attribute block read into values: the key's literal, once validated.
/// Absent or malformed attributes read as `None` (their error is reported).
#[derive(Clone, Copy, Debug)]
pub struct Block<'a>(pub &'a [ast::Attr]);

impl<'a> Block<'a> {
    /// The attribute `key` (first wins).
    pub fn get(self, key: &str) -> Option<&'a ast::Attr> {
        Env::attr(self.0, key)
    }

    /// A non-negative integer attribute.
    pub fn count(self, key: &str) -> Option<u64> {
        match self.get(key)?.value.kind {
            ExprKind::Int(n) => u64::try_from(n).ok(),
            _ => None,
        }
    }

    /// A non-negative integer attribute that fits in `u32`.
    pub fn count_u32(self, key: &str) -> Option<u32> {
        self.count(key).and_then(|n| u32::try_from(n).ok())
    }

    /// A duration attribute in milliseconds (when it fits).
    pub fn duration_ms(self, key: &str) -> Option<u64> {
        match &self.get(key)?.value.kind {
            ExprKind::Duration(d) => duration_ms(d),
            _ => None,
        }
    }

    /// A list-of-names attribute (`embeds: [key, value]`): its names.
    pub fn names(self, key: &str) -> Vec<&'a ast::Ident> {
        match self.get(key).map(|a| &a.value.kind) {
            Some(ExprKind::List(items)) => items
                .iter()
                .filter_map(|i| match &i.kind {
                    ExprKind::Name(id) => Some(id),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A money attribute in micro-dollars.
    pub fn micros(self, key: &str) -> Option<u64> {
        match &self.get(key)?.value.kind {
            ExprKind::Money(m) => Some(m.micros),
            _ => None,
        }
    }
}

/// The typed attributes of a step, as every pass reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepAttrs {
    pub retry: u32,
    pub timeout_ms: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_reply_bytes: Option<u64>,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub max_items: Option<u64>,
    pub concurrency: Option<u32>,
    pub max_turns: Option<u32>,
    pub max_tool_calls: Option<u32>,
}

impl StepAttrs {
    pub fn read(entries: &[ast::Attr]) -> Self {
        let b = Block(entries);
        StepAttrs {
            retry: b.count_u32("retry").unwrap_or(0),
            timeout_ms: b.duration_ms("timeout"),
            max_tokens: b.count("max_tokens"),
            max_reply_bytes: b.count("max_reply_bytes"),
            max_input_tokens: b.count("max_input_tokens"),
            max_output_tokens: b.count("max_output_tokens"),
            max_items: b.count("max_items"),
            concurrency: b.count_u32("concurrency"),
            max_turns: b.count_u32("max_turns"),
            max_tool_calls: b.count_u32("max_tool_calls"),
        }
    }
}

/// The typed attributes of a workflow header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkflowAttrs {
    pub budget_micros: Option<u64>,
    pub max_concurrency: Option<u32>,
    pub max_param_tokens: Option<u64>,
    pub priority: Option<u32>,
}

impl WorkflowAttrs {
    pub fn read(entries: &[ast::Attr]) -> Self {
        let b = Block(entries);
        WorkflowAttrs {
            budget_micros: b.micros("budget"),
            max_concurrency: b.count_u32("max_concurrency"),
            max_param_tokens: b.count("max_param_tokens"),
            priority: b.count_u32("priority"),
        }
    }
}

/// The typed attributes of a tool declaration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ToolAttrs {
    pub max_output_tokens: Option<u64>,
    pub timeout_ms: Option<u64>,
}

impl ToolAttrs {
    pub fn read(entries: &[ast::Attr]) -> Self {
        let b = Block(entries);
        ToolAttrs { max_output_tokens: b.count("max_output_tokens"), timeout_ms: b.duration_ms("timeout") }
    }
}
