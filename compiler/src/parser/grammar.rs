//! The chumsky grammar over the lexer's tokens.
//!
//! Recovery is layered so that one mistake costs as little of the tree as
//! possible: a missing type or closing delimiter is inserted, a broken
//! interpolation, step, header attribute or item is skipped up to the next
//! thing that can start one (respecting nesting), leaving an `Error` node.

use chumsky::input::ValueInput;
use chumsky::error::RichPattern;
use chumsky::prelude::*;

use crate::ast::*;
use crate::lexer::Token;
use crate::span::Span;

use super::literal::{MAX_CHAIN, is_call, is_item_keyword, is_key, is_literal, is_policy_name, is_test_word, literal_kind};

pub(crate) type Extra<E> = extra::Err<E>;

/// The error type the grammar is generic over. It is only ever [`Rich`]
/// now (valid files take the fast path, `super::fast`); the grammar stayed
/// generic from when a first pass ran it with chumsky's zero-sized
/// `EmptyErr`, and can again.
pub(crate) trait PErr<'t, 's: 't, I>:
    chumsky::error::Error<'t, I>
    + chumsky::label::LabelError<'t, I, RichPattern<'t, Token<'s>>>
    + chumsky::label::LabelError<'t, I, &'static str>
    + chumsky::label::LabelError<'t, I, chumsky::DefaultExpected<'t, Token<'s>>>
    + 't
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
{
    /// A custom error (see [`custom_error`]).
    fn custom(span: Span, text: String) -> Self;
}

impl<'t, 's: 't, I> PErr<'t, 's, I> for Rich<'t, Token<'s>, Span>
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
{
    fn custom(span: Span, text: String) -> Self {
        Rich::custom(span, text)
    }
}

/// A type-erased parser: expressions and types are built once and shared.
pub(crate) type P<'t, 's, I, O, E> = Boxed<'t, 't, I, O, Extra<E>>;

impl chumsky::span::Span for Span {
    type Context = ();
    type Offset = usize;

    fn new(_context: (), range: std::ops::Range<usize>) -> Self {
        Span::new(range.start, range.end)
    }

    fn context(&self) {}

    fn start(&self) -> usize {
        self.start as usize
    }

    fn end(&self) -> usize {
        self.end as usize
    }
}

fn opens(t: &Token<'_>) -> bool {
    matches!(
        t,
        Token::LParen | Token::LBracket | Token::LBrace | Token::InterpStart
    )
}

fn closes(t: &Token<'_>) -> bool {
    matches!(
        t,
        Token::RParen | Token::RBracket | Token::RBrace | Token::InterpEnd
    )
}

/// A closing delimiter that, when missing, is reported and taken as present
/// so that what follows still parses.
fn close<'t, 's: 't, I, E>(tok: Token<'s>) -> impl Parser<'t, I, (), Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    // Only when what follows cannot continue the construct anyway: taking a
    // closer as present before `x` in `f(a x)` would hide the real mistake.
    let hopeless = any()
        .filter(|t: &Token<'s>| {
            closes(t)
                || is_item_keyword(t)
                || matches!(t, Token::LBrace | Token::Arrow | Token::FatArrow | Token::Step | Token::Return)
        })
        .ignored()
        .or(end())
        .rewind();
    just(tok).ignored().recover_with(via_parser(hopeless))
}

/// `-> T` before a `{ … }` block: a missing type is reported as such
/// (rather than the block being read as a record type).
fn ret_type<'t, 's: 't, I, E>(t: P<'t, 's, I, TypeExpr, E>) -> impl Parser<'t, I, TypeExpr, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    let missing = any()
        .filter(|t: &Token<'s>| matches!(t, Token::LBrace) || closes(t) || (is_item_keyword(t) || is_test_word(t)))
        .ignored()
        .or(end())
        .rewind()
        .validate(|_, e, emitter| {
            let span: Span = e.span();
            emitter.emit(custom_error(span, "expected a type after `->`", "a type is missing before this", None));
            TypeExpr { kind: TypeExprKind::Error, span }
        });
    just(Token::Arrow).ignore_then(choice((
        t.clone().then_ignore(any().filter(|t: &Token<'s>| matches!(t, Token::LBrace) || (is_item_keyword(t) || is_test_word(t))).ignored().or(end()).rewind()),
        missing,
        ty_or_error(t),
    )))
}

/// A custom error carrying a primary label and an optional help, which
/// `errors` unpacks (chumsky's custom errors hold one string).
pub(crate) fn custom_error<'t, 's: 't, I, E>(span: Span, message: &str, label: &str, help: Option<&str>) -> E
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    let mut text = format!("{message}{SEP}{label}");
    if let Some(help) = help {
        text.push(SEP);
        text.push_str(help);
    }
    E::custom(span, text)
}

/// How an expected item is named in messages.
pub(crate) const ITEM: &str = "an item (`workflow`, `model`, `role`, `tool`, `type`, `enum`, `policy` or `use`)";

/// Separates message, label and help in a custom error.
pub(crate) const SEP: char = '\u{1f}';

fn ident<'t, 's: 't, I, E>() -> impl Parser<'t, I, Ident, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    select! { Token::Ident(x) => x }
        .map_with(|x: &str, e| Ident {
            name: x.to_string(),
            span: e.span(),
        })
        .labelled("an identifier")
}

