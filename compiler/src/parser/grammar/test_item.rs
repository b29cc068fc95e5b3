//! `test "NAME" { statements }` (docs/language.md, Tests).

use super::*;

/// A contextual word of a test block (`given`, `replies`, `expect`, …).
pub(super) fn word<'t, 's: 't, I, E>(w: &'static str) -> impl Parser<'t, I, (), Extra<E>> + Clone
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
pub(super) fn starts_test_stmt(t: &Token<'_>) -> bool {
    matches!(t, Token::Ident("given" | "approve" | "run" | "expect") | Token::Deny)
}

/// `test "NAME" { statements }` (docs/language.md, Tests).
pub(super) fn test_item<'t, 's: 't, I, E>(ex: P<'t, 's, I, Expr, E>) -> impl Parser<'t, I, ItemKind, Extra<E>> + Clone
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
    let cmp_op = compare_op();
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
