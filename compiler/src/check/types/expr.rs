//! The types of expressions: names, fields, operators and built-ins.

use super::*;

impl<'a> Walker<'_, '_, 'a, '_> {
    /// The type of an expression, reporting unknown names and misuses.
    pub(super) fn expr(&mut self, e: &ast::Expr) -> Ty {
        match &e.kind {
            ExprKind::Int(_) => Ty::Int,
            ExprKind::Float(_) => Ty::Float,
            ExprKind::Bool(_) => Ty::Bool,
            ExprKind::Null => Ty::Null,
            ExprKind::Duration(_) => Ty::Duration,
            ExprKind::Money(_) | ExprKind::Price(_) => Ty::Money,
            // Blocks are lifted into workflows before this pass (`check::blocks`).
            ExprKind::Error | ExprKind::Block { .. } => Ty::Unknown,
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
                let mut seen: FxHashMap<&str, Span> = FxHashMap::default();
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
            ExprKind::Llm { role, prompt, .. } => {
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

    pub(super) fn name(&mut self, id: &ast::Ident) -> Ty {
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

    pub(super) fn is_local(&self, name: &str) -> bool {
        self.vars.iter().any(|(n, _)| n == name) || self.params.contains_key(name) || self.steps.contains_key(name)
    }

    pub(super) fn field(&mut self, base: &ast::Expr, field: &ast::Ident) -> Ty {
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

    pub(super) fn optional_base(&mut self, span: Span, t: &Ty) {
        self.push(
            Diagnostic::error(Code::E0203, self.file, span, format!("this value is `{t}` and may be null"))
                .with_primary_label("may be null")
                .with_help("give a default with `??` first, e.g. `(value ?? fallback).field`"),
        );
    }

    pub(super) fn binary(&mut self, op: BinaryOp, a: &ast::Expr, b: &ast::Expr) -> Ty {
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
    pub(super) fn builtin(&mut self, callee: &[ast::Ident], args: &[ast::Arg]) -> Ty {
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