/// An attribute or record key: an identifier or any keyword (`when:`).
fn key<'t, 's: 't, I, E>() -> impl Parser<'t, I, Ident, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    any()
        .filter(is_key)
        .map_with(|t: Token<'_>, e| Ident {
            name: t.text().to_string(),
            span: e.span(),
        })
        .labelled("a name")
}

/// A name inside a policy condition: keywords other than operators and
/// literals are facts and values there (`kind == llm`).
fn policy_name<'t, 's: 't, I, E>() -> impl Parser<'t, I, Ident, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    any()
        .filter(is_policy_name)
        .map_with(|t: Token<'_>, e| Ident {
            name: t.text().to_string(),
            span: e.span(),
        })
        .labelled("a name")
}

fn literal<'t, 's: 't, I, E>() -> impl Parser<'t, I, Expr, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    any().filter(is_literal).validate(|t: Token<'_>, e, emitter| {
        let span: Span = e.span();
        let kind = literal_kind(&t).unwrap_or_else(|msg| {
            emitter.emit(custom_error(span, msg, "this literal", None));
            ExprKind::Error
        });
        Expr { kind, span }
    })
}

/// A string literal; `expr` parses interpolations.
fn string<'t, 's: 't, I, E, P>(expr: P) -> impl Parser<'t, I, Expr, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
    P: Parser<'t, I, Expr, Extra<E>> + Clone + 't,
{
    let interp = expr
        .delimited_by(just(Token::InterpStart), just(Token::InterpEnd))
        .recover_with(via_parser(nested_delimiters(
            Token::InterpStart,
            Token::InterpEnd,
            [
                (Token::LParen, Token::RParen),
                (Token::LBracket, Token::RBracket),
                (Token::LBrace, Token::RBrace),
            ],
            |span| Expr {
                kind: ExprKind::Error,
                span,
            },
        )))
        .map(StrPart::Interp);
    let text = select! { Token::StrText(s) => StrPart::Text(s.into_owned()) };
    select! { Token::StrStart(triple) => triple }
        .then(text.or(interp).repeated().collect::<Vec<_>>())
        .then_ignore(just(Token::StrEnd))
        .map_with(|(triple, parts), e| Expr {
            kind: ExprKind::Str(StrLit {
                parts: merge_text(parts),
                triple,
            }),
            span: e.span(),
        })
        .labelled("a string")
}

fn merge_text(parts: Vec<StrPart>) -> Vec<StrPart> {
    let mut out: Vec<StrPart> = Vec::with_capacity(parts.len());
    for p in parts {
        match (out.last_mut(), p) {
            (Some(StrPart::Text(a)), StrPart::Text(b)) => a.push_str(&b),
            (_, p) => out.push(p),
        }
    }
    out
}

/// The CALL of a step or a `for`: an expression that must be a call, an
/// `llm` call or a `for`, not parenthesised (parentheses leave no trace in
/// the tree, so the first token is looked at here).
fn call_expr<'t, 's: 't, I, E, P>(ex: P, after: &'static str) -> impl Parser<'t, I, Expr, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
    P: Parser<'t, I, Expr, Extra<E>> + Clone + 't,
{
    any().rewind().then(ex).validate(move |(first, call): (Token<'s>, Expr), _, emitter| {
        if first == Token::LParen || !is_call(&call) {
            emitter.emit(custom_error(
                call.span,
                &format!("expected a call after `{after}`"),
                if first == Token::LParen { "parentheses make this an expression, not a call" } else { "this is not a call" },
                Some("write a tool call `ns.name(…)`, a workflow call `name(…)`, `llm ROLE(prompt)`, `agent ROLE(prompt)` or `for x in LIST => CALL`"),
            ));
        }
        call
    })
}

