//! The fast path of the parser: a hand-written recursive descent over the
//! tokens, for files without a syntax error.
//!
//! It builds the tree the recovering grammar ([`super::grammar`]) builds, or
//! gives up. At every choice it takes the alternative the grammar takes (the
//! same order, decided by the same tokens); wherever the grammar would
//! backtrack after consuming input, recover, or report an error, it returns
//! `None`, and [`super::parse`] parses the file again with the grammar, which
//! produces the diagnostics. So a tree from here is always the grammar's
//! error-free tree, and a broken file gets the grammar's diagnostics, whatever
//! this parser does with it. `compiler/tests/syntax_fast.rs` holds it to that
//! on every file of the repository and the conformance suites and on
//! generated and mutated programs.
//!
//! Why a second parser: chumsky's combinators spend most of a valid file's
//! parse trying operators that are not there (eight precedence levels, each
//! a `repeated` over one token) and cloning tokens; this parser looks at each
//! token once or twice (docs/benchmarks.md, compspeed3 session).

mod expr;

use crate::ast::*;
use crate::lexer::Token;
use crate::span::Span;

use super::literal::{is_item_keyword, is_key, is_test_word};

/// How deeply expressions and types may nest here. Deeper input is left to
/// the grammar, whose recursion grows the stack as needed.
const MAX_DEPTH: usize = 160;

/// The items of a file, or `None` when the grammar must parse it.
pub(crate) fn file(tokens: &[(Token<'_>, Span)]) -> Option<Vec<Item>> {
    let mut p = Fast { toks: tokens, pos: 0, last_end: 0, depth: 0 };
    let mut items = Vec::new();
    while let Some(t) = p.peek() {
        let start = p.start();
        let kind = match t {
            Token::Use => p.use_()?,
            Token::Type => p.type_decl()?,
            Token::Enum => p.enum_decl()?,
            Token::Model => p.model()?,
            Token::Role => p.role()?,
            Token::Tool => p.tool()?,
            Token::Policy => p.policy()?,
            Token::Workflow => p.workflow()?,
            t if is_test_word(t) => p.test_item()?,
            _ => return None,
        };
        items.push(Item { kind, doc: None, span: p.span_from(start) });
    }
    Some(items)
}

/// The parser's position in the token slice.
pub(super) struct Fast<'a, 's> {
    toks: &'a [(Token<'s>, Span)],
    pos: usize,
    /// The end of the last token taken: a node's span runs from its first
    /// token's start to here (as chumsky's spans do).
    last_end: u32,
    depth: usize,
}

impl<'a, 's> Fast<'a, 's> {
    fn peek(&self) -> Option<&'a Token<'s>> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn peek_at(&self, ahead: usize) -> Option<&'a Token<'s>> {
        self.toks.get(self.pos + ahead).map(|(t, _)| t)
    }

