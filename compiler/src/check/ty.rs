//! Resolved types as the checker reasons about them, and how a type written
//! in source becomes one.

use std::fmt;

use crate::ast;
use crate::ir;

use super::env::Env;

/// A resolved type. `Unknown` stands for what an earlier diagnostic already
/// covers (or what cannot be known); it is compatible with everything, so
/// that one mistake gives one diagnostic.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    String,
    Int,
    Float,
    Bool,
    Json,
    Duration,
    Money,
    Secret,
    Null,
    List(Box<Ty>),
    Optional(Box<Ty>),
    Record(Option<String>, Vec<(String, Ty)>),
    Enum(String, Vec<String>),
    /// `cron(…)`, `event(…)`: only a workflow's `trigger:` takes one.
    Trigger,
    /// `fixed(D)`, `exponential(D)`: only a step's `backoff:` takes one.
    Backoff,
    Unknown,
}

/// The built-in type names.
pub const BUILTIN_TYPES: &[&str] = &["String", "Int", "Float", "Bool", "Json", "Duration", "Money", "Secret"];

impl Ty {
    /// `T?` of `T` (an optional stays one optional).
    pub fn optional(self) -> Ty {
        match self {
            Ty::Optional(_) | Ty::Unknown | Ty::Json | Ty::Null => self,
            t => Ty::Optional(Box::new(t)),
        }
    }

    /// `T` of `T?`.
    pub fn unwrap_optional(&self) -> &Ty {
        match self {
            Ty::Optional(t) => t,
            t => t,
        }
    }

    pub fn is_optional(&self) -> bool {
        matches!(self, Ty::Optional(_))
    }

    /// Whether a value of this type holds a secret somewhere.
    pub fn contains_secret(&self) -> bool {
        match self {
            Ty::Secret => true,
            Ty::List(t) | Ty::Optional(t) => t.contains_secret(),
            Ty::Record(_, fields) => fields.iter().any(|(_, t)| t.contains_secret()),
            _ => false,
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Float | Ty::Duration | Ty::Money | Ty::Unknown | Ty::Json)
    }

    /// The IR form (`Unknown` and the attribute-only types become `Json`).
    pub fn to_ir(&self) -> ir::Type {
        match self {
            Ty::String => ir::Type::String,
            Ty::Int => ir::Type::Int,
            Ty::Float => ir::Type::Float,
            Ty::Bool => ir::Type::Bool,
            Ty::Json | Ty::Unknown | Ty::Trigger | Ty::Backoff => ir::Type::Json,
            Ty::Duration => ir::Type::Duration,
            Ty::Money => ir::Type::Money,
            Ty::Secret => ir::Type::Secret,
            Ty::Null => ir::Type::Null,
            Ty::List(t) => ir::Type::List { item: Box::new(t.to_ir()) },
            Ty::Optional(t) => ir::Type::Optional { inner: Box::new(t.to_ir()) },
            Ty::Record(name, fields) => ir::Type::Record {
                name: name.clone(),
                fields: fields.iter().map(|(n, t)| (n.clone(), t.to_ir())).collect(),
            },
            Ty::Enum(name, variants) => ir::Type::Enum { name: name.clone(), variants: variants.clone() },
        }
    }
}

/// Whether a value of type `from` may be used where `to` is expected.
/// `Json` is compatible both ways (its shape is checked at run time);
/// a secret is never assignable to a non-secret (E0701 reports it).
pub fn assignable(from: &Ty, to: &Ty) -> bool {
    match (from, to) {
        (Ty::Unknown, _) | (_, Ty::Unknown) => true,
        (Ty::Secret, Ty::Secret) => true,
        (f, t) if f.contains_secret() && !t.contains_secret() => false,
        (_, Ty::Json) | (Ty::Json, _) => true,
        (Ty::Null, Ty::Optional(_)) => true,
        (Ty::Optional(a), Ty::Optional(b)) => assignable(a, b),
        (a, Ty::Optional(b)) => assignable(a, b),
        (Ty::Optional(_), _) => false,
        (Ty::Int, Ty::Float) => true,
        (Ty::List(a), Ty::List(b)) => assignable(a, b),
        (Ty::Record(_, fa), Ty::Record(_, fb)) => fb.iter().all(|(name, t)| match fa.iter().find(|(n, _)| n == name) {
            Some((_, ft)) => assignable(ft, t),
            None => t.is_optional(),
        }),
        (Ty::Enum(a, _), Ty::Enum(b, _)) => a == b,
        (Ty::Enum(..), Ty::String) => true,
        (a, b) => a == b,
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::String => f.write_str("String"),
            Ty::Int => f.write_str("Int"),
            Ty::Float => f.write_str("Float"),
            Ty::Bool => f.write_str("Bool"),
            Ty::Json => f.write_str("Json"),
            Ty::Duration => f.write_str("Duration"),
            Ty::Money => f.write_str("Money"),
            Ty::Secret => f.write_str("Secret"),
            Ty::Null => f.write_str("null"),
            Ty::List(t) => write!(f, "List<{t}>"),
            Ty::Optional(t) => write!(f, "{t}?"),
            Ty::Record(Some(name), _) | Ty::Enum(name, _) => f.write_str(name),
            Ty::Record(None, fields) => {
                f.write_str("{ ")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n}: {t}")?;
                }
                f.write_str(" }")
            }
            Ty::Trigger => f.write_str("a trigger"),
            Ty::Backoff => f.write_str("a backoff"),
            Ty::Unknown => f.write_str("_"),
        }
    }
}

