//! chumsky's errors → diagnostics in the user's words.
//!
//! A raw error says "found X, expected one of {…}". We turn it into what a
//! person needs: the delimiter that is not closed (with a label on where it
//! was opened), or the one thing that was expected after the previous token
//! ("expected a type after `:`"), or a short list of what may come next.

use chumsky::error::{Rich, RichPattern, RichReason};

use crate::diagnostic::Diagnostic;
use crate::lexer::{SYNTAX, Token};
use crate::source::FileId;
use crate::span::Span;

/// More errors than this in one file are not worth reading.
const MAX_ERRORS: usize = 100;

pub(crate) fn to_diagnostics(
    errs: Vec<Rich<'_, Token<'_>, Span>>,
    tokens: &[(Token<'_>, Span)],
    text: &str,
    file: FileId,
) -> Vec<Diagnostic> {
    errs.into_iter()
        .take(MAX_ERRORS)
        .map(|e| one(&e, tokens, text, file))
        .collect()
}

fn one(
    err: &Rich<'_, Token<'_>, Span>,
    tokens: &[(Token<'_>, Span)],
    text: &str,
    file: FileId,
) -> Diagnostic {
    let span = *err.span();
    match err.reason() {
        RichReason::Custom(msg) => Diagnostic::error(SYNTAX, file, span, msg.clone()),
        RichReason::ExpectedFound { expected, found } => {
            let found_desc = found
                .as_deref()
                .map_or_else(|| "end of file".to_string(), Token::describe);
            let idx = tokens.partition_point(|(_, s)| s.start < span.start);
            let prev = idx.checked_sub(1).and_then(|i| tokens.get(i));
            // When what was found is on a later line, point just after the
            // previous token: that is where something is missing.
            let on_later_line = prev.is_some_and(|(_, p)| {
                text.get(p.end as usize..span.start as usize)
                    .is_some_and(|gap| gap.contains('\n'))
            }) || (found.is_none() && prev.is_some());
            let (primary, primary_label) = match prev {
                Some((_, p)) if on_later_line => (*p, None),
                _ => (span, Some(format!("found {found_desc}"))),
            };
            let expected = describe_expected(expected);

            // An unclosed delimiter whose closer was expected here.
            if let Some((open_tok, open_span, what)) = innermost_open(tokens, idx) {
                let closer = closer_of(&open_tok);
                if expected.iter().any(|e| e == &format!("`{closer}`")) {
                    let mut d = Diagnostic::error(
                        SYNTAX,
                        file,
                        primary,
                        format!("expected `{closer}` to close the {what} opened here"),
                    )
                    .with_label(
                        file,
                        open_span,
                        format!("the {what} was opened here"),
                    );
                    d = d.with_primary_label(
                        primary_label.unwrap_or_else(|| format!("expected `{closer}` after this")),
                    );
                    return d;
                }
            }

            let list = join_or(&expected);
            let message = match (expected.as_slice(), prev) {
                ([single], Some((p, _))) if !single.starts_with('`') => {
                    format!("expected {single} after `{}`", p.text())
                }
                _ if list.is_empty() => format!("unexpected {found_desc}"),
                _ => format!("expected {list}, found {found_desc}"),
            };
            let label = primary_label.unwrap_or_else(|| {
                format!(
                    "expected {} after this",
                    if list.is_empty() { "more" } else { &list }
                )
            });
            Diagnostic::error(SYNTAX, file, primary, message).with_primary_label(label)
        }
    }
}

/// Whether a token only continues an expression (operators, postfix), which
/// is noise in a list of what was expected.
fn is_continuation(t: &Token<'_>) -> bool {
    matches!(
        t,
        Token::Dot
            | Token::LBracket
            | Token::LParen
            | Token::EqEq
            | Token::NotEq
            | Token::Lt
            | Token::Le
            | Token::Gt
            | Token::Ge
            | Token::Coalesce
            | Token::And
            | Token::Or
            | Token::Question
    )
}

fn describe_expected(expected: &[RichPattern<'_, Token<'_>>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    let has_other = expected.iter().any(|p| match p {
        RichPattern::Token(t) => !is_continuation(t),
        RichPattern::Label(_) | RichPattern::EndOfInput | RichPattern::Identifier(_) => true,
        _ => false,
    });
    for p in expected {
        match p {
            RichPattern::Token(t) => {
                if has_other && is_continuation(t) {
                    continue;
                }
                push(format!("`{}`", t.text()));
            }
            RichPattern::Label(l) => push(l.to_string()),
            RichPattern::Identifier(i) => push(format!("`{i}`")),
            RichPattern::EndOfInput => push("end of file".into()),
            RichPattern::Any => push("more input".into()),
            _ => {}
        }
    }
    out
}

fn join_or(items: &[String]) -> String {
    const SHOWN: usize = 4;
    match items {
        [] => String::new(),
        [one] => one.clone(),
        _ if items.len() > SHOWN => {
            let head: Vec<&str> = items.iter().take(SHOWN - 1).map(String::as_str).collect();
            format!("{} or something else", head.join(", "))
        }
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn closer_of(open: &Token<'_>) -> &'static str {
    match open {
        Token::LParen => ")",
        Token::LBracket => "]",
        _ => "}",
    }
}

/// The innermost delimiter opened before token `idx` and not closed before
/// it, with a name for what it opened.
fn innermost_open<'s>(
    tokens: &[(Token<'s>, Span)],
    idx: usize,
) -> Option<(Token<'s>, Span, &'static str)> {
    let mut stack: Vec<usize> = Vec::new();
    for (i, (t, _)) in tokens.iter().enumerate().take(idx) {
        match t {
            Token::LParen | Token::LBracket | Token::LBrace | Token::InterpStart => stack.push(i),
            Token::RParen | Token::RBracket | Token::RBrace | Token::InterpEnd => {
                let matching = stack
                    .last()
                    .and_then(|&o| tokens.get(o))
                    .is_some_and(|(o, _)| {
                        matches!(
                            (o, t),
                            (Token::LParen, Token::RParen)
                                | (Token::LBracket, Token::RBracket)
                                | (Token::LBrace, Token::RBrace)
                                | (Token::InterpStart, Token::InterpEnd)
                        )
                    });
                if matching {
                    stack.pop();
                }
            }
            _ => {}
        }
    }
    let &o = stack.last()?;
    let (tok, span) = tokens.get(o)?;
    let before = o.checked_sub(1).and_then(|i| tokens.get(i)).map(|(t, _)| t);
    let before2 = o.checked_sub(2).and_then(|i| tokens.get(i)).map(|(t, _)| t);
    let what = match tok {
        Token::LParen => match (before2, before) {
            (Some(Token::Workflow), Some(Token::Ident(_))) => "parameter list",
            (_, Some(Token::Ident(_)))
                if matches!(before2, Some(Token::Dot)) && is_tool_decl(tokens, o) =>
            {
                "parameter list"
            }
            (_, Some(Token::Ident(_))) => "call",
            _ => "parentheses",
        },
        Token::LBracket => match before {
            Some(Token::Ident(_) | Token::RBracket | Token::RParen) => "index",
            _ => "list",
        },
        Token::InterpStart => "interpolation",
        _ => match before {
            Some(Token::Colon) => "record",
            _ => "block",
        },
    };
    Some((tok.clone(), *span, what))
}

/// Whether the `(` at `open` follows `tool a.b`.
fn is_tool_decl(tokens: &[(Token<'_>, Span)], open: usize) -> bool {
    let mut i = open;
    while i > 0 {
        i -= 1;
        match tokens.get(i).map(|(t, _)| t) {
            Some(Token::Ident(_) | Token::Dot) => {}
            Some(Token::Tool) => return true,
            _ => return false,
        }
    }
    false
}

/// Adds parser diagnostics to the lexer's, dropping those that only echo a
/// lexical error on the same line or another error on the same line: one
/// mistake, one diagnostic.
pub(crate) fn merge(diags: &mut Vec<Diagnostic>, parse: Vec<Diagnostic>) {
    let lex_count = diags.len();
    for d in parse {
        let same_place = diags.iter().enumerate().any(|(i, o)| {
            let overlapping = o.primary.start <= d.primary.end && d.primary.start <= o.primary.end;
            overlapping
                || (i < lex_count
                    && o.primary.end <= d.primary.start
                    && o.primary.start + 200 > d.primary.start)
        });
        if !same_place {
            diags.push(d);
        }
    }
    diags.sort_by_key(|d| (d.primary.start, d.primary.end));
}