/// Expressions. In a policy condition (`policy == true`) keywords are names
/// and there is no `llm` or `for`.
pub(crate) fn expr<'t, 's: 't, I, E>(policy: bool) -> impl Parser<'t, I, Expr, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    recursive(move |expr| {
        let name = if policy {
            policy_name().boxed()
        } else {
            ident().boxed()
        };

        let arg = key()
            .then_ignore(just(Token::Colon))
            .or_not()
            .then(expr.clone())
            .map_with(|(name, value), e| Arg {
                name,
                value,
                span: e.span(),
            });
        let args = arg
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LParen), close(Token::RParen));

        // `a.b.c` or `a.b(args)`: a path, called when followed by `(`.
        let path = name
            .clone()
            .separated_by(just(Token::Dot))
            .at_least(1)
            .collect::<Vec<Ident>>()
            .validate(|mut path: Vec<Ident>, _, emitter| {
                limit_chain(&mut path, |i| i.span, emitter);
                path
            })
            .then(args.clone().or_not())
            .map_with(|(path, args), e| match args {
                Some(args) => Expr {
                    kind: ExprKind::Call { callee: path, args },
                    span: e.span(),
                },
                None => fold_path(path),
            });

        let list = expr
            .clone()
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBracket), close(Token::RBracket))
            .map_with(|items, e| Expr {
                kind: ExprKind::List(items),
                span: e.span(),
            });

        let record = key()
            .then_ignore(just(Token::Colon))
            .then(expr.clone())
            .then_ignore(just(Token::Comma).or_not())
            .repeated()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBrace), just(Token::RBrace))
            .map_with(|fields, e| Expr {
                kind: ExprKind::Record(fields),
                span: e.span(),
            });

        let paren = expr
            .clone()
            .delimited_by(just(Token::LParen), close(Token::RParen))
            .map_with(|inner: Expr, e| Expr {
                kind: inner.kind,
                span: e.span(),
            });

        let atom = if policy {
            choice((literal(), string(expr.clone()), list, record, paren, path)).boxed()
        } else {
            let llm = just(Token::Llm)
                .ignore_then(ident().labelled("a role name"))
                .then(
                    expr.clone()
                        .delimited_by(just(Token::LParen), close(Token::RParen)),
                )
                .map_with(|(role, prompt), e| Expr {
                    kind: ExprKind::Llm {
                        role,
                        prompt: Box::new(prompt),
                        agent: false,
                    },
                    span: e.span(),
                });
            // `agent ROLE(prompt)`: `agent` is a word, not a keyword; a role
            // name must follow it (else `agent` is an ordinary name).
            let agent = word("agent")
                .ignore_then(ident().labelled("a role name"))
                .then(
                    expr.clone()
                        .delimited_by(just(Token::LParen), close(Token::RParen)),
                )
                .map_with(|(role, prompt), e| Expr {
                    kind: ExprKind::Llm {
                        role,
                        prompt: Box::new(prompt),
                        agent: true,
                    },
                    span: e.span(),
                });
            // `=> { step … return EXPR }`: a block of steps per item.
            let block = step(expr.clone().boxed(), ty().boxed())
                .repeated()
                .collect::<Vec<Option<Step>>>()
                .then(just(Token::Return).ignore_then(expr.clone()).labelled("`return` and the item's value"))
                .delimited_by(just(Token::LBrace), close(Token::RBrace))
                .map_with(|(steps, ret), e| Expr {
                    kind: ExprKind::Block { steps: steps.into_iter().flatten().collect(), ret: Box::new(ret) },
                    span: e.span(),
                });
            let for_ = just(Token::For)
                .ignore_then(ident().labelled("a variable name"))
                .then_ignore(just(Token::In))
                .then(expr.clone())
                .then_ignore(just(Token::FatArrow))
                .then(block.or(call_expr(expr.clone(), "=>")))
                .map_with(|((var, iter), body), e| Expr {
                    kind: ExprKind::For {
                        var,
                        iter: Box::new(iter),
                        body: Box::new(body),
                    },
                    span: e.span(),
                });
            choice((
                literal(),
                string(expr.clone()),
                list,
                record,
                paren,
                llm,
                agent,
                for_,
                path,
            ))
            .boxed()
        }
        .labelled("an expression");

        enum Post {
            Field(Ident),
            Index(Expr),
        }
        let postfix = atom
            .then(
                choice((
                    just(Token::Dot).ignore_then(name.clone().labelled("a field name")).map(Post::Field),
                    expr.clone()
                        .delimited_by(just(Token::LBracket), close(Token::RBracket))
                        .map(Post::Index),
                ))
                .map_with(|p, e| (p, e.span()))
                .repeated()
                .collect::<Vec<(Post, Span)>>(),
            )
            .validate(|(base, mut posts): (Expr, Vec<(Post, Span)>), _, emitter| {
                limit_chain(&mut posts, |(_, s)| *s, emitter);
                posts.into_iter().fold(base, |base, (post, span)| {
                    let span = base.span.join(span);
                    let kind = match post {
                        Post::Field(f) => ExprKind::Field(Box::new(base), f),
                        Post::Index(i) => ExprKind::Index(Box::new(base), Box::new(i)),
                    };
                    Expr { kind, span }
                })
            });

        let neg = just(Token::Minus)
            .map_with(|_, e| -> Span { e.span() })
            .repeated()
            .collect::<Vec<Span>>()
            .then(postfix)
            .validate(|(mut ops, inner): (Vec<Span>, Expr), _, emitter| {
                limit_chain(&mut ops, |s| *s, emitter);
                ops.into_iter().rev().fold(inner, |inner, op| Expr {
                    span: op.join(inner.span),
                    kind: ExprKind::Unary(UnaryOp::Neg, Box::new(inner)),
                })
            });

        let coalesce = left_assoc(neg, Token::Coalesce, BinaryOp::Coalesce);

        let cmp_op = select! {
            Token::EqEq => BinaryOp::Eq,
            Token::NotEq => BinaryOp::Ne,
            Token::Lt => BinaryOp::Lt,
            Token::Le => BinaryOp::Le,
            Token::Gt => BinaryOp::Gt,
            Token::Ge => BinaryOp::Ge,
        }
        .map_with(|op, e| (op, e.span()));
        let compare = coalesce
            .clone()
            .then(cmp_op.then(coalesce).repeated().collect::<Vec<_>>())
            .validate(
                |(first, rest): (Expr, Vec<((BinaryOp, Span), Expr)>), _, emitter| {
                    if let Some(((op, span), _)) = rest.get(1) {
                        emitter.emit(custom_error(
                            *span,
                            &format!("comparisons cannot be chained: `{}` follows another comparison", op.as_str()),
                            "a second comparison",
                            Some("join comparisons with `and`, as in `a < b and b < c`"),
                        ));
                    }
                    rest.into_iter().fold(first, |a, ((op, _), b)| Expr {
                        span: a.span.join(b.span),
                        kind: ExprKind::Binary(op, Box::new(a), Box::new(b)),
                    })
                },
            );

        let not = just(Token::Not)
            .map_with(|_, e| -> Span { e.span() })
            .repeated()
            .collect::<Vec<Span>>()
            .then(compare)
            .validate(|(mut ops, inner): (Vec<Span>, Expr), _, emitter| {
                limit_chain(&mut ops, |s| *s, emitter);
                ops.into_iter().rev().fold(inner, |inner, op| Expr {
                    span: op.join(inner.span),
                    kind: ExprKind::Unary(UnaryOp::Not, Box::new(inner)),
                })
            });

        let and = left_assoc(not, Token::And, BinaryOp::And);
        left_assoc(and, Token::Or, BinaryOp::Or)
    })
}