    /// Takes the next token.
    fn bump(&mut self) -> Option<&'a (Token<'s>, Span)> {
        let t = self.toks.get(self.pos)?;
        self.pos += 1;
        self.last_end = t.1.end;
        Some(t)
    }

    /// Takes the next token if `want` holds for it.
    fn eat(&mut self, want: impl Fn(&Token<'s>) -> bool) -> bool {
        if self.peek().is_some_and(want) {
            self.pos += 1;
            if let Some((_, s)) = self.toks.get(self.pos - 1) {
                self.last_end = s.end;
            }
            true
        } else {
            false
        }
    }

    /// Takes the next token, which must be `want`.
    fn expect(&mut self, want: impl Fn(&Token<'s>) -> bool) -> Option<()> {
        self.eat(want).then_some(())
    }

    /// Where the next node starts: the next token's start.
    fn start(&self) -> u32 {
        self.toks.get(self.pos).map_or(self.last_end, |(_, s)| s.start)
    }

    fn span_from(&self, start: u32) -> Span {
        Span::new(start as usize, self.last_end as usize)
    }

    /// One level deeper, or `None` past [`MAX_DEPTH`].
    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn ident(&mut self) -> Option<Ident> {
        match self.toks.get(self.pos) {
            Some((Token::Ident(x), span)) => {
                self.pos += 1;
                self.last_end = span.end;
                Some(Ident { name: (*x).to_string(), span: *span })
            }
            _ => None,
        }
    }

    /// An identifier or any keyword, as an attribute or record key.
    fn key(&mut self) -> Option<Ident> {
        let (t, span) = self.toks.get(self.pos)?;
        if !is_key(t) {
            return None;
        }
        self.bump();
        Some(Ident { name: t.text().to_string(), span: *span })
    }

    /// Whether `key:` comes next.
    fn at_key_colon(&self) -> bool {
        self.peek().is_some_and(is_key) && matches!(self.peek_at(1), Some(Token::Colon))
    }

    /// `a.b.c`: at least one identifier.
    fn dotted(&mut self) -> Option<Vec<Ident>> {
        let mut path = vec![self.ident()?];
        while self.eat(|t| matches!(t, Token::Dot)) {
            path.push(self.ident()?);
        }
        Some(path)
    }

    /// `open item, item, … close` with an optional trailing comma.
    fn separated<T>(
        &mut self,
        close: impl Fn(&Token<'s>) -> bool + Copy,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        self.bump()?;
        let mut out = Vec::new();
        while !self.peek().is_some_and(close) {
            out.push(item(self)?);
            if !self.eat(|t| matches!(t, Token::Comma)) {
                break;
            }
        }
        self.expect(close)?;
        Some(out)
    }

    fn use_(&mut self) -> Option<ItemKind> {
        self.bump()?;
        if matches!(self.peek(), Some(Token::StrStart(_))) {
            let (path, span) = self.plain_string()?;
            return Some(ItemKind::Use(Use::Path(path, span)));
        }
        let mut segs = self.dotted()?.into_iter();
        let first = segs.next()?;
        let rest: Vec<Ident> = segs.collect();
        (first.name == "std" && !rest.is_empty()).then_some(ItemKind::Use(Use::Std(rest)))
    }

    fn type_decl(&mut self) -> Option<ItemKind> {
        self.bump()?;
        let name = self.ident()?;
        self.expect(|t| matches!(t, Token::Assign))?;
        let ty = self.ty()?;
        Some(ItemKind::Type(TypeDecl { name, ty }))
    }

    fn enum_decl(&mut self) -> Option<ItemKind> {
        self.bump()?;
        let name = self.ident()?;
        self.expect(|t| matches!(t, Token::LBrace))?;
        let mut variants = Vec::new();
        while matches!(self.peek(), Some(Token::Ident(_))) {
            variants.push(self.ident()?);
            self.eat(|t| matches!(t, Token::Comma));
        }
        self.expect(|t| matches!(t, Token::RBrace))?;
        Some(ItemKind::Enum(EnumDecl { name, variants }))
    }

    fn model(&mut self) -> Option<ItemKind> {
        self.bump()?;
        let name = self.ident()?;
        self.expect(|t| matches!(t, Token::Assign))?;
        let provider = self.ident()?;
        self.expect(|t| matches!(t, Token::LParen))?;
        let (model_id, model_id_span) = self.plain_string()?;
        self.expect(|t| matches!(t, Token::RParen))?;
        let attrs = self.attrs_opt()?;
        Some(ItemKind::Model(ModelDecl { name, provider, model_id, model_id_span, attrs }))
    }

    fn role(&mut self) -> Option<ItemKind> {
        self.bump()?;
        let name = self.ident()?;
        self.expect(|t| matches!(t, Token::Assign))?;
        if !matches!(self.peek(), Some(Token::LBracket)) {
            return None;
        }
        let models = self.separated(|t| matches!(t, Token::RBracket), Self::ident)?;
        let attrs = self.attrs_opt()?;
        Some(ItemKind::Role(RoleDecl { name, models, attrs }))
    }

    fn tool(&mut self) -> Option<ItemKind> {
        self.bump()?;
        let path = self.dotted()?;
        if path.len() < 2 {
            return None;
        }
        let params = self.params()?;
        let ret = self.ret_type()?;
        let attrs = self.attrs_opt()?;
        Some(ItemKind::Tool(ToolDecl { path, params, ret, attrs }))
    }

    fn policy(&mut self) -> Option<ItemKind> {
        self.bump()?;
        let name = self.ident()?;
        self.expect(|t| matches!(t, Token::LBrace))?;
        let mut rules = Vec::new();
        while let Some(t @ (Token::Require | Token::Deny)) = self.peek() {
            let start = self.start();
            self.bump()?;
            let kind = match t {
                Token::Require => RuleKind::Require(self.ident()?),
                _ => RuleKind::Deny,
            };
            self.expect(|t| matches!(t, Token::When))?;
            let cond = self.expr(true)?;
            rules.push(Rule { kind, cond, span: self.span_from(start) });
        }
        self.expect(|t| matches!(t, Token::RBrace))?;
        Some(ItemKind::Policy(PolicyDecl { name, rules }))
    }

    fn workflow(&mut self) -> Option<ItemKind> {
        self.bump()?;
        let name = self.ident()?;
        let params = self.params()?;
        let ret = self.ret_type()?;
        self.expect(|t| matches!(t, Token::LBrace))?;
        let mut attrs = Vec::new();
        while self.at_key_colon() {
            attrs.push(self.attr()?);
            self.eat(|t| matches!(t, Token::Comma));
        }
        let mut steps = Vec::new();
        while matches!(self.peek(), Some(Token::Step)) {
            steps.push(self.step()?);
        }
        let ret_expr = if matches!(self.peek(), Some(Token::Return)) {
            let start = self.start();
            self.bump()?;
            let e = self.expr(false)?;
            Some((e, self.span_from(start)))
        } else {
            None
        };
        self.expect(|t| matches!(t, Token::RBrace))?;
        Some(ItemKind::Workflow(Workflow { name, params, ret, attrs, steps, ret_expr }))
    }

    /// `step NAME [: T] = CALL [{ attrs }]`.
    fn step(&mut self) -> Option<Step> {
        let start = self.start();
        self.bump()?;
        let name = self.ident()?;
        let ty = if self.eat(|t| matches!(t, Token::Colon)) { Some(self.ty()?) } else { None };
        self.expect(|t| matches!(t, Token::Assign))?;
        let call = self.call_expr()?;
        let attrs = self.attrs_opt()?;
        Some(Step { name, ty, call, attrs, span: self.span_from(start) })
    }

    fn attr(&mut self) -> Option<Attr> {
        let start = self.start();
        let key = self.key()?;
        self.expect(|t| matches!(t, Token::Colon))?;
        let value = self.expr(false)?;
        Some(Attr { key, value, span: self.span_from(start) })
    }

    /// `{ key: value, … }` when a `{` comes next.
    fn attrs_opt(&mut self) -> Option<Option<Attrs>> {
        if !matches!(self.peek(), Some(Token::LBrace)) {
            return Some(None);
        }
        let start = self.start();
        self.bump()?;
        let mut entries = Vec::new();
        while self.at_key_colon() {
            entries.push(self.attr()?);
            self.eat(|t| matches!(t, Token::Comma));
        }
        self.expect(|t| matches!(t, Token::RBrace))?;
        Some(Some(Attrs { entries, span: self.span_from(start) }))
    }

    fn params(&mut self) -> Option<Vec<Param>> {
        if !matches!(self.peek(), Some(Token::LParen)) {
            return None;
        }
        self.separated(|t| matches!(t, Token::RParen), |p| {
            let start = p.start();
            let name = p.ident()?;
            p.expect(|t| matches!(t, Token::Colon))?;
            let ty = p.ty()?;
            let default = if p.eat(|t| matches!(t, Token::Assign)) { Some(p.expr(false)?) } else { None };
            Some(Param { name, ty, default, span: p.span_from(start) })
        })
    }

    /// `-> T` when an arrow comes next; the grammar takes it only before a
    /// `{`, an item or the end of the file.
    fn ret_type(&mut self) -> Option<Option<TypeExpr>> {
        if !self.eat(|t| matches!(t, Token::Arrow)) {
            return Some(None);
        }
        let ty = self.ty()?;
        match self.peek() {
            None => Some(Some(ty)),
            Some(t) if matches!(t, Token::LBrace) || is_item_keyword(t) || is_test_word(t) => Some(Some(ty)),
            Some(_) => None,
        }
    }

    /// A type: `Name`, `List<T>`, `{ field: T, … }`, each optionally `?`.
    fn ty(&mut self) -> Option<TypeExpr> {
        self.enter()?;
        let start = self.start();
        let kind = match self.peek()? {
            Token::Ident(_) => {
                let name = self.ident()?;
                if self.eat(|t| matches!(t, Token::Lt)) {
                    let arg = self.ty()?;
                    self.expect(|t| matches!(t, Token::Gt))?;
                    if name.name != "List" {
                        return None;
                    }
                    TypeExprKind::List(Box::new(arg))
                } else {
                    TypeExprKind::Named(name)
                }
            }
            Token::LBrace => {
                self.bump()?;
                let mut fields = Vec::new();
                while matches!(self.peek(), Some(Token::Ident(_))) {
                    let field = self.ident()?;
                    self.expect(|t| matches!(t, Token::Colon))?;
                    fields.push((field, self.ty()?));
                    self.eat(|t| matches!(t, Token::Comma));
                }
                self.expect(|t| matches!(t, Token::RBrace))?;
                TypeExprKind::Record(fields)
            }
            _ => return None,
        };
        let mut ty = TypeExpr { kind, span: self.span_from(start) };
        if self.eat(|t| matches!(t, Token::Question)) {
            ty = TypeExpr { kind: TypeExprKind::Optional(Box::new(ty)), span: self.span_from(start) };
        }
        self.leave();
        Some(ty)
    }

    /// `test "NAME" { statements }`.
    fn test_item(&mut self) -> Option<ItemKind> {
        self.bump()?;
        let (name, name_span) = self.plain_string()?;
        self.expect(|t| matches!(t, Token::LBrace))?;
        let mut stmts = Vec::new();
        loop {
            let start = self.start();
            let kind = match self.peek() {
                Some(Token::Ident("given")) => self.given()?,
                Some(Token::Ident("approve") | Token::Deny) => {
                    let approve = matches!(self.bump()?.0, Token::Ident(_));
                    TestStmtKind::Answer { approve, step: self.ident()? }
                }
                Some(Token::Ident("run")) => {
                    self.bump()?;
                    let call = self.expr(false)?;
                    if !matches!(call.kind, ExprKind::Call { .. } | ExprKind::Error) {
                        return None;
                    }
                    TestStmtKind::Run(call)
                }
                Some(Token::Ident("expect")) => {
                    self.bump()?;
                    let subject = self.ident()?;
                    let op = expr::compare_op(self.peek());
                    if op.is_some() {
                        self.bump()?;
                    }
                    let value = self.expr(false)?;
                    TestStmtKind::Expect { subject, op, value }
                }
                _ => break,
            };
            stmts.push(TestStmt { kind, span: self.span_from(start) });
        }
        self.expect(|t| matches!(t, Token::RBrace))?;
        Some(ItemKind::Test(TestDecl { name, name_span, stmts }))
    }

    /// `given llm ROLE replies|fails|calls VALUE`, `given tool a.b returns|fails VALUE`.
    fn given(&mut self) -> Option<TestStmtKind> {
        self.bump()?;
        match self.bump()?.0 {
            Token::Llm => {
                let role = self.ident()?;
                let outcome = match self.peek()? {
                    Token::Ident("replies") => Scripted::Returns,
                    Token::Ident("fails") => Scripted::Fails,
                    Token::Ident("calls") => Scripted::Calls,
                    _ => return None,
                };
                self.bump()?;
                let value = self.expr(false)?;
                if outcome == Scripted::Calls && !matches!(value.kind, ExprKind::Call { .. } | ExprKind::Error) {
                    return None;
                }
                Some(TestStmtKind::GivenLlm { role, outcome, value })
            }
            Token::Tool => {
                let tool = self.dotted()?;
                let outcome = match self.peek()? {
                    Token::Ident("returns") => Scripted::Returns,
                    Token::Ident("fails") => Scripted::Fails,
                    _ => return None,
                };
                self.bump()?;
                let value = self.expr(false)?;
                Some(TestStmtKind::GivenTool { tool, outcome, value })
            }
            _ => None,
        }
    }
}
