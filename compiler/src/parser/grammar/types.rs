//! Types as written (`Name`, `List<T>`, `{ field: T }`, `T?`) and the
//! `-> T` of a tool or workflow.

use super::*;

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
pub(super) fn ty_or_error<'t, 's: 't, I, E>(
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


/// `-> T` before a `{ … }` block: a missing type is reported as such
/// (rather than the block being read as a record type).
pub(super) fn ret_type<'t, 's: 't, I, E>(t: P<'t, 's, I, TypeExpr, E>) -> impl Parser<'t, I, TypeExpr, Extra<E>> + Clone
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