/// Reports and cuts a chain longer than [`MAX_CHAIN`].
fn limit_chain<'t, 's: 't, I, E, T>(items: &mut Vec<T>, span: impl Fn(&T) -> Span, emitter: &mut chumsky::input::Emitter<E>)
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    if items.len() > MAX_CHAIN {
        if let Some(first) = items.get(MAX_CHAIN) {
            emitter.emit(custom_error(
                span(first),
                "this expression is too long",
                &format!("more than {MAX_CHAIN} operators in a row"),
                Some("compute part of it in a separate step"),
            ));
        }
        items.truncate(MAX_CHAIN);
    }
}

/// `operand (OP operand)*`, folded to the left.
fn left_assoc<'t, 's: 't, I, E, P>(operand: P, tok: Token<'s>, op: BinaryOp) -> impl Parser<'t, I, Expr, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
    P: Parser<'t, I, Expr, Extra<E>> + Clone + 't,
{
    operand
        .clone()
        .then(just(tok).ignore_then(operand).repeated().collect::<Vec<Expr>>())
        .validate(move |(first, mut rest): (Expr, Vec<Expr>), _, emitter| {
            limit_chain(&mut rest, |e| e.span, emitter);
            rest.into_iter().fold(first, |a, b| Expr {
                span: a.span.join(b.span),
                kind: ExprKind::Binary(op, Box::new(a), Box::new(b)),
            })
        })
}

fn fold_path(path: Vec<Ident>) -> Expr {
    let mut iter = path.into_iter();
    let Some(first) = iter.next() else {
        return Expr {
            kind: ExprKind::Error,
            span: Span::default(),
        };
    };
    let mut e = Expr {
        span: first.span,
        kind: ExprKind::Name(first),
    };
    for f in iter {
        e = Expr {
            span: e.span.join(f.span),
            kind: ExprKind::Field(Box::new(e), f),
        };
    }
    e
}