/// The type a type expression denotes; unknown names give `Unknown` (the
/// names pass reports them).
pub fn resolve(env: &Env, ty: &ast::TypeExpr) -> Ty {
    resolve_depth(env, ty, 0)
}

/// Named types may refer to each other; past this depth a (recursive)
/// reference is taken as `Json`.
const MAX_DEPTH: usize = 16;

fn resolve_depth(env: &Env, ty: &ast::TypeExpr, depth: usize) -> Ty {
    if depth > MAX_DEPTH {
        return Ty::Json;
    }
    match &ty.kind {
        ast::TypeExprKind::Error => Ty::Unknown,
        ast::TypeExprKind::List(t) => Ty::List(Box::new(resolve_depth(env, t, depth + 1))),
        ast::TypeExprKind::Optional(t) => resolve_depth(env, t, depth + 1).optional(),
        ast::TypeExprKind::Record(fields) => {
            Ty::Record(None, fields.iter().map(|(n, t)| (n.name.clone(), resolve_depth(env, t, depth + 1))).collect())
        }
        ast::TypeExprKind::Named(id) => named(env, &id.name, depth),
    }
}

fn named(env: &Env, name: &str, depth: usize) -> Ty {
    match name {
        "String" => Ty::String,
        "Int" => Ty::Int,
        "Float" => Ty::Float,
        "Bool" => Ty::Bool,
        "Json" => Ty::Json,
        "Duration" => Ty::Duration,
        "Money" => Ty::Money,
        "Secret" => Ty::Secret,
        "List" => Ty::List(Box::new(Ty::Json)),
        _ => {
            if let Some(e) = env.enums.get(name) {
                return Ty::Enum(name.to_string(), e.decl.variants.iter().map(|v| v.name.clone()).collect());
            }
            match env.types.get(name) {
                Some(t) => match resolve_depth(env, &t.decl.ty, depth + 1) {
                    Ty::Record(_, fields) => Ty::Record(Some(name.to_string()), fields),
                    other => other,
                },
                None => Ty::Unknown,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_gradual_and_secrets_do_not_leak() {
        assert!(assignable(&Ty::String, &Ty::Json));
        assert!(assignable(&Ty::Json, &Ty::Int));
        assert!(!assignable(&Ty::Secret, &Ty::Json));
        assert!(!assignable(&Ty::Secret, &Ty::String));
        assert!(assignable(&Ty::Int, &Ty::Float));
        assert!(!assignable(&Ty::Float, &Ty::Int));
        assert!(!assignable(&Ty::String.optional(), &Ty::String));
        assert!(assignable(&Ty::String, &Ty::String.optional()));
        assert!(assignable(&Ty::Null, &Ty::Int.optional()));
    }

    #[test]
    fn records_are_structural() {
        let wide = Ty::Record(None, vec![("a".into(), Ty::Int), ("b".into(), Ty::String)]);
        let narrow = Ty::Record(Some("N".into()), vec![("a".into(), Ty::Float)]);
        assert!(assignable(&wide, &narrow));
        assert!(!assignable(&narrow, &wide));
        assert_eq!(wide.to_string(), "{ a: Int, b: String }");
        assert_eq!(Ty::List(Box::new(Ty::Int.optional())).to_string(), "List<Int?>");
    }
}
