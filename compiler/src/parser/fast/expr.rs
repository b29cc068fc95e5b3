//! Expressions of the fast path: precedence climbing over the levels of the
//! grammar (`or` < `and` < `not` < comparison < `??` < `-` < postfix < atom),
//! with the grammar's atoms in the grammar's order.

use crate::ast::*;
use crate::lexer::Token;

use super::super::literal::{MAX_CHAIN, is_call, is_literal, is_policy_name, literal_kind, push_text};
use super::Fast;

/// The comparison a token stands for, if any.
pub(super) fn compare_op(t: Option<&Token<'_>>) -> Option<BinaryOp> {
    Some(match t? {
        Token::EqEq => BinaryOp::Eq,
        Token::NotEq => BinaryOp::Ne,
        Token::Lt => BinaryOp::Lt,
        Token::Le => BinaryOp::Le,
        Token::Gt => BinaryOp::Gt,
        Token::Ge => BinaryOp::Ge,
        _ => return None,
    })
}

fn binary(op: BinaryOp, a: Expr, b: Expr) -> Expr {
    Expr { span: a.span.join(b.span), kind: ExprKind::Binary(op, Box::new(a), Box::new(b)) }
}

impl Fast<'_, '_> {
    /// An expression; in a policy condition (`policy`) keywords are names
    /// and there is no `llm`, `agent` or `for`.
    pub(super) fn expr(&mut self, policy: bool) -> Option<Expr> {
        self.enter()?;
        let e = self.left_assoc(policy, Token::Or, BinaryOp::Or, |p, policy| {
            p.left_assoc(policy, Token::And, BinaryOp::And, Self::not)
        })?;
        self.leave();
        Some(e)
    }

    /// `operand (TOK operand)*`, folded to the left.
    fn left_assoc(
        &mut self,
        policy: bool,
        tok: Token<'static>,
        op: BinaryOp,
        operand: fn(&mut Self, bool) -> Option<Expr>,
    ) -> Option<Expr> {
        let mut a = operand(self, policy)?;
        let mut n = 0;
        while self.peek() == Some(&tok) {
            self.bump()?;
            n += 1;
            if n > MAX_CHAIN {
                return None;
            }
            let b = operand(self, policy)?;
            a = binary(op, a, b);
        }
        Some(a)
    }

    /// `not* comparison`.
    fn not(&mut self, policy: bool) -> Option<Expr> {
        let mut ops = Vec::new();
        while matches!(self.peek(), Some(Token::Not)) {
            ops.push(self.bump()?.1);
        }
        if ops.len() > MAX_CHAIN {
            return None;
        }
        let inner = self.compare(policy)?;
        Some(ops.into_iter().rev().fold(inner, |inner, op| Expr {
            span: op.join(inner.span),
            kind: ExprKind::Unary(UnaryOp::Not, Box::new(inner)),
        }))
    }

    /// `a OP b` with at most one comparison (a chain is an error).
    fn compare(&mut self, policy: bool) -> Option<Expr> {
        let a = self.left_assoc(policy, Token::Coalesce, BinaryOp::Coalesce, Self::neg)?;
        let Some(op) = compare_op(self.peek()) else {
            return Some(a);
        };
        self.bump()?;
        let b = self.left_assoc(policy, Token::Coalesce, BinaryOp::Coalesce, Self::neg)?;
        if compare_op(self.peek()).is_some() {
            return None;
        }
        Some(binary(op, a, b))
    }

    /// `-* postfix`.
    fn neg(&mut self, policy: bool) -> Option<Expr> {
        let mut ops = Vec::new();
        while matches!(self.peek(), Some(Token::Minus)) {
            ops.push(self.bump()?.1);
        }
        if ops.len() > MAX_CHAIN {
            return None;
        }
        let inner = self.postfix(policy)?;
        Some(ops.into_iter().rev().fold(inner, |inner, op| Expr {
            span: op.join(inner.span),
            kind: ExprKind::Unary(UnaryOp::Neg, Box::new(inner)),
        }))
    }

