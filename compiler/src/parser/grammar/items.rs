//! Items and their parts: attribute blocks, parameters, steps, workflows
//! and the other declarations.

use super::*;

pub(super) fn attr<'t, 's: 't, I, E>(ex: P<'t, 's, I, Expr, E>) -> impl Parser<'t, I, Attr, Extra<E>> + Clone
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

pub(super) fn attrs<'t, 's: 't, I, E>(ex: P<'t, 's, I, Expr, E>) -> impl Parser<'t, I, Attrs, Extra<E>> + Clone
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

pub(super) fn params<'t, 's: 't, I, E>(
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


pub(super) fn step<'t, 's: 't, I, E>(
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

pub(super) fn workflow<'t, 's: 't, I, E>(
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
pub(super) fn plain_string<'t, 's: 't, I, E>(
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

pub(super) fn item<'t, 's: 't, I, E>(
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
