//! A condition as source text.

use super::*;
use super::compile::{cmp_str, fact_name};

/// A condition as source text, parenthesized only where needed.
pub fn render(cond: &Cond) -> String {
    render_at(cond, 0)
}

/// `prec`: 0 anywhere, 1 operand of `or`, 2 operand of `and`, 3 operand of
/// `not`.
pub(super) fn render_at(cond: &Cond, prec: u8) -> String {
    let (own, text) = match cond {
        Cond::True => (4, "true".to_string()),
        Cond::False => (4, "false".to_string()),
        Cond::Or { a, b } => (1, format!("{} or {}", render_at(a, 1), render_at(b, 2))),
        Cond::And { a, b } => (2, format!("{} and {}", render_at(a, 2), render_at(b, 3))),
        Cond::Not { a } => (3, format!("not {}", render_at(a, 3))),
        Cond::Compare { cmp, value } => {
            let shown = match value {
                PolicyValue::Tool(t) => format!("\"{}\"", escape(t)),
                v => v.name().to_string(),
            };
            (4, format!("{} {} {shown}", fact_name(value.fact()), cmp_str(*cmp)))
        }
    };
    if own < prec { format!("({text})") } else { text }
}

pub(super) fn escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' | '\\' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
    out
}