pub(crate) fn ty<'t, 's: 't, I, E>() -> impl Parser<'t, I, TypeExpr, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    recursive(|ty| {
        let named = ident()
            .then(
                ty.clone()
                    .delimited_by(just(Token::Lt), just(Token::Gt))
                    .or_not(),
            )
            .validate(|(name, arg): (Ident, Option<TypeExpr>), e, emitter| {
                let kind = match arg {
                    None => TypeExprKind::Named(name),
                    Some(arg) if name.name == "List" => TypeExprKind::List(Box::new(arg)),
                    Some(_) => {
                        emitter.emit(custom_error(
                            name.span,
                            &format!("`{}` takes no type argument: only `List<T>` does", name.name),
                            "not a generic type",
                            None,
                        ));
                        TypeExprKind::Error
                    }
                };
                TypeExpr {
                    kind,
                    span: e.span(),
                }
            });
        let record = ident()
            .labelled("a field name")
            .then_ignore(just(Token::Colon))
            .then(ty.clone())
            .then_ignore(just(Token::Comma).or_not())
            .repeated()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBrace), just(Token::RBrace))
            .map_with(|fields, e| TypeExpr {
                kind: TypeExprKind::Record(fields),
                span: e.span(),
            });
        named
            .or(record)
            .foldl_with(just(Token::Question).repeated().at_most(1), |inner, _, e| TypeExpr {
                kind: TypeExprKind::Optional(Box::new(inner)),
                span: e.span(),
            })
    })
    .labelled("a type")
}

/// A type that, when missing, is reported and replaced by an `Error` type so
/// that parsing goes on.
fn ty_or_error<'t, 's: 't, I, E>(
    t: P<'t, 's, I, TypeExpr, E>,
) -> impl Parser<'t, I, TypeExpr, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    t.recover_with(via_parser(empty().map_with(|_, e| TypeExpr {
        kind: TypeExprKind::Error,
        span: e.span(),
    })))
}

fn attr<'t, 's: 't, I, E>(ex: P<'t, 's, I, Expr, E>) -> impl Parser<'t, I, Attr, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    key()
        .labelled("an attribute name")
        .then_ignore(just(Token::Colon))
        .then(ex)
        .map_with(|(key, value), e| Attr {
            key,
            value,
            span: e.span(),
        })
}

fn attrs<'t, 's: 't, I, E>(ex: P<'t, 's, I, Expr, E>) -> impl Parser<'t, I, Attrs, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    attr(ex)
        .then_ignore(just(Token::Comma).or_not())
        .repeated()
        .collect::<Vec<_>>()
        .delimited_by(just(Token::LBrace), close(Token::RBrace))
        .map_with(|entries, e| Attrs {
            entries,
            span: e.span(),
        })
}

fn params<'t, 's: 't, I, E>(
    ex: P<'t, 's, I, Expr, E>,
    t: P<'t, 's, I, TypeExpr, E>,
) -> impl Parser<'t, I, Vec<Param>, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    ident()
        .labelled("a parameter name")
        .then_ignore(just(Token::Colon))
        .then(ty_or_error(t))
        .then(just(Token::Assign).ignore_then(ex).or_not())
        .map_with(|((name, ty), default), e| Param {
            name,
            ty,
            default,
            span: e.span(),
        })
        .separated_by(just(Token::Comma))
        .allow_trailing()
        .collect::<Vec<_>>()
        .delimited_by(just(Token::LParen), close(Token::RParen))
}

/// Skips a broken construct: at least one token, then up to (not
/// including) a token at nesting depth 0 for which `stop` holds, or an
/// unmatched closing delimiter.
fn skip_to<'t, 's: 't, I, E, O, F, S, G>(
    stop_at_close: bool,
    starts: G,
    stop: S,
    make: F,
) -> impl Parser<'t, I, O, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
    G: Fn(&Token<'s>, Option<&Token<'s>>) -> bool + Clone,
    S: Fn(&Token<'s>) -> bool + Clone,
    F: Fn(Option<Token<'s>>, Option<Token<'s>>, Span) -> O + Clone,
{
    custom(move |inp: &mut chumsky::input::InputRef<'t, '_, I, Extra<E>>| {
        let before = inp.cursor();
        let first = inp.next();
        let second = inp.peek();
        let first_tok = match &first {
            Some(t) if starts(t, second.as_ref()) => t.clone(),
            _ => {
                // A plain "unexpected token" error that expects nothing, so
                // that it adds nothing when merged with the real one.
                let span = inp.span_since(&before);
                let found = first.map(chumsky::util::MaybeRef::Val);
                return Err(<E as chumsky::label::LabelError<'t, I, RichPattern<'t, Token<'s>>>>::expected_found(
                    std::iter::empty(),
                    found,
                    span,
                ));
            }
        };
        let mut depth: usize = usize::from(opens(&first_tok));
        while let Some(t) = inp.peek() {
            if depth == 0 && (stop(&t) || (stop_at_close && closes(&t))) {
                break;
            }
            if opens(&t) {
                depth += 1;
            } else if closes(&t) {
                depth = depth.saturating_sub(1);
            }
            inp.skip();
        }
        let span = inp.span_since(&before);
        Ok(make(first, second, span))
    })
}