    /// `atom (.field | [index])*`.
    fn postfix(&mut self, policy: bool) -> Option<Expr> {
        let mut e = self.atom(policy)?;
        let mut n = 0;
        loop {
            let start = self.start();
            let base = e.span;
            let kind = match self.peek() {
                Some(Token::Dot) => {
                    self.bump()?;
                    let field = self.name(policy)?;
                    ExprKind::Field(Box::new(e), field)
                }
                Some(Token::LBracket) => {
                    self.bump()?;
                    let index = self.expr(policy)?;
                    self.expect(|t| matches!(t, Token::RBracket))?;
                    ExprKind::Index(Box::new(e), Box::new(index))
                }
                _ => return Some(e),
            };
            n += 1;
            if n > MAX_CHAIN {
                return None;
            }
            e = Expr { span: base.join(self.span_from(start)), kind };
        }
    }

    /// A name: an identifier, or in a policy condition also a keyword
    /// other than an operator or a literal.
    fn name(&mut self, policy: bool) -> Option<crate::ast::Ident> {
        if !policy {
            return self.ident();
        }
        let (t, span) = self.toks.get(self.pos)?;
        if !is_policy_name(t) {
            return None;
        }
        self.bump()?;
        Some(crate::ast::Ident { name: t.text().to_string(), span: *span })
    }

    fn atom(&mut self, policy: bool) -> Option<Expr> {
        let start = self.start();
        let (tok, span) = self.toks.get(self.pos)?;
        match tok {
            t if is_literal(t) => {
                let kind = literal_kind(t).ok()?;
                self.bump()?;
                Some(Expr { kind, span: *span })
            }
            Token::StrStart(_) => self.string(policy),
            Token::LBracket => {
                let items = self.separated(|t| matches!(t, Token::RBracket), |p| p.expr(policy))?;
                Some(Expr { kind: ExprKind::List(items), span: self.span_from(start) })
            }
            Token::LBrace => {
                self.bump()?;
                let mut fields = Vec::new();
                while self.at_key_colon() {
                    let key = self.key()?;
                    self.bump()?;
                    fields.push((key, self.expr(policy)?));
                    self.eat(|t| matches!(t, Token::Comma));
                }
                self.expect(|t| matches!(t, Token::RBrace))?;
                Some(Expr { kind: ExprKind::Record(fields), span: self.span_from(start) })
            }
            Token::LParen => {
                self.bump()?;
                let inner = self.expr(policy)?;
                self.expect(|t| matches!(t, Token::RParen))?;
                Some(Expr { kind: inner.kind, span: self.span_from(start) })
            }
            Token::Llm if !policy => self.llm(false),
            Token::Ident("agent")
                if !policy
                    && matches!(self.peek_at(1), Some(Token::Ident(_)))
                    && matches!(self.peek_at(2), Some(Token::LParen)) =>
            {
                self.llm(true)
            }
            Token::For if !policy => self.for_(),
            _ => self.path(policy),
        }
    }

    /// `a.b.c` (a name and its fields) or `a.b(args)` (a call).
    fn path(&mut self, policy: bool) -> Option<Expr> {
        let start = self.start();
        let first = self.name(policy)?;
        // A lone name (the most common expression) needs no path.
        if !matches!(self.peek(), Some(Token::Dot | Token::LParen)) {
            return Some(Expr { span: first.span, kind: ExprKind::Name(first) });
        }
        let mut path = vec![first];
        while matches!(self.peek(), Some(Token::Dot)) {
            self.bump()?;
            path.push(self.name(policy)?);
        }
        if path.len() > MAX_CHAIN {
            return None;
        }
        if !matches!(self.peek(), Some(Token::LParen)) {
            let mut segs = path.into_iter();
            let first = segs.next()?;
            let mut e = Expr { span: first.span, kind: ExprKind::Name(first) };
            for f in segs {
                e = Expr { span: e.span.join(f.span), kind: ExprKind::Field(Box::new(e), f) };
            }
            return Some(e);
        }
        let args = self.separated(|t| matches!(t, Token::RParen), |p| {
            let start = p.start();
            let name = if p.at_key_colon() {
                let key = p.key()?;
                p.bump()?;
                Some(key)
            } else {
                None
            };
            let value = p.expr(policy)?;
            Some(Arg { name, value, span: p.span_from(start) })
        })?;
        Some(Expr { kind: ExprKind::Call { callee: path, args }, span: self.span_from(start) })
    }

