//! Values against the types the checker gave them: a run's inputs (which
//! come from the command line or an API client, never checked by the
//! compiler) and a workflow's returned value.
//!
//! The runtime representation (LANGUAGE.md): `Int` and `Duration` (ms) are
//! JSON integers, `Float` and `Money` (USD) numbers, `Secret` a string, an
//! enum one of its variants as a string, a record an object with exactly its
//! fields (an optional field may be absent or `null`), `Json` anything.

use aos_compiler::ir::Type;
use serde_json::Value;

/// Where a value differs from its type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{at}expected {expected}, found {found}")]
pub struct Mismatch {
    /// `.field[2]` inside the value, with a trailing `: `, or empty.
    pub at: String,
    pub expected: String,
    pub found: String,
}

/// A run input or a returned value that is not of its declared type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TypeError {
    #[error("input `{param}` of workflow `{workflow}` must be {expected}: {mismatch}; nothing was run")]
    Input { workflow: String, param: String, expected: String, mismatch: Box<Mismatch> },
    #[error("workflow `{workflow}` returned a value that is not its declared {expected}: {mismatch}")]
    Returned { workflow: String, expected: String, mismatch: Box<Mismatch> },
}

/// Checks `value` against `ty`.
pub fn conforms(ty: &Type, value: &Value) -> Result<(), Mismatch> {
    check(ty, value, &mut String::new())
}

/// A run input against its parameter: values given on the command line as
/// numbers or booleans (`--input code=007` stays a string, `--input n=5`
/// becomes `5`) are taken as their text where the parameter is textual.
pub fn input(
    workflow: &str,
    param: &aos_compiler::ir::Param,
    value: Value,
) -> Result<Value, TypeError> {
    let value = match (textual(&param.ty), &value) {
        (true, Value::Number(n)) => Value::String(n.to_string()),
        (true, Value::Bool(b)) => Value::String(b.to_string()),
        _ => value,
    };
    match conforms(&param.ty, &value) {
        Ok(()) => Ok(value),
        Err(mismatch) => Err(TypeError::Input {
            workflow: workflow.to_string(),
            param: param.name.clone(),
            expected: type_name(&param.ty),
            mismatch: Box::new(mismatch),
        }),
    }
}

fn textual(ty: &Type) -> bool {
    match ty {
        Type::String | Type::Secret | Type::Enum { .. } => true,
        Type::Optional { inner } => textual(inner),
        _ => false,
    }
}

/// The value a workflow returns against its declared return type.
pub fn returned(wf: &aos_compiler::ir::Workflow, value: &Value) -> Result<(), TypeError> {
    let Some(ty) = &wf.ret else { return Ok(()) };
    conforms(ty, value).map_err(|mismatch| TypeError::Returned { workflow: wf.name.clone(), expected: type_name(ty), mismatch: Box::new(mismatch) })
}

fn check(ty: &Type, v: &Value, at: &mut String) -> Result<(), Mismatch> {
    let ok = match ty {
        Type::Json => true,
        Type::String | Type::Secret => v.is_string(),
        Type::Int | Type::Duration => v.is_i64() || v.is_u64(),
        Type::Float | Type::Money => v.is_number(),
        Type::Bool => v.is_boolean(),
        Type::Null => v.is_null(),
        Type::Optional { inner } => {
            return if v.is_null() {
                Ok(())
            } else {
                check(inner, v, at)
            };
        }
        Type::Enum { variants, .. } => v.as_str().is_some_and(|s| variants.iter().any(|x| x == s)),
        Type::List { item } => {
            let Some(items) = v.as_array() else {
                return Err(mismatch(ty, v, at));
            };
            for (i, x) in items.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                check(item, x, at)?;
                at.truncate(len);
            }
            true
        }
        Type::Record { fields, .. } => {
            let Some(obj) = v.as_object() else {
                return Err(mismatch(ty, v, at));
            };
            if let Some(extra) = obj.keys().find(|k| !fields.iter().any(|(n, _)| n == *k)) {
                let len = at.len();
                at.push_str(&format!(".{extra}"));
                let e = Mismatch {
                    at: prefix(at),
                    expected: "no such field".to_string(),
                    found: "a value".to_string(),
                };
                at.truncate(len);
                return Err(e);
            }
            for (name, fty) in fields {
                let len = at.len();
                at.push_str(&format!(".{name}"));
                check(fty, obj.get(name).unwrap_or(&Value::Null), at)?;
                at.truncate(len);
            }
            true
        }
    };
    if ok { Ok(()) } else { Err(mismatch(ty, v, at)) }
}

