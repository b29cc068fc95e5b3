//! The parser (chumsky): tokens → syntax tree, recovering from errors.
//!
//! [`parse`] lexes the file ([`crate::lexer`]), runs the grammar
//! ([`grammar`]) over the token slice, turns chumsky's errors into
//! diagnostics in the user's words ([`errors`]) and attaches doc comments to
//! the items they precede.

mod errors;
mod grammar;

use chumsky::Parser as _;
use chumsky::error::{EmptyErr, Rich};
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
    let eoi = Span::new(text.len(), text.len());
    let tokens = &lexed.tokens;
    // First with a zero-sized error type: chumsky then keeps no record of
    // the alternatives it tried, which is most of the cost of parsing a
    // valid file. The grammar takes the same decisions whatever the error
    // type, so an error-free result is the final tree; only when this pass
    // finds an error is the file parsed again with `Rich` errors to explain
    // it.
    let input = tokens.as_slice().map(eoi, |(t, s)| (t, s));
    let (fast, fast_errs) = grammar::file::<_, EmptyErr>().parse(input).into_output_errors();
    let mut items = match fast {
        Some(items) if fast_errs.is_empty() => items,
        _ => {
            let input = tokens.as_slice().map(eoi, |(t, s)| (t, s));
            let (items, errs) = grammar::file::<_, Rich<'_, lexer::Token<'_>, Span>>()
                .parse(input)
                .into_output_errors();
            let parse_diags = errors::to_diagnostics(errs, tokens, text, file);
            errors::merge(&mut diags, parse_diags, text);
            items.unwrap_or_default()
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