    /// `"text {expr} text"`.
    fn string(&mut self, policy: bool) -> Option<Expr> {
        let start = self.start();
        let Token::StrStart(triple) = self.bump()?.0 else { return None };
        let mut parts = Vec::new();
        loop {
            match self.peek()? {
                Token::StrText(text) => {
                    push_text(&mut parts, text);
                    self.bump()?;
                }
                Token::InterpStart => {
                    self.bump()?;
                    parts.push(StrPart::Interp(self.expr(policy)?));
                    self.expect(|t| matches!(t, Token::InterpEnd))?;
                }
                Token::StrEnd => {
                    self.bump()?;
                    break;
                }
                _ => return None,
            }
        }
        Some(Expr { kind: ExprKind::Str(StrLit { parts, triple }), span: self.span_from(start) })
    }

    /// A string without interpolation: its text and span.
    pub(super) fn plain_string(&mut self) -> Option<(String, crate::span::Span)> {
        if !matches!(self.peek(), Some(Token::StrStart(_))) {
            return None;
        }
        let e = self.string(false)?;
        let ExprKind::Str(lit) = e.kind else { return None };
        let mut text = String::new();
        for part in lit.parts {
            match part {
                StrPart::Text(t) => text.push_str(&t),
                StrPart::Interp(_) => return None,
            }
        }
        Some((text, e.span))
    }

    /// `llm ROLE(prompt)` or `agent ROLE(prompt)`.
    fn llm(&mut self, agent: bool) -> Option<Expr> {
        let start = self.start();
        self.bump()?;
        let role = self.ident()?;
        self.expect(|t| matches!(t, Token::LParen))?;
        let prompt = self.expr(false)?;
        self.expect(|t| matches!(t, Token::RParen))?;
        Some(Expr {
            kind: ExprKind::Llm { role, prompt: Box::new(prompt), agent },
            span: self.span_from(start),
        })
    }

    /// `for x in LIST => CALL` or `for x in LIST => { steps… return EXPR }`.
    fn for_(&mut self) -> Option<Expr> {
        let start = self.start();
        self.bump()?;
        let var = self.ident()?;
        self.expect(|t| matches!(t, Token::In))?;
        let iter = self.expr(false)?;
        self.expect(|t| matches!(t, Token::FatArrow))?;
        let body = if matches!(self.peek(), Some(Token::LBrace)) {
            let start = self.start();
            self.bump()?;
            let mut steps = Vec::new();
            while matches!(self.peek(), Some(Token::Step)) {
                steps.push(self.step()?);
            }
            self.expect(|t| matches!(t, Token::Return))?;
            let ret = self.expr(false)?;
            self.expect(|t| matches!(t, Token::RBrace))?;
            Expr { kind: ExprKind::Block { steps, ret: Box::new(ret) }, span: self.span_from(start) }
        } else {
            self.call_expr()?
        };
        Some(Expr {
            kind: ExprKind::For { var, iter: Box::new(iter), body: Box::new(body) },
            span: self.span_from(start),
        })
    }

    /// The CALL of a step or a `for`: a call, not parenthesised.
    pub(super) fn call_expr(&mut self) -> Option<Expr> {
        if matches!(self.peek(), Some(Token::LParen)) {
            return None;
        }
        let call = self.expr(false)?;
        is_call(&call).then_some(call)
    }
}

