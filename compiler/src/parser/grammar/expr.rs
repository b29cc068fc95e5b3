//! Expressions: literals, strings, atoms, postfix accesses and the eight
//! levels of operators (`or` < `and` < `not` < comparison < `??` < `-` <
//! postfix < atom).

use super::*;

pub(super) fn literal<'t, 's: 't, I, E>() -> impl Parser<'t, I, Expr, Extra<E>> + Clone
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
pub(super) fn string<'t, 's: 't, I, E, P>(expr: P) -> impl Parser<'t, I, Expr, Extra<E>> + Clone
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

pub(super) fn merge_text(parts: Vec<StrPart>) -> Vec<StrPart> {
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
pub(super) fn call_expr<'t, 's: 't, I, E, P>(ex: P, after: &'static str) -> impl Parser<'t, I, Expr, Extra<E>> + Clone
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

        let cmp_op = compare_op()
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
pub(super) fn limit_chain<'t, 's: 't, I, E, T>(items: &mut Vec<T>, span: impl Fn(&T) -> Span, emitter: &mut chumsky::input::Emitter<E>)
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
pub(super) fn left_assoc<'t, 's: 't, I, E, P>(operand: P, tok: Token<'s>, op: BinaryOp) -> impl Parser<'t, I, Expr, Extra<E>> + Clone
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

pub(super) fn fold_path(path: Vec<Ident>) -> Expr {
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

/// A comparison operator (`==`, `!=`, `<`, `<=`, `>`, `>=`): in expressions
/// and in a test's `expect` lines.
pub(super) fn compare_op<'t, 's: 't, I, E>() -> impl Parser<'t, I, BinaryOp, Extra<E>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = Span>,
    E: PErr<'t, 's, I>,
{
    select! {
        Token::EqEq => BinaryOp::Eq,
        Token::NotEq => BinaryOp::Ne,
        Token::Lt => BinaryOp::Lt,
        Token::Le => BinaryOp::Le,
        Token::Gt => BinaryOp::Gt,
        Token::Ge => BinaryOp::Ge,
    }
}
