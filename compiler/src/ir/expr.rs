//! Expressions the runtime evaluates.

use super::*;

/// An expression the runtime evaluates. Names are resolved to what they
/// refer to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub enum Expr {
    /// A literal value (numbers, strings without interpolation, booleans,
    /// null, durations in ms, money in USD, enum variants as strings).
    Lit { value: serde_json::Value },
    /// An interpolated string.
    Interp { parts: Vec<InterpPart> },
    /// A workflow parameter.
    Param { name: String },
    /// Another step's value.
    Step { name: String },
    /// The fan-out variable.
    Var { name: String },
    Field { of: Box<Expr>, field: String },
    Index { of: Box<Expr>, index: Box<Expr> },
    List { items: Vec<Expr> },
    Record { fields: Vec<(String, Expr)> },
    Not { a: Box<Expr> },
    Neg { a: Box<Expr> },
    Binary { op: BinOp, a: Box<Expr>, b: Box<Expr> },
    /// A pure built-in: `len`, `json`, `join`, `lower`, `upper`, `trim`.
    Builtin { name: String, args: Vec<Expr> },
    /// `secret("NAME")`: resolved by the runtime, redacted everywhere.
    Secret { name: String },
}

impl Expr {
    /// Appends the steps this expression reads, in order (with repeats).
    /// With `needed_only`, steps only on the left of `??` are left out:
    /// `??` is there to tolerate a skipped step.
    pub fn steps_read<'a>(&'a self, needed_only: bool, out: &mut Vec<&'a str>) {
        match self {
            Expr::Step { name } => out.push(name),
            Expr::Binary { op: BinOp::Coalesce, b, .. } if needed_only => b.steps_read(needed_only, out),
            Expr::Binary { a, b, .. } | Expr::Index { of: a, index: b } => {
                a.steps_read(needed_only, out);
                b.steps_read(needed_only, out);
            }
            Expr::Interp { parts } => {
                for p in parts {
                    if let InterpPart::Expr { expr } = p {
                        expr.steps_read(needed_only, out);
                    }
                }
            }
            Expr::Field { of, .. } | Expr::Not { a: of } | Expr::Neg { a: of } => of.steps_read(needed_only, out),
            Expr::List { items } | Expr::Builtin { args: items, .. } => items.iter().for_each(|e| e.steps_read(needed_only, out)),
            Expr::Record { fields } => fields.iter().for_each(|(_, e)| e.steps_read(needed_only, out)),
            Expr::Lit { .. } | Expr::Param { .. } | Expr::Var { .. } | Expr::Secret { .. } => {}
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "p", rename_all = "snake_case")]
pub enum InterpPart {
    Text { text: String },
    Expr { expr: Expr },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Coalesce,
}
