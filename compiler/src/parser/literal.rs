//! The values of literal tokens and the small facts about tokens that both
//! parsers (the recovering grammar and the fast path) decide the same way.

use crate::ast::{Duration, DurationUnit, Expr, ExprKind, Money, StrPart};
use crate::lexer::Token;

/// The longest run of operators, postfix accesses or path segments in one
/// expression: deeper trees would exhaust the stack of the passes that walk
/// them (and of dropping them).
pub(crate) const MAX_CHAIN: usize = 256;

/// Whether a token is a literal (number, duration, amount, `true`, `false`,
/// `null`, or a malformed number already reported by the lexer).
pub(crate) fn is_literal(t: &Token<'_>) -> bool {
    matches!(
        t,
        Token::Int(_)
            | Token::BadNumber(_)
            | Token::Float(_)
            | Token::Duration(_)
            | Token::Money(_)
            | Token::Price(_)
            | Token::True
            | Token::False
            | Token::Null
    )
}

/// The value of a literal token (see [`is_literal`]), or the message of the
/// syntax error it is. A malformed number becomes an `Error` node silently:
/// the lexer reported it.
pub(crate) fn literal_kind(t: &Token<'_>) -> Result<ExprKind, &'static str> {
    Ok(match t {
        Token::Int(s) => match parse_u64(s).and_then(|v| i64::try_from(v).ok()) {
            Some(v) => ExprKind::Int(v),
            None => return Err("this integer does not fit in 64 bits"),
        },
        Token::Float(s) => match s.replace('_', "").parse::<f64>() {
            Ok(v) if v.is_finite() => ExprKind::Float(v),
            _ => return Err("this number is out of range"),
        },
        Token::Duration(s) => {
            let (digits, unit) = if let Some(d) = s.strip_suffix("ms") {
                (d, DurationUnit::Ms)
            } else {
                let unit = match s.as_bytes().last() {
                    Some(b's') => DurationUnit::S,
                    Some(b'm') => DurationUnit::M,
                    Some(b'h') => DurationUnit::H,
                    _ => DurationUnit::D,
                };
                (s.get(..s.len().saturating_sub(1)).unwrap_or(""), unit)
            };
            match parse_u64(digits) {
                Some(value) => ExprKind::Duration(Duration { value, unit }),
                None => return Err("this duration is too large"),
            }
        }
        Token::Money(s) | Token::Price(s) => {
            let text = s.trim_start_matches('$').trim_end_matches("/M");
            let m = Money {
                micros: parse_money(text)?,
                text: text.to_string(),
            };
            if matches!(t, Token::Price(_)) {
                ExprKind::Price(m)
            } else {
                ExprKind::Money(m)
            }
        }
        Token::True => ExprKind::Bool(true),
        Token::False => ExprKind::Bool(false),
        Token::Null => ExprKind::Null,
        // Already reported by the lexer.
        _ => ExprKind::Error,
    })
}

fn parse_u64(digits: &str) -> Option<u64> {
    let mut v: u64 = 0;
    let mut any = false;
    for b in digits.bytes() {
        if b == b'_' {
            continue;
        }
        let d = u64::from(b.checked_sub(b'0').filter(|d| *d < 10)?);
        v = v.checked_mul(10)?.checked_add(d)?;
        any = true;
    }
    any.then_some(v)
}

/// `12`, `0.50`: micro-dollars, or why the amount is malformed.
fn parse_money(text: &str) -> Result<u64, &'static str> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if frac.len() > 6 {
        return Err("an amount has at most 6 digits after the point");
    }
    let whole = parse_u64(whole).ok_or("this amount is too large")?;
    let mut micros_frac: u64 = 0;
    for (k, b) in frac.bytes().enumerate() {
        let d = u64::from(b.wrapping_sub(b'0'));
        micros_frac += d * 10u64.pow(5 - k as u32);
    }
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(micros_frac))
        .ok_or("this amount is too large")
}

/// Adds a piece of string text to the parts of a literal, joined to the
/// text before it (the tree never holds two texts in a row).
pub(crate) fn push_text(parts: &mut Vec<StrPart>, text: &str) {
    match parts.last_mut() {
        Some(StrPart::Text(a)) => a.push_str(text),
        _ => parts.push(StrPart::Text(text.to_string())),
    }
}

/// Whether an expression may stand as the CALL of a step or a `for`.
pub(crate) fn is_call(e: &Expr) -> bool {
    matches!(
        e.kind,
        ExprKind::Call { .. } | ExprKind::Llm { .. } | ExprKind::For { .. } | ExprKind::Block { .. } | ExprKind::Error
    )
}

/// Keywords that stay operators or literals even in a policy condition.
pub(crate) fn is_policy_name(t: &Token<'_>) -> bool {
    match t {
        Token::Ident(_) => true,
        Token::And | Token::Or | Token::Not | Token::True | Token::False | Token::Null => false,
        other => other.keyword().is_some(),
    }
}

/// Tokens that start an item.
pub(crate) fn is_item_keyword(t: &Token<'_>) -> bool {
    matches!(
        t,
        Token::Use
            | Token::Type
            | Token::Enum
            | Token::Model
            | Token::Role
            | Token::Tool
            | Token::Policy
            | Token::Workflow
    )
}

/// The contextual word `test` that starts a test item (not a keyword:
/// anywhere else it is an identifier).
pub(crate) fn is_test_word(t: &Token<'_>) -> bool {
    matches!(t, Token::Ident("test"))
}

/// An attribute or record key: an identifier or any keyword (`when:`).
pub(crate) fn is_key(t: &Token<'_>) -> bool {
    matches!(t, Token::Ident(_)) || t.keyword().is_some()
}
