//! The lexer (logos): source text → tokens with byte spans, plus comments.
//!
//! Ordinary tokens come from a logos automaton. Strings are scanned by hand
//! because an interpolation `{expr}` holds arbitrary tokens (strings with
//! their own braces included): a string becomes the token sequence
//! `StrStart (StrText | InterpStart TOKENS InterpEnd)* StrEnd`, so the parser
//! sees interpolated expressions as ordinary tokens whose spans point into
//! the original file. Comments never reach the parser; they are collected
//! for the formatter and for doc comments.

use std::borrow::Cow;
use std::fmt;

use logos::Logos;

use crate::ast::{Comment, CommentKind};
use crate::diagnostic::Diagnostic;
use crate::source::FileId;
use crate::span::Span;

mod scan;

pub use scan::{MAX_NESTING, MAX_STRING_NESTING};
use scan::Lx;

/// The code of every syntax error.
pub const SYNTAX: crate::codes::Code = crate::codes::Code::E0001;

/// One token. Text-carrying tokens borrow from the source; string text is
/// cooked (escapes processed, indentation removed) and borrows too unless
/// cooking changed it, so that the parser's clones of tokens stay cheap.
#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+")]
pub enum Token<'s> {
    #[token("use")]
    Use,
    #[token("workflow")]
    Workflow,
    #[token("step")]
    Step,
    #[token("tool")]
    Tool,
    #[token("model")]
    Model,
    #[token("role")]
    Role,
    #[token("type")]
    Type,
    #[token("enum")]
    Enum,
    #[token("policy")]
    Policy,
    #[token("return")]
    Return,
    #[token("for")]
    For,
    #[token("in")]
    In,
    #[token("llm")]
    Llm,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("null")]
    Null,
    #[token("and")]
    And,
    #[token("or")]
    Or,
    #[token("not")]
    Not,
    #[token("require")]
    Require,
    #[token("deny")]
    Deny,
    #[token("when")]
    When,

    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice())]
    Ident(&'s str),
    /// Digits and underscores, as written.
    #[regex(r"[0-9][0-9_]*", |lex| lex.slice(), priority = 5)]
    Int(&'s str),
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*([eE][+-]?[0-9]+)?", |lex| lex.slice(), priority = 5)]
    #[regex(r"[0-9][0-9_]*[eE][+-]?[0-9]+", |lex| lex.slice(), priority = 5)]
    Float(&'s str),
    /// An integer immediately followed by a unit: `250ms`, `2h`.
    #[regex(r"[0-9][0-9_]*(ms|s|m|h|d)", |lex| lex.slice(), priority = 5)]
    Duration(&'s str),
    /// A number or amount running into letters (`5min`, `42abc`,
    /// `$0.50step`): one bad token, reported by the lexer, so that it is not
    /// read as a number followed by a name.
    #[regex(r"[0-9][0-9_]*(\.[0-9][0-9_]*)?[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice(), priority = 1)]
    #[regex(r"\$[0-9][0-9_]*(\.[0-9]+)?[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice(), priority = 1)]
    #[regex(r"\$[0-9][0-9_]*(\.[0-9]+)?/M[A-Za-z0-9_]+", |lex| lex.slice(), priority = 1)]
    BadNumber(&'s str),
    /// `$12`, `$0.50` (with the `$`).
    #[regex(r"\$[0-9][0-9_]*(\.[0-9]+)?", |lex| lex.slice())]
    Money(&'s str),
    /// `$2.50/M` (with the `$` and the `/M`).
    #[regex(r"\$[0-9][0-9_]*(\.[0-9]+)?/M", |lex| lex.slice())]
    Price(&'s str),

    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("=")]
    Assign,
    #[token("=>")]
    FatArrow,
    #[token("->")]
    Arrow,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("??")]
    Coalesce,
    #[token("?")]
    Question,
    #[token("-")]
    Minus,

    /// Never produced for the parser: the opening quote, scanned by hand.
    #[token("\"")]
    Quote,
    /// Never produced for the parser: the opening triple quote.
    #[token("\"\"\"")]
    TripleQuote,
    /// Never produced for the parser: collected as a comment.
    #[regex(r"//[^\n]*", priority = 3, allow_greedy = true)]
    LineComment,
    /// Never produced for the parser: collected as a comment.
    #[regex(r"///([^/\n][^\n]*)?", priority = 4, allow_greedy = true)]
    DocComment,
    /// Never produced for the parser; the flag says whether it was closed.
    #[token("/*", block_comment)]
    BlockComment(bool),

    /// The start of a string literal; `true` for `"""`.
    StrStart(bool),
    /// Literal text of a string, cooked.
    StrText(Cow<'s, str>),
    /// The `{` opening an interpolation.
    InterpStart,
    /// The `}` closing an interpolation.
    InterpEnd,
    /// The closing quote(s) of a string.
    StrEnd,
}

/// Skips a (nested) block comment; says whether it was closed.
fn block_comment<'s>(lex: &mut logos::Lexer<'s, Token<'s>>) -> bool {
    let rest = lex.remainder().as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < rest.len() {
        match (rest.get(i), rest.get(i + 1)) {
            (Some(b'/'), Some(b'*')) => {
                depth += 1;
                i += 2;
            }
            (Some(b'*'), Some(b'/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    lex.bump(i);
                    return true;
                }
            }
            _ => i += 1,
        }
    }
    lex.bump(rest.len());
    false
}

impl Token<'_> {
    /// The token as a user would name it in a message: `` `)` ``, `a string`.
    pub fn describe(&self) -> String {
        match self {
            Token::Ident(s) => format!("`{s}`"),
            Token::Int(s) | Token::Float(s) | Token::BadNumber(s) => format!("the number `{s}`"),
            Token::Duration(s) => format!("the duration `{s}`"),
            Token::Money(s) | Token::Price(s) => format!("the amount `{s}`"),
            Token::StrStart(_) | Token::StrText(_) | Token::Quote | Token::TripleQuote => {
                "a string".into()
            }
            Token::InterpStart => "`{`".into(),
            Token::InterpEnd => "`}`".into(),
            Token::StrEnd => "the end of the string".into(),
            Token::LineComment | Token::DocComment | Token::BlockComment(_) => "a comment".into(),
            other => format!("`{}`", other.text()),
        }
    }

    /// The source text of a fixed token (keywords and punctuation).
    pub fn text(&self) -> &str {
        match self {
            Token::Use => "use",
            Token::Workflow => "workflow",
            Token::Step => "step",
            Token::Tool => "tool",
            Token::Model => "model",
            Token::Role => "role",
            Token::Type => "type",
            Token::Enum => "enum",
            Token::Policy => "policy",
            Token::Return => "return",
            Token::For => "for",
            Token::In => "in",
            Token::Llm => "llm",
            Token::True => "true",
            Token::False => "false",
            Token::Null => "null",
            Token::And => "and",
            Token::Or => "or",
            Token::Not => "not",
            Token::Require => "require",
            Token::Deny => "deny",
            Token::When => "when",
            Token::Ident(s)
            | Token::Int(s)
            | Token::Float(s)
            | Token::Duration(s)
            | Token::Money(s)
            | Token::Price(s)
            | Token::BadNumber(s) => s,
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::LBrace | Token::InterpStart => "{",
            Token::RBrace | Token::InterpEnd => "}",
            Token::Comma => ",",
            Token::Colon => ":",
            Token::Dot => ".",
            Token::Assign => "=",
            Token::FatArrow => "=>",
            Token::Arrow => "->",
            Token::EqEq => "==",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::Coalesce => "??",
            Token::Question => "?",
            Token::Minus => "-",
            Token::Quote | Token::StrEnd => "\"",
            Token::TripleQuote => "\"\"\"",
            Token::StrStart(triple) => {
                if *triple {
                    "\"\"\""
                } else {
                    "\""
                }
            }
            Token::StrText(s) => s.as_ref(),
            Token::LineComment => "//",
            Token::DocComment => "///",
            Token::BlockComment(_) => "/*",
        }
    }

    /// The keyword's text when this token is a keyword.
    pub fn keyword(&self) -> Option<&'static str> {
        Some(match self {
            Token::Use => "use",
            Token::Workflow => "workflow",
            Token::Step => "step",
            Token::Tool => "tool",
            Token::Model => "model",
            Token::Role => "role",
            Token::Type => "type",
            Token::Enum => "enum",
            Token::Policy => "policy",
            Token::Return => "return",
            Token::For => "for",
            Token::In => "in",
            Token::Llm => "llm",
            Token::True => "true",
            Token::False => "false",
            Token::Null => "null",
            Token::And => "and",
            Token::Or => "or",
            Token::Not => "not",
            Token::Require => "require",
            Token::Deny => "deny",
            Token::When => "when",
            _ => return None,
        })
    }
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What the lexer produces for one file.
#[derive(Debug, Default)]
pub struct Lexed<'s> {
    /// Tokens for the parser, in order, without comments.
    pub tokens: Vec<(Token<'s>, Span)>,
    /// Every comment, doc comments included, in order.
    pub comments: Vec<Comment>,
    /// Lexical errors (E0001).
    pub diagnostics: Vec<Diagnostic>,
}

/// Lexes a whole file. Never fails: bad input gives diagnostics and the
/// tokens around it are still produced.
pub fn lex(src: &str, file: FileId) -> Lexed<'_> {
    let mut lx = Lx {
        src,
        file,
        out: Lexed::default(),
        nest: 0,
        interp: 0,
        stopped: false,
    };
    lx.out.tokens.reserve(src.len() / 4);
    // A UTF-8 byte-order mark (which some Windows editors write) is not part
    // of the program.
    let start = if src.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    lx.run(start, src.len(), false);
    lx.out
}