fn prefix(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!("{}: ", at.trim_start_matches('.'))
    }
}

fn mismatch(ty: &Type, v: &Value, at: &str) -> Mismatch {
    Mismatch {
        at: prefix(at),
        expected: type_name(ty),
        found: describe(v),
    }
}

/// A type as a user writes it.
pub fn type_name(ty: &Type) -> String {
    match ty {
        Type::String => "String".into(),
        Type::Int => "Int".into(),
        Type::Float => "Float".into(),
        Type::Bool => "Bool".into(),
        Type::Json => "Json".into(),
        Type::Duration => "Duration (an integer of milliseconds)".into(),
        Type::Money => "Money (a number of USD)".into(),
        Type::Secret => "Secret".into(),
        Type::Null => "null".into(),
        Type::List { item } => format!("List<{}>", type_name(item)),
        Type::Optional { inner } => format!("{}?", type_name(inner)),
        Type::Record { name: Some(n), .. } => format!("the record {n}"),
        Type::Record { name: None, fields } => {
            let fs: Vec<String> = fields
                .iter()
                .map(|(n, t)| format!("{n}: {}", type_name(t)))
                .collect();
            format!("{{ {} }}", fs.join(", "))
        }
        Type::Enum { name, variants } => format!("{name} (one of {})", variants.join(", ")),
    }
}

/// A short description of a value (never the whole of it: it may be large
/// or hold a secret).
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer".into(),
        Value::Number(_) => "a number with a fraction".into(),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn rec() -> Type {
        Type::Record {
            name: Some("T".into()),
            fields: vec![
                ("n".into(), Type::Int),
                (
                    "tag".into(),
                    Type::Optional {
                        inner: Box::new(Type::String),
                    },
                ),
            ],
        }
    }

    #[test]
    fn scalars() {
        assert!(conforms(&Type::Int, &json!(3)).is_ok());
        assert_eq!(
            conforms(&Type::Int, &json!("hello"))
                .unwrap_err()
                .to_string(),
            "expected Int, found a string"
        );
        assert!(conforms(&Type::Int, &json!(1.5)).is_err());
        assert!(conforms(&Type::Float, &json!(1)).is_ok());
        assert!(conforms(&Type::Bool, &json!("true")).is_err());
    }

    #[test]
    fn enums_lists_records() {
        let e = Type::Enum {
            name: "Level".into(),
            variants: vec!["low".into(), "high".into()],
        };
        assert!(conforms(&e, &json!("low")).is_ok());
        assert_eq!(
            conforms(&e, &json!("banana")).unwrap_err().to_string(),
            "expected Level (one of low, high), found a string"
        );
        let l = Type::List {
            item: Box::new(rec()),
        };
        assert!(conforms(&l, &json!([{"n": 1}, {"n": 2, "tag": "x"}])).is_ok());
        assert_eq!(
            conforms(&l, &json!([{"n": 1}, {"n": "2"}]))
                .unwrap_err()
                .to_string(),
            "[1].n: expected Int, found a string"
        );
        assert_eq!(
            conforms(&rec(), &json!({"n": 1, "x": 2}))
                .unwrap_err()
                .to_string(),
            "x: expected no such field, found a value"
        );
    }
}
