//! Semantic tokens: the lexer's tokens, with names classified by what they
//! resolve to in the index.

use aos_compiler::lexer::{self, Token};
use aos_compiler::query::{Occurrence, SymbolKind};
use aos_compiler::Span;
use tower_lsp_server::lsp_types::{SemanticToken, SemanticTokenType, SemanticTokensLegend};

use crate::Snapshot;
use crate::position::LineMap;

/// The token types, in legend order.
pub const TYPES: &[SemanticTokenType] = &[
    SemanticTokenType::KEYWORD,
    SemanticTokenType::TYPE,
    SemanticTokenType::FUNCTION,
    SemanticTokenType::VARIABLE,
    SemanticTokenType::PROPERTY,
    SemanticTokenType::STRING,
    SemanticTokenType::NUMBER,
    SemanticTokenType::COMMENT,
    SemanticTokenType::ENUM_MEMBER,
];

const KEYWORD: u32 = 0;
const TYPE: u32 = 1;
const FUNCTION: u32 = 2;
const VARIABLE: u32 = 3;
const PROPERTY: u32 = 4;
const STRING: u32 = 5;
const NUMBER: u32 = 6;
const COMMENT: u32 = 7;
const ENUM_MEMBER: u32 = 8;

pub fn legend() -> SemanticTokensLegend {
    SemanticTokensLegend { token_types: TYPES.to_vec(), token_modifiers: Vec::new() }
}

/// A classified span of the main file: (span, token type).
pub fn classify(snap: &Snapshot) -> Vec<(Span, u32)> {
    let text = snap.main_text();
    let lexed = lexer::lex(text, snap.main());
    let occs: Vec<&Occurrence> = snap.index.occurrences.iter().filter(|o| o.file == snap.main()).collect();
    let mut next_occ = 0usize;
    let mut out: Vec<(Span, u32)> = Vec::with_capacity(lexed.tokens.len() + lexed.comments.len());
    let mut prev: Option<&Token<'_>> = None;
    for (i, (tok, span)) in lexed.tokens.iter().enumerate() {
        let kind = match tok {
            t if t.keyword().is_some() => Some(KEYWORD),
            Token::Int(_) | Token::Float(_) | Token::Duration(_) | Token::Money(_) | Token::Price(_) => Some(NUMBER),
            Token::StrStart(_) | Token::StrText(_) | Token::StrEnd | Token::Quote | Token::TripleQuote => Some(STRING),
            Token::Ident(_) => {
                while occs.get(next_occ).is_some_and(|o| o.span.end <= span.start) {
                    next_occ += 1;
                }
                let occ = occs.get(next_occ).filter(|o| o.span.start <= span.start && span.start < o.span.end);
                match occ.and_then(|o| snap.index.symbol(o.symbol)) {
                    Some(sym) => Some(match sym.kind {
                        SymbolKind::Type | SymbolKind::Enum | SymbolKind::Policy => TYPE,
                        SymbolKind::Tool | SymbolKind::Workflow => FUNCTION,
                        SymbolKind::Variant => ENUM_MEMBER,
                        SymbolKind::Param
                        | SymbolKind::Step
                        | SymbolKind::ForVar
                        | SymbolKind::Model
                        | SymbolKind::Role => VARIABLE,
                    }),
                    None => {
                        let next = lexed.tokens.get(i + 1).map(|(t, _)| t);
                        let next_is_colon = matches!(next, Some(Token::Colon));
                        // `agent ROLE(…)`: the word `agent` before a role is a keyword there.
                        if matches!(tok, Token::Ident("agent")) && matches!(next, Some(Token::Ident(_))) && !matches!(prev, Some(Token::Dot)) {
                            Some(KEYWORD)
                        } else if next_is_colon || matches!(prev, Some(Token::Dot)) {
                            Some(PROPERTY)
                        } else {
                            None
                        }
                    }
                }
            }
            _ => None,
        };
        if let Some(k) = kind {
            out.push((*span, k));
        }
        prev = Some(tok);
    }
    for c in &lexed.comments {
        out.push((c.span, COMMENT));
    }
    out.sort_by_key(|(s, _)| (s.start, s.end));
    out
}

/// The tokens of the main file, encoded relative to each other, split at
/// line ends (clients need not support multi-line tokens).
pub fn tokens(snap: &Snapshot) -> Vec<SemanticToken> {
    let text = snap.main_text();
    let map = LineMap::new(text);
    let mut out = Vec::new();
    let (mut last_line, mut last_start) = (0u32, 0u32);
    for (span, kind) in classify(snap) {
        let mut start = span.start as usize;
        let end = (span.end as usize).min(text.len());
        while start < end {
            let line_end = text.get(start..end).and_then(|s| s.find('\n')).map_or(end, |i| start + i);
            if line_end > start {
                let a = map.position(text, start);
                let b = map.position(text, line_end);
                let length = b.character.saturating_sub(a.character);
                if length > 0 {
                    let delta_line = a.line - last_line;
                    let delta_start = if delta_line == 0 { a.character - last_start } else { a.character };
                    out.push(SemanticToken {
                        delta_line,
                        delta_start,
                        length,
                        token_type: kind,
                        token_modifiers_bitset: 0,
                    });
                    last_line = a.line;
                    last_start = a.character;
                }
            }
            start = line_end + 1;
        }
    }
    out
}