fn step<'t, 's: 't, I, E>(
    ex: P<'t, 's, I, Expr, E>,
    t: P<'t, 's, I, TypeExpr, E>,
) -> impl Parser<'t, I, Option<Step>, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    just(Token::Step)
        .ignore_then(ident().labelled("a step name"))
        .then(just(Token::Colon).ignore_then(ty_or_error(t)).or_not())
        .then_ignore(just(Token::Assign))
        .then(
            call_expr(ex.clone(), "=").labelled("a call"),
        )
        .then(attrs(ex).or_not())
        .map_with(|(((name, ty), call), attrs), e| {
            Some(Step {
                name,
                ty,
                call,
                attrs,
                span: e.span(),
            })
        })
        .recover_with(via_parser(skip_to(
            true,
            |first, _| matches!(first, Token::Step),
            |t| matches!(t, Token::Step | Token::Return) || is_item_keyword(t),
            |_, second, span| match second {
                // Keep a named step so later passes know the name exists.
                Some(Token::Ident(name)) => Some(Step {
                    name: Ident {
                        name: name.to_string(),
                        span,
                    },
                    ty: None,
                    call: Expr {
                        kind: ExprKind::Error,
                        span,
                    },
                    attrs: None,
                    span,
                }),
                _ => None,
            },
        )))
}

fn workflow<'t, 's: 't, I, E>(
    ex: P<'t, 's, I, Expr, E>,
    t: P<'t, 's, I, TypeExpr, E>,
) -> impl Parser<'t, I, ItemKind, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    let header = attr(ex.clone())
        .map(Some)
        .recover_with(via_parser(skip_to(
            true,
            |first, second| {
                !matches!(first, Token::Step | Token::Return)
                    && (matches!(first, Token::Ident(_)) || first.keyword().is_some())
                    && matches!(second, Some(Token::Colon))
            },
            |t| matches!(t, Token::Step | Token::Return | Token::Comma) || is_item_keyword(t),
            |_, _, _| None,
        )))
        .then_ignore(just(Token::Comma).or_not())
        .repeated()
        .collect::<Vec<Option<Attr>>>();
    let steps = step(ex.clone(), t.clone())
        .repeated()
        .collect::<Vec<Option<Step>>>();
    // Nothing may follow the `return`: skip it with one diagnostic.
    let after_return = skip_to(true, |first, _| !closes(first) && !is_item_keyword(first), |_| false, |_, _, span| span).validate(|span, _, emitter| {
        emitter.emit(custom_error(
            span,
            "nothing may follow the `return` of a workflow",
            "after the `return`",
            Some("a workflow body is header attributes, then steps, then an optional `return`"),
        ));
    });
    let ret = just(Token::Return)
        .ignore_then(ex.clone())
        .map_with(|e, x| (e, x.span()))
        .then_ignore(after_return.or_not())
        .or_not();
    just(Token::Workflow)
        .ignore_then(ident().labelled("a workflow name"))
        .then(params(ex, t.clone()))
        .then(ret_type(t).or_not())
        .then(
            header
                .then(steps)
                .then(ret)
                .delimited_by(just(Token::LBrace), close(Token::RBrace)),
        )
        .map(|(((name, params), ret), ((attrs, steps), ret_expr))| {
            ItemKind::Workflow(Workflow {
                name,
                params,
                ret,
                attrs: attrs.into_iter().flatten().collect(),
                steps: steps.into_iter().flatten().collect(),
                ret_expr,
            })
        })
}

/// A string literal without interpolation: its text and span.
fn plain_string<'t, 's: 't, I, E>(
    ex: P<'t, 's, I, Expr, E>,
) -> impl Parser<'t, I, (String, Span), Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    string(ex).validate(|e: Expr, _, emitter| {
        let mut text = String::new();
        if let ExprKind::Str(lit) = &e.kind {
            for p in &lit.parts {
                match p {
                    StrPart::Text(t) => text.push_str(t),
                    StrPart::Interp(i) => {
                        emitter.emit(custom_error(
                            i.span,
                            "no interpolation is allowed in this string",
                            "an interpolation",
                            Some("write the text as it is; a `{` is written `\\{`"),
                        ));
                    }
                }
            }
        }
        (text, e.span)
    })
}

