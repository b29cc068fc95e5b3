//! Bounds of values rendered into prompts: steps' outputs, expressions,
//! built-in calls and the pieces of a prompt.

use super::*;

impl<'a> Analyzer<'_, 'a> {
    /// The bound of step `step`'s value.
    pub(super) fn step_output(&mut self, scope: &Scope<'a>, step: &'a ast::Step) -> Value {
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
    pub(super) fn call_output(&mut self, _scope: &Scope<'a>, call: &'a ast::Expr, attrs: &[ast::Attr]) -> Value {
        match &call.kind {
            ExprKind::Llm { .. } => Value::tokens(reply_bytes(attrs)),
            ExprKind::Call { callee, .. } if callee.len() >= 2 => {
                let name = Env::tool_name(callee);
                let Some(tool) = self.env.tools.get(&name) else { return Value::UNKNOWN };
                let n = StepAttrs::read(attrs)
                    .max_output_tokens
                    .or_else(|| ToolAttrs::read(Env::entries(&tool.decl.attrs)).max_output_tokens)
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
    pub(super) fn value(&mut self, scope: &Scope<'a>, var: Var<'_>, e: &'a ast::Expr) -> Value {
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
            ExprKind::Llm { .. } | ExprKind::For { .. } | ExprKind::Block { .. } | ExprKind::Error => Value::UNKNOWN,
        }
    }

    pub(super) fn name(&mut self, scope: &Scope<'a>, var: Var<'_>, name: &str) -> Value {
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
    pub(super) fn builtin(&mut self, scope: &Scope<'a>, var: Var<'_>, callee: &[ast::Ident], args: &'a [ast::Arg]) -> Value {
        let [f] = callee else { return Value::UNKNOWN };
        let mut arg = |i: usize| args.get(i).map(|a| self.value(scope, var, &a.value));
        match f.name.as_str() {
            "len" => Value::tokens(SCALAR_BOUND),
            "json" => arg(0).map_or(Value::UNKNOWN, |v| v.plus(2)),
            "lower" | "upper" | "trim" => arg(0).map_or(Value::UNKNOWN, |v| Value::of(v.tokens)),
            // At most the list's tokens, and at most `n` items.
            "take" => {
                let Some(list) = arg(0) else { return Value::UNKNOWN };
                let n = args.get(1).and_then(|a| super::take_count(&a.value));
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

    /// The pieces of a prompt (labelled only when explaining, see
    /// [`super::Notes`]).
    pub(super) fn pieces(&mut self, scope: &Scope<'a>, var: Var<'_>, prompt: &'a ast::Expr) -> Vec<Piece<'a>> {
        let value = |a: &mut Self, x: &'a ast::Expr| Piece::Value {
            label: if a.exact { a.label(scope, var, x) } else { String::new() },
            span: x.span,
            value: a.value(scope, var, x),
        };
        match &prompt.kind {
            ExprKind::Str(s) => s
                .parts
                .iter()
                .map(|p| match p {
                    StrPart::Text(t) => Piece::Text(t.as_str()),
                    StrPart::Interp(x) => value(self, x),
                })
                .collect(),
            _ => vec![value(self, prompt)],
        }
    }

    /// How an interpolated value is named in explanations, with where its
    /// bound comes from when it is a plain name.
    pub(super) fn label(&self, scope: &Scope<'a>, var: Var<'_>, e: &ast::Expr) -> String {
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
}
