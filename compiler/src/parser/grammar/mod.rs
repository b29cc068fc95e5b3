//! The chumsky grammar over the lexer's tokens.
//!
//! Recovery is layered so that one mistake costs as little of the tree as
//! possible: a missing type or closing delimiter is inserted, a broken
//! interpolation, step, header attribute or item is skipped up to the next
//! thing that can start one (respecting nesting), leaving an `Error` node.
//!
//! Here: the error type, delimiters, names and recovery by skipping; the
//! expressions ([`expr`]), types ([`types`]), items ([`items`]) and test
//! blocks ([`test_item`]) each in their own file.

use chumsky::input::ValueInput;
use chumsky::error::RichPattern;
use chumsky::prelude::*;

use crate::ast::*;
use crate::lexer::Token;
use crate::span::Span;

use super::literal::{MAX_CHAIN, is_call, is_item_keyword, is_key, is_literal, is_policy_name, is_test_word, literal_kind};

mod expr;
mod items;
mod test_item;
mod types;

use expr::*;
use items::*;
use test_item::*;
use types::*;

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

/// Skips a broken construct: at least one token, then up to (not
/// including) a token at nesting depth 0 for which `stop` holds, or an
/// unmatched closing delimiter.
pub(super) fn skip_to<'t, 's: 't, I, E, O, F, S, G>(
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