fn item<'t, 's: 't, I, E>(
    ex: P<'t, 's, I, Expr, E>,
    pex: P<'t, 's, I, Expr, E>,
    t: P<'t, 's, I, TypeExpr, E>,
) -> impl Parser<'t, I, Item, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    let use_ = just(Token::Use).ignore_then(
        plain_string(ex.clone()).map(|(p, s)| Use::Path(p, s)).or(ident()
            .labelled("`std` or a path string")
            .separated_by(just(Token::Dot))
            .at_least(1)
            .collect::<Vec<_>>()
            .validate(|segs: Vec<Ident>, e, emitter| {
                let mut segs = segs.into_iter();
                match segs.next() {
                    Some(first) if first.name == "std" => {
                        let rest: Vec<Ident> = segs.collect();
                        if rest.is_empty() {
                            emitter.emit(custom_error(
                                e.span(),
                                "expected a module name after `std`",
                                "which module?",
                                Some("write for example `use std.email`"),
                            ));
                        }
                        Use::Std(rest)
                    }
                    _ => {
                        emitter.emit(custom_error(
                            e.span(),
                            "a `use` names a standard module or a file",
                            "neither `std.NAME` nor a path",
                            Some("write `use std.email` or `use \"./types.aos\"`"),
                        ));
                        Use::Std(Vec::new())
                    }
                }
            })),
    );
    let use_ = use_.map(ItemKind::Use);

    let type_ = just(Token::Type)
        .ignore_then(ident().labelled("a type name"))
        .then_ignore(just(Token::Assign))
        .then(ty_or_error(t.clone()))
        .map(|(name, ty)| ItemKind::Type(TypeDecl { name, ty }));

    let enum_ = just(Token::Enum)
        .ignore_then(ident().labelled("an enum name"))
        .then(
            ident()
                .labelled("a variant name")
                .then_ignore(just(Token::Comma).or_not())
                .repeated()
                .collect::<Vec<_>>()
                .delimited_by(just(Token::LBrace), close(Token::RBrace)),
        )
        .map(|(name, variants)| ItemKind::Enum(EnumDecl { name, variants }));

    let model = just(Token::Model)
        .ignore_then(ident().labelled("a model name"))
        .then_ignore(just(Token::Assign))
        .then(ident().labelled("a provider name"))
        .then(plain_string(ex.clone()).delimited_by(just(Token::LParen), close(Token::RParen)))
        .then(attrs(ex.clone()).or_not())
        .map(|(((name, provider), (model_id, model_id_span)), attrs)| {
            ItemKind::Model(ModelDecl {
                name,
                provider,
                model_id,
                model_id_span,
                attrs,
            })
        });

    let role = just(Token::Role)
        .ignore_then(ident().labelled("a role name"))
        .then_ignore(just(Token::Assign))
        .then(
            ident()
                .labelled("a model name")
                .separated_by(just(Token::Comma))
                .allow_trailing()
                .collect::<Vec<_>>()
                .delimited_by(just(Token::LBracket), close(Token::RBracket)),
        )
        .then(attrs(ex.clone()).or_not())
        .map(|((name, models), attrs)| ItemKind::Role(RoleDecl { name, models, attrs }));

    let tool = just(Token::Tool)
        .ignore_then(
            ident()
                .labelled("a tool name")
                .separated_by(just(Token::Dot))
                .at_least(1)
                .collect::<Vec<_>>()
                .validate(|path: Vec<Ident>, e, emitter| {
                    if path.len() < 2 {
                        emitter.emit(custom_error(
                            e.span(),
                            "a tool name has a namespace and a name",
                            "only one segment",
                            Some("write for example `tool crm.lookup(…)`"),
                        ));
                    }
                    path
                }),
        )
        .then(params(ex.clone(), t.clone()))
        .then(ret_type(t.clone()).or_not())
        .then(attrs(ex.clone()).or_not())
        .map(|(((path, params), ret), attrs)| {
            ItemKind::Tool(ToolDecl {
                path,
                params,
                ret,
                attrs,
            })
        });

    let rule = choice((
        just(Token::Require)
            .ignore_then(ident().labelled("`approval` or `verify`"))
            .map(RuleKind::Require),
        just(Token::Deny).to(RuleKind::Deny),
    ))
    .then_ignore(just(Token::When))
    .then(pex.labelled("a condition"))
    .map_with(|(kind, cond), e| Rule {
        kind,
        cond,
        span: e.span(),
    })
    .labelled("a rule (`require … when …` or `deny when …`)");
    let policy = just(Token::Policy)
        .ignore_then(ident().labelled("a policy name"))
        .then(
            rule.map(Some)
                .recover_with(via_parser(skip_to(
                    true,
                    |first, _| matches!(first, Token::Require | Token::Deny),
                    |t| matches!(t, Token::Require | Token::Deny) || is_item_keyword(t),
                    |_, _, _| None,
                )))
                .repeated()
                .collect::<Vec<_>>()
                .delimited_by(just(Token::LBrace), close(Token::RBrace)),
        )
        .map(|(name, rules)| {
            ItemKind::Policy(PolicyDecl {
                name,
                rules: rules.into_iter().flatten().collect(),
            })
        });

    choice((
        use_,
        type_,
        enum_,
        model,
        role,
        tool,
        policy,
        workflow(ex.clone(), t),
        test_item(ex),
    ))
    .labelled(ITEM)
    .map_with(|kind, e| Item {
        kind,
        doc: None,
        span: e.span(),
    })
    .recover_with(via_parser(skip_to(
        false,
        |_, _| true,
        |t| is_item_keyword(t) || is_test_word(t),
        |_, _, span| Item {
            kind: ItemKind::Error,
            doc: None,
            span,
        },
    )))
}

