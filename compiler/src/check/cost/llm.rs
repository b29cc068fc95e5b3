//! The cost of one LLM attempt (with its verification), prompt overflow
//! (E0404), and each step's bound.

use super::*;

impl<'r, 'a> Analyzer<'r, 'a> {
    /// The cost of one attempt of `llm ROLE(prompt)` with its verification,
    /// reporting E0404.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn llm_attempt(
        &mut self,
        scope: &Scope<'a>,
        var: Var<'_>,
        step: &'a ast::Step,
        role: &ast::Ident,
        prompt: &'a ast::Expr,
        verifier: Option<&ast::Ident>,
        extra: u64,
        report: bool,
    ) -> Attempt {
        let attrs = Env::entries(&step.attrs);
        let typed = StepAttrs::read(attrs);
        let max_tokens = typed.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        let reply = reply_bytes(attrs);
        let cap = typed.max_input_tokens;
        let pieces = self.pieces(scope, var, prompt);
        let mut out = Attempt { usd: Usd::ZERO, prompt: 0, model: None, lines: Notes::new(self.exact), unbounded: false };
        let chain = self.chain(&role.name);
        if chain.is_empty() {
            out.lines.push(|| format!("role `{}` has no model: not counted", role.name));
            return out;
        }
        // The dearest model of the chain, and every model whose window the
        // prompt may not fit.
        let mut best: Option<(Usd, &ir::Model, Prompt, u64)> = None;
        let mut overflows: Vec<(&ir::Model, u64)> = Vec::new();
        for m in &chain {
            let p = count_prompt(&pieces, self.tokenizer(m));
            let bound = match (p.total, cap) {
                (Some(t), Some(c)) => t.min(c),
                (Some(t), None) => t,
                (None, Some(c)) => c,
                (None, None) => {
                    out.unbounded = true;
                    continue;
                }
            };
            // An agent's turn also carries tools, earlier replies and results.
            let bound = bound.saturating_add(extra);
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
            out.lines.push(|| "the prompt has no size bound".to_string());
            return out;
        };
        out.model = Some(model.name.clone());
        out.prompt = bound;
        let tokenizer = self.tokenizer(model);
        out.lines.push(|| {
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
            format!("prompt ≤ {bound} tokens ({}{capped}; counted in {})", breakdown.join(" + "), tokenizer.as_str())
        });
        out.lines.push(|| {
            let dearest = if chain.len() > 1 { format!(" (the dearest of `{}`)", role.name) } else { String::new() };
            format!(
                "one attempt on `{}`{dearest}: {bound} × {} + {max_tokens} × {} = {attempt_usd}",
                model.name,
                fmt_price(model.input_per_m),
                fmt_price(model.output_per_m),
            )
        });
        out.usd = attempt_usd;
        if let Some(v) = verifier {
            let vchain = self.chain(&v.name);
            let mut vbest: Option<(Usd, &ir::Model, u64)> = None;
            let mut voverflow: Option<(&ir::Model, u64)> = None;
            for m in &vchain {
                let p = count_prompt(&pieces, self.tokenizer(m));
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
                out.lines.push(|| format!(
                    "verified by `{}` on `{}`: ({} prompt + {reply} reply bytes + {VERIFY_INSTRUCTION_TOKENS} instruction) × {} + {VERIFY_MAX_TOKENS} × {} = {vusd} per attempt",
                    v.name,
                    m.name,
                    vp - reply - VERIFY_INSTRUCTION_TOKENS,
                    fmt_price(m.input_per_m),
                    fmt_price(m.output_per_m),
                ));
                let usd = out.usd;
                out.lines.push(|| format!("each attempt with its verification: {usd} + {vusd} = {}", usd.plus(vusd)));
                out.usd = out.usd.plus(vusd);
            }
        }
        out
    }

    /// E0404 on `step`: a prompt bound above `model`'s window.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn overflow(
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
    pub(super) fn chain(&self, role: &str) -> Vec<&'r ir::Model> {
        self.chains.get(role).map_or(Vec::new(), |c| c.iter().filter_map(|m| self.models.get(m)).collect())
    }

    /// One step's bound: kind, figures, and whether it is bounded.
    pub(super) fn step(&mut self, scope: &Scope<'a>, step: &'a ast::Step) -> (ir::StepKind, ir::CostBound, Usd, bool) {
        let attrs = Env::entries(&step.attrs);
        let typed = StepAttrs::read(attrs);
        let retry = u64::from(typed.retry);
        let tries = retry.saturating_add(1);
        let mut bound = ir::CostBound { items: 1, ..ir::CostBound::default() };
        let mut lines = Notes::new(self.exact);
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
            ExprKind::Llm { role, prompt, agent: true } => {
                let max_tokens = typed.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
                let (extra, extra_text) = agent::turn_extra(self.env, step, max_tokens);
                // With `verify:`, any turn may end in an answer the verifier
                // checks and rejects: each turn is bounded with a verification.
                let verifier = roles::verify_role(step);
                let a = self.llm_attempt(scope, var, step, role, prompt, verifier, extra, true);
                let turns = u64::from(agent::max_turns(step));
                let attempts = turns.saturating_mul(tries);
                bound.prompt_tokens = a.prompt;
                bound.output_tokens = max_tokens;
                bound.attempts = attempts;
                bound.model = a.model.clone();
                exact = a.usd.times(attempts).times(n);
                per_attempt = a.usd;
                bounded &= !a.unbounded;
                lines.push(|| extra_text);
                lines.extend(a.lines);
                lines.push(|| format!(
                    "turns: `max_turns: {turns}` × {tries} {} = {attempts}; the listed tools cost nothing",
                    if retry == 0 { "try".to_string() } else { format!("tries (`retry: {retry}`)") }
                ));
                ir::StepKind::Llm
            }
            ExprKind::Llm { role, prompt, agent: false } => {
                let verifier = roles::verify_role(step);
                let a = self.llm_attempt(scope, var, step, role, prompt, verifier, 0, true);
                let attempts = (1 + REPAIRS).saturating_mul(tries);
                bound.prompt_tokens = a.prompt;
                bound.output_tokens = typed.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
                bound.attempts = attempts;
                bound.model = a.model.clone();
                exact = a.usd.times(attempts).times(n);
                per_attempt = a.usd;
                bounded &= !a.unbounded;
                lines.extend(a.lines);
                lines.push(|| format!(
                    "attempts: (1 + {REPAIRS} repair) × {tries} {} = {attempts}",
                    if retry == 0 { "try".to_string() } else { format!("tries (`retry: {retry}`)") }
                ));
                ir::StepKind::Llm
            }
            ExprKind::Call { callee, args } if callee.len() >= 2 => {
                bound.attempts = tries;
                bound.output_tokens = self.call_output(scope, body, attrs).tokens.unwrap_or(0);
                let tries_text = if retry == 0 { String::new() } else { format!("; {tries} tries (`retry: {retry}`)") };
                let name = Env::tool_name(callee);
                let embedded = match self.env.tools.get(&name) {
                    Some(tool) => self.embed_cost(scope, var, tool.decl, args),
                    None => embed::EmbedCost { usd: Some(Usd::ZERO), line: None },
                };
                match (embedded.usd, embedded.line) {
                    (Some(usd), Some(line)) => {
                        // Every try of every item may embed once.
                        exact = usd.times(tries).times(n);
                        lines.push(|| format!("tool `{name}`: output ≤ {} tokens{tries_text}", bound.output_tokens));
                        lines.push(|| line);
                    }
                    (None, line) => {
                        bounded = false;
                        lines.push(|| format!("tool `{name}`: output ≤ {} tokens{tries_text}", bound.output_tokens));
                        if let Some(line) = line {
                            lines.push(|| line);
                        }
                    }
                    (Some(_), None) => lines.push(|| format!("tool `{name}`: no model cost; output ≤ {} tokens{tries_text}", bound.output_tokens)),
                }
                ir::StepKind::Tool
            }
            ExprKind::Call { callee, .. } => {
                bound.attempts = tries;
                if let Some(id) = callee.first().filter(|id| self.env.workflows.contains_key(&id.name)) {
                    match self.workflow(&id.name) {
                        Some(t) => {
                            exact = t.times(tries).times(n);
                            lines.push(|| format!("workflow `{}`: up to {t} per run, × {tries} {}", id.name, plural(tries, "try", "tries")));
                        }
                        None => {
                            bounded = false;
                            lines.push(|| format!("workflow `{}` has no cost bound", id.name));
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
                Some(n) => lines.push(|| format!("fan-out: × {n} {}", plural(n, "item", "items"))),
                None => lines.push(|| "fan-out: no `max_items`, so no bound".to_string()),
            }
        }
        // A fallback runs once per item after every try failed.
        if let Some(fb) = Env::attr(attrs, "fallback") {
            match &fb.value.kind {
                ExprKind::Llm { role, prompt, .. } => {
                    // The runtime verifies a fallback's reply as the step's own.
                    let a = self.llm_attempt(scope, var, step, role, prompt, roles::verify_role(step), 0, false);
                    let usd = a.usd.times(1 + REPAIRS).times(n);
                    bounded &= !a.unbounded;
                    lines.push(|| format!("fallback `llm {}`: (1 + {REPAIRS} repair) × {} = {usd} (added)", role.name, a.usd));
                    exact = exact.plus(usd);
                }
                ExprKind::Call { callee, .. } if callee.len() == 1 => {
                    if let Some(id) = callee.first().filter(|id| self.env.workflows.contains_key(&id.name)) {
                        match self.workflow(&id.name) {
                            Some(t) => {
                                exact = exact.plus(t.times(n));
                                lines.push(|| format!("fallback workflow `{}`: up to {t}", id.name));
                            }
                            None => bounded = false,
                        }
                    }
                }
                _ => {}
            }
        }
        if bounded && kind == ir::StepKind::Llm {
            let attempts = bound.attempts;
            lines.push(|| {
                let items = if n == 1 { String::new() } else { format!(" × {n} items") };
                format!("step total: {attempts} attempts × {per_attempt}{items} = {exact}")
            });
        } else if bounded {
            lines.push(|| format!("step total: {exact}"));
        } else {
            lines.push(|| "step total: no bound".to_string());
        }
        bound.explanation = lines.join();
        bound.usd = exact.to_f64();
        (kind, bound, exact, bounded)
    }
}
