//! The parser: tokens → syntax tree, recovering from errors.
//!
//! [`parse`] lexes the file ([`crate::lexer`]) and parses the token slice
//! with the fast path ([`fast`], hand-written, for files without a syntax
//! error); when that gives up it runs the recovering chumsky grammar
//! ([`grammar`]), whose errors become diagnostics in the user's words
//! ([`errors`]). Doc comments are then attached to the items they precede.

mod errors;
mod fast;
mod grammar;
mod literal;

use chumsky::Parser as _;
use chumsky::error::Rich;
use chumsky::input::Input as _;

use crate::ast::{self, CommentKind};
use crate::diagnostic::Diagnostic;
use crate::lexer;
use crate::source::FileId;
use crate::span::Span;

/// Parses one file. Always returns a tree; syntax errors (E0001) come back
/// as diagnostics and as `Error` nodes in the tree.
pub fn parse(text: &str, file: FileId) -> (ast::File, Vec<Diagnostic>) {
    let lexed = lexer::lex(text, file);
    let mut diags = lexed.diagnostics;
    let tokens = &lexed.tokens;
    // A file without a syntax error is parsed by the fast path; it gives up
    // on anything else (and on what it cannot prove it parses as the
    // grammar does), and the grammar parses the file again to explain it.
    let mut items = match fast::file(tokens) {
        Some(items) => items,
        None => {
            let (items, parse_diags) = recovering(tokens, text, file);
            if !parse_diags.is_empty() {
                errors::merge(&mut diags, parse_diags, text);
            }
            items
        }
    };
    attach_docs(&mut items, &lexed.comments, text);
    (
        ast::File {
            items,
            comments: lexed.comments,
        },
        diags,
    )
}

/// The items of a file as the recovering grammar parses them, and its
/// syntax errors as diagnostics.
fn recovering(tokens: &[(lexer::Token<'_>, Span)], text: &str, file: FileId) -> (Vec<ast::Item>, Vec<Diagnostic>) {
    let eoi = Span::new(text.len(), text.len());
    let input = tokens.map(eoi, |(t, s)| (t, s));
    let (items, errs) = grammar::file::<_, Rich<'_, lexer::Token<'_>, Span>>().parse(input).into_output_errors();
    (items.unwrap_or_default(), errors::to_diagnostics(errs, tokens, text, file))
}

/// The two parsers side by side, for the tests that hold the fast path to
/// the grammar (feature `testkit`): the fast path's items (`None` when it
/// gives up) and the grammar's items and syntax errors, without doc
/// comments attached.
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub fn both_parsers(text: &str) -> (Option<Vec<ast::Item>>, Vec<ast::Item>, Vec<Diagnostic>) {
    let lexed = lexer::lex(text, FileId(0));
    let fast = fast::file(&lexed.tokens);
    let (items, diags) = recovering(&lexed.tokens, text, FileId(0));
    (fast, items, diags)
}

/// Sets `Item.doc` from the `///` comments right before each item (only
/// whitespace between them and the item; a `//` comment breaks the chain).
fn attach_docs(items: &mut [ast::Item], comments: &[ast::Comment], text: &str) {
    if comments.is_empty() {
        return;
    }
    for item in items.iter_mut() {
        let start = item.span.start as usize;
        // The comments that end before the item, nearest first.
        let upto = comments.partition_point(|c| (c.span.end as usize) <= start);
        let mut next_start = start;
        let mut lines: Vec<&str> = Vec::new();
        for c in comments.get(..upto).unwrap_or(&[]).iter().rev() {
            let gap = text.get(c.span.end as usize..next_start).unwrap_or("x");
            if c.kind != CommentKind::Doc || !gap.trim().is_empty() {
                break;
            }
            let body = c.text.strip_prefix("///").unwrap_or(&c.text);
            lines.push(body.strip_prefix(' ').unwrap_or(body));
            next_start = c.span.start as usize;
        }
        if !lines.is_empty() {
            lines.reverse();
            item.doc = Some(lines.join("\n"));
        }
    }
}