/// A whole file: its items.
pub(crate) fn file<'t, 's: 't, I, E>() -> impl Parser<'t, I, Vec<Item>, Extra<E>>
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    let ex = expr(false).boxed();
    let pex = expr(true).boxed();
    let t = ty().boxed();
    item(ex, pex, t)
        .repeated()
        .collect::<Vec<_>>()
        .then_ignore(end())
}

/// A contextual word of a test block (`given`, `replies`, `expect`, …).
fn word<'t, 's: 't, I, E>(w: &'static str) -> impl Parser<'t, I, (), Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    any()
        .filter(move |t: &Token<'s>| matches!(t, Token::Ident(x) if *x == w))
        .ignored()
        .labelled(w)
}

/// Tokens that start a statement of a test block.
fn starts_test_stmt(t: &Token<'_>) -> bool {
    matches!(t, Token::Ident("given" | "approve" | "run" | "expect") | Token::Deny)
}

/// `test "NAME" { statements }` (docs/language.md, Tests).
fn test_item<'t, 's: 't, I, E>(ex: P<'t, 's, I, Expr, E>) -> impl Parser<'t, I, ItemKind, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    let llm_outcome = choice((word("replies").to(Scripted::Returns), word("fails").to(Scripted::Fails), word("calls").to(Scripted::Calls)));
    let tool_outcome = choice((word("returns").to(Scripted::Returns), word("fails").to(Scripted::Fails)));
    let given = word("given").ignore_then(choice((
        just(Token::Llm)
            .ignore_then(ident().labelled("a role name"))
            .then(llm_outcome)
            .then(ex.clone())
            .validate(|((role, outcome), value): ((Ident, Scripted), Expr), _, emitter| {
                if outcome == Scripted::Calls && !matches!(value.kind, ExprKind::Call { .. } | ExprKind::Error) {
                    emitter.emit(custom_error(
                        value.span,
                        "expected a tool call after `calls`",
                        "this is not a call",
                        Some("write `given llm ROLE calls tool.name(arg: value, …)`"),
                    ));
                }
                TestStmtKind::GivenLlm { role, outcome, value }
            }),
        just(Token::Tool)
            .ignore_then(ident().labelled("a tool name").separated_by(just(Token::Dot)).at_least(1).collect::<Vec<_>>())
            .then(tool_outcome)
            .then(ex.clone())
            .map(|((tool, outcome), value)| TestStmtKind::GivenTool { tool, outcome, value }),
    )));
    let answer = word("approve")
        .to(true)
        .or(just(Token::Deny).to(false))
        .then(ident().labelled("a step name"))
        .map(|(approve, step)| TestStmtKind::Answer { approve, step });
    let run = word("run")
        .ignore_then(ex.clone())
        .validate(|call: Expr, _, emitter| {
            if !matches!(call.kind, ExprKind::Call { .. } | ExprKind::Error) {
                emitter.emit(custom_error(
                    call.span,
                    "expected a workflow call after `run`",
                    "this is not a call",
                    Some("write `run WORKFLOW(name: value, …)`"),
                ));
            }
            TestStmtKind::Run(call)
        });
    let cmp_op = select! {
        Token::EqEq => BinaryOp::Eq,
        Token::NotEq => BinaryOp::Ne,
        Token::Lt => BinaryOp::Lt,
        Token::Le => BinaryOp::Le,
        Token::Gt => BinaryOp::Gt,
        Token::Ge => BinaryOp::Ge,
    };
    let expect = word("expect")
        .ignore_then(ident().labelled("what to expect (`output`, `cost`, `ran`, …)"))
        .then(cmp_op.or_not())
        .then(ex.clone())
        .map(|((subject, op), value)| TestStmtKind::Expect { subject, op, value });
    let stmt = choice((given, answer, run, expect))
        .labelled("a test statement (`given`, `run`, `expect`, `approve` or `deny`)")
        .map_with(|kind, e| Some(TestStmt { kind, span: e.span() }))
        .recover_with(via_parser(skip_to(
            true,
            |first, _| !closes(first) && !is_item_keyword(first),
            |t| starts_test_stmt(t) || is_item_keyword(t),
            |_, _, _| None,
        )));
    word("test")
        .ignore_then(plain_string(ex))
        .then(
            stmt.repeated()
                .collect::<Vec<Option<TestStmt>>>()
                .delimited_by(just(Token::LBrace), close(Token::RBrace)),
        )
        .map(|((name, name_span), stmts)| {
            ItemKind::Test(TestDecl { name, name_span, stmts: stmts.into_iter().flatten().collect() })
        })
}
