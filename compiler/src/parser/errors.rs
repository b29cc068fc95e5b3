//! chumsky's errors → diagnostics in the user's words.
//!
//! A raw error says "found X, expected one of {…}". We turn it into what a
//! person needs: the delimiter that is not closed (with a label on where it
//! was opened), or the one thing that was expected after the previous token
//! ("expected a type after `:`"), or a short list of what may come next.

use chumsky::error::{Rich, RichPattern, RichReason};

use crate::diagnostic::Diagnostic;
use super::grammar::{ITEM, SEP};
use super::literal::is_item_keyword;
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
        RichReason::Custom(msg) => {
            let mut parts = msg.split(SEP);
            let mut d = Diagnostic::error(SYNTAX, file, span, parts.next().unwrap_or_default());
            if let Some(label) = parts.next() {
                d = d.with_primary_label(label);
            }
            if let Some(help) = parts.next() {
                d = d.with_help(help);
            }
            d
        }
        RichReason::ExpectedFound { expected, found } => {
            let found_tok: Option<&Token<'_>> = found.as_deref();
            let found_desc = found_tok.map_or_else(|| "end of file".to_string(), Token::describe);
            let idx = tokens.partition_point(|(_, s)| s.start < span.start);
            let prev = idx.checked_sub(1).and_then(|i| tokens.get(i));
            let mut expected = describe_expected(expected);
            // At the top level only an item can come; the optional parts of
            // the previous item (`{ attrs }`, `-> T`) are noise.
            if expected.iter().any(|e| e == ITEM) {
                expected.retain(|e| e == ITEM);
            }
            // After `step` in a workflow body, `step:` (an attribute named
            // `step`) is legal but never what was meant.
            if expected.iter().any(|e| e == "a step name") {
                expected.retain(|e| e == "a step name");
            }

            // An unclosed delimiter whose closer was expected here.
            if let Some((open_tok, open_span, what)) = innermost_open(tokens, idx) {
                let closer = format!("`{}`", closer_of(&open_tok));
                let only_closer = expected.iter().all(|e| e == &closer);
                let hopeless = match found_tok {
                    None => true,
                    Some(t) => is_item_keyword(t) || is_closer(t) || prev.is_some_and(|(_, p)| on_later_line(text, *p, span)),
                };
                if expected.contains(&closer) && (only_closer || hopeless) {
                    // Point after the last token before the line break, if
                    // the unexpected token is on a later line: that is where
                    // the closer is missing.
                    let (primary, label) = match prev {
                        Some((_, p)) if found_tok.is_none() || on_later_line(text, *p, span) => {
                            (*p, format!("expected {closer} after this"))
                        }
                        _ => (span, format!("found {found_desc}")),
                    };
                    let d = Diagnostic::error(SYNTAX, file, primary, format!("expected {closer} to close the {what} opened here"))
                        .with_primary_label(label);
                    return if primary == open_span {
                        d
                    } else {
                        d.with_label(file, open_span, format!("the {what} was opened here"))
                    };
                }
            }

            // `key:` with its value missing at the end of a line: the next
            // line's key was taken as the value, and its `:` is unexpected.
            if let (Some(Token::Colon), Some(k2), Some((Token::Colon, colon)), Some((k1, _))) = (
                found_tok,
                idx.checked_sub(1).and_then(|i| tokens.get(i)),
                idx.checked_sub(2).and_then(|i| tokens.get(i)),
                idx.checked_sub(3).and_then(|i| tokens.get(i)),
            ) {
                let name_like = |t: &Token<'_>| matches!(t, Token::Ident(_)) || t.keyword().is_some();
                if name_like(&k2.0) && name_like(k1) && on_later_line(text, *colon, k2.1) {
                    return Diagnostic::error(SYNTAX, file, *colon, format!("expected a value after `{}:`", k1.text()))
                        .with_primary_label("the value is missing here");
                }
            }

            let list = join_or(&expected);
            let same_line = prev.is_some_and(|(_, p)| found_tok.is_some() && !on_later_line(text, *p, span));
            // One thing missing at the end of a line (`budget:`, `type T =`):
            // point at the line, not at what the next line starts with.
            if let ([single], Some((p, pspan))) = (expected.as_slice(), prev) {
                if !same_line && single != ITEM {
                    return Diagnostic::error(SYNTAX, file, *pspan, format!("expected {single} after `{}`", p.text()))
                        .with_primary_label(format!("expected {single} after this"));
                }
            }
            let message = match (expected.as_slice(), prev) {
                ([single], Some((p, _))) if same_line => {
                    let after = match p {
                        Token::StrEnd => "the string".to_string(),
                        p => format!("`{}`", p.text()),
                    };
                    format!("expected {single} after {after}, found {found_desc}")
                }
                _ if list.is_empty() => format!("unexpected {found_desc}"),
                _ => format!("expected {list}, found {found_desc}"),
            };
            let (primary, label) = match prev {
                Some((_, p)) if found_tok.is_none() => (*p, format!("expected {} after this", if list.is_empty() { "more" } else { &list })),
                _ => (span, if found_tok.is_none() { "the file ends here".to_string() } else { "unexpected here".to_string() }),
            };
            Diagnostic::error(SYNTAX, file, primary, message).with_primary_label(label)
        }
    }
}

/// Whether there is a line break between the previous token and `span`.
fn on_later_line(text: &str, prev: Span, span: Span) -> bool {
    text.get(prev.end as usize..span.start as usize).is_some_and(|gap| gap.contains('\n'))
}

fn is_closer(t: &Token<'_>) -> bool {
    matches!(t, Token::RParen | Token::RBracket | Token::RBrace | Token::InterpEnd)
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
    // Where an expression may come, the tokens and names that can start one
    // are part of "an expression".
    let expression = expected.iter().any(|p| matches!(p, RichPattern::Label(l) if l == "an expression"));
    for p in expected {
        if expression
            && match p {
                RichPattern::Token(t) => matches!(&**t, Token::Not | Token::Minus),
                RichPattern::Label(l) => l == "a name",
                _ => false,
            }
        {
            continue;
        }
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
            Some(Token::Colon | Token::LParen | Token::LBracket | Token::Comma | Token::Assign) => "record",
            _ => owner_of_brace(tokens, o),
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
/// lexical error on the same line, or another error at the same place: one
/// mistake, one diagnostic.
pub(crate) fn merge(diags: &mut Vec<Diagnostic>, parse: Vec<Diagnostic>, text: &str) {
    diags.truncate(MAX_ERRORS);
    let index = crate::span::LineIndex::new(text);
    let line_of = |offset: u32| index.line_col(text, offset as usize).line;
    let lex_lines: Vec<usize> = diags.iter().map(|d| line_of(d.primary.start)).collect();
    for d in parse {
        let line = line_of(d.primary.start);
        let echoes_lexer = lex_lines.contains(&line);
        let overlapping =
            diags.iter().any(|o| o.primary.start <= d.primary.end && d.primary.start <= o.primary.end);
        if !echoes_lexer && !overlapping {
            diags.push(d);
        }
    }
    diags.sort_by_key(|d| (d.primary.start, d.primary.end));
    diags.truncate(MAX_ERRORS);
}

/// What a `{` at `open` opens, from the keyword that starts its construct.
fn owner_of_brace(tokens: &[(Token<'_>, Span)], open: usize) -> &'static str {
    let mut depth = 0usize;
    for (t, _) in tokens.iter().take(open).rev() {
        match t {
            Token::RParen | Token::RBracket | Token::RBrace => depth += 1,
            Token::LParen | Token::LBracket | Token::LBrace if depth > 0 => depth -= 1,
            Token::LParen | Token::LBracket | Token::LBrace | Token::InterpStart => return "block",
            _ if depth > 0 => {}
            Token::Workflow => return "workflow body",
            Token::Step => return "step's attributes",
            Token::Model => return "model's attributes",
            Token::Tool => return "tool's attributes",
            Token::Policy => return "policy",
            Token::Enum => return "enum",
            Token::Type => return "record type",
            _ => {}
        }
    }
    "block"
}

