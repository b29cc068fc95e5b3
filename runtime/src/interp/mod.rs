//! Expression evaluation over JSON values: literals, names, field and index
//! access, lists, records, comparisons, `and or not`, `??`, interpolation,
//! the pure built-ins and secrets (resolved from the environment and
//! remembered so that every log, event and audit record can redact them).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aos_compiler::ir::{BinOp, Expr, InterpPart};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Msg(String),
}

fn err<T>(msg: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::Msg(msg.into()))
}

/// Secret values seen by a run: they are replaced by `***` wherever the
/// runtime writes text (journal, audit, events, errors), never in the
/// values the program computes with.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Arc<Mutex<Vec<String>>>,
    /// Where values come from; `None`: the environment.
    source: Option<Arc<dyn crate::secrets::SecretSource>>,
}

impl Secrets {
    /// Secrets resolved from `source` (the runtime's store, then the environment).
    pub fn from_source(source: Arc<dyn crate::secrets::SecretSource>) -> Secrets {
        Secrets { values: Arc::default(), source: Some(source) }
    }

    /// Resolves `name`, refusing a value too short to redact safely, and
    /// remembers it for redaction.
    fn resolve(&self, name: &str) -> Result<String, EvalError> {
        let found = match &self.source {
            Some(s) => s.get(name),
            None => crate::secrets::SecretSource::get(&crate::secrets::Environment, name),
        };
        match found {
            Ok(Some(v)) => {
                crate::secrets::check_length(name, &v).map_err(|e| EvalError::Msg(e.to_string()))?;
                self.remember(&v);
                Ok(v)
            }
            Ok(None) => err(format!("secret `{name}` is not set: `aosc secret set {name}` (value on stdin), or export {name}=… in the environment of the run")),
            Err(e) => err(e.to_string()),
        }
    }

    /// Remembers a credential found in an argument (a URL's password) so
    /// that it is redacted like a secret.
    pub fn remember_credential(&self, v: &str) {
        self.remember(v);
    }

    fn remember(&self, v: &str) {
        if v.is_empty() {
            return;
        }
        if let Ok(mut vals) = self.values.lock() {
            if !vals.iter().any(|x| x == v) {
                vals.push(v.to_string());
                // Longest first, so a secret containing another is hidden whole.
                vals.sort_by_key(|x| std::cmp::Reverse(x.len()));
            }
        }
    }

    /// Whether any secret has been resolved (so redaction is needed).
    pub fn any(&self) -> bool {
        self.values.lock().map(|v| !v.is_empty()).unwrap_or(false)
    }

    /// `text` with every secret value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let Ok(vals) = self.values.lock() else { return text.to_string() };
        let mut out = text.to_string();
        for v in vals.iter() {
            out = out.replace(v.as_str(), "***");
        }
        out
    }

    /// A JSON value with every secret value redacted inside its strings.
    pub fn redact_value(&self, v: &Value) -> Value {
        if !self.any() {
            return v.clone();
        }
        match v {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(items) => Value::Array(items.iter().map(|i| self.redact_value(i)).collect()),
            Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), self.redact_value(v))).collect()),
            other => other.clone(),
        }
    }
}

/// What names refer to while evaluating.
pub struct Scope<'a> {
    pub params: &'a BTreeMap<String, Value>,
    pub steps: &'a HashMap<String, Arc<Value>>,
    /// The fan-out variable and its value.
    pub var: Option<(&'a str, &'a Value)>,
    pub secrets: &'a Secrets,
}

/// Renders a value for interpolation: strings as they are, the rest as
/// compact JSON.
pub fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Evaluates `expr`.
pub fn eval(expr: &Expr, scope: &Scope<'_>) -> Result<Value, EvalError> {
    match expr {
        Expr::Lit { value } => Ok(value.clone()),
        Expr::Interp { parts } => {
            let mut out = String::new();
            for p in parts {
                match p {
                    InterpPart::Text { text } => out.push_str(text),
                    InterpPart::Expr { expr } => out.push_str(&render(&eval(expr, scope)?)),
                }
            }
            Ok(Value::String(out))
        }
        Expr::Param { name } => scope.params.get(name).cloned().map_or_else(|| err(format!("no value for parameter `{name}`")), Ok),
        Expr::Step { name } => scope.steps.get(name).map(|v| Value::clone(v)).map_or_else(|| err(format!("the value of step `{name}` is not available")), Ok),
        Expr::Var { name } => match scope.var {
            Some((n, v)) if n == name => Ok(v.clone()),
            _ => err(format!("`{name}` is not bound here")),
        },
        Expr::Field { of, field } => {
            let base = eval(of, scope)?;
            match base {
                Value::Object(m) => Ok(m.get(field).cloned().unwrap_or(Value::Null)),
                Value::Null => Ok(Value::Null),
                other => err(format!("cannot read field `{field}` of {}", type_name(&other))),
            }
        }
        Expr::Index { of, index } => {
            let base = eval(of, scope)?;
            let idx = eval(index, scope)?;
            match (&base, &idx) {
                (Value::Array(items), Value::Number(n)) => {
                    let Some(i) = n.as_i64() else { return err(format!("index {n} is not an integer")) };
                    let i = if i < 0 { items.len() as i64 + i } else { i };
                    Ok(usize::try_from(i).ok().and_then(|i| items.get(i)).cloned().unwrap_or(Value::Null))
                }
                (Value::Object(m), Value::String(k)) => Ok(m.get(k).cloned().unwrap_or(Value::Null)),
                (Value::Null, _) => Ok(Value::Null),
                _ => err(format!("cannot index {} with {}", type_name(&base), type_name(&idx))),
            }
        }
        Expr::List { items } => Ok(Value::Array(items.iter().map(|e| eval(e, scope)).collect::<Result<_, _>>()?)),
        Expr::Record { fields } => {
            let mut m = Map::new();
            for (k, e) in fields {
                m.insert(k.clone(), eval(e, scope)?);
            }
            Ok(Value::Object(m))
        }
        Expr::Not { a } => match eval(a, scope)? {
            Value::Bool(b) => Ok(Value::Bool(!b)),
            other => err(format!("`not` needs a Bool, got {}", type_name(&other))),
        },
        Expr::Neg { a } => match eval(a, scope)? {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Value::from(-i))
                } else {
                    Ok(Value::from(-n.as_f64().unwrap_or(0.0)))
                }
            }
            other => err(format!("`-` needs a number, got {}", type_name(&other))),
        },
        Expr::Binary { op, a, b } => binary(*op, a, b, scope),
        Expr::Builtin { name, args } => {
            let vals: Vec<Value> = args.iter().map(|e| eval(e, scope)).collect::<Result<_, _>>()?;
            builtin(name, &vals)
        }
        Expr::Secret { name } => scope.secrets.resolve(name).map(Value::String),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a Bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a String",
        Value::Array(_) => "a List",
        Value::Object(_) => "a record",
    }
}

fn truthy(v: &Value, op: &str) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => err(format!("`{op}` needs Bool operands, got {}", type_name(other))),
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn binary(op: BinOp, a: &Expr, b: &Expr, scope: &Scope<'_>) -> Result<Value, EvalError> {
    match op {
        BinOp::And => {
            if !truthy(&eval(a, scope)?, "and")? {
                return Ok(Value::Bool(false));
            }
            Ok(Value::Bool(truthy(&eval(b, scope)?, "and")?))
        }
        BinOp::Or => {
            if truthy(&eval(a, scope)?, "or")? {
                return Ok(Value::Bool(true));
            }
            Ok(Value::Bool(truthy(&eval(b, scope)?, "or")?))
        }
        BinOp::Coalesce => {
            // A missing (skipped) step on the left is exactly what `??` is for.
            let left = match eval(a, scope) {
                Ok(v) => v,
                Err(_) => Value::Null,
            };
            if left.is_null() { eval(b, scope) } else { Ok(left) }
        }
        BinOp::Eq => Ok(Value::Bool(values_equal(&eval(a, scope)?, &eval(b, scope)?))),
        BinOp::Ne => Ok(Value::Bool(!values_equal(&eval(a, scope)?, &eval(b, scope)?))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let (x, y) = (eval(a, scope)?, eval(b, scope)?);
            let ord = match (&x, &y) {
                (Value::Number(p), Value::Number(q)) => p.as_f64().partial_cmp(&q.as_f64()),
                (Value::String(p), Value::String(q)) => Some(p.cmp(q)),
                _ => None,
            };
            let Some(ord) = ord else {
                return err(format!("cannot compare {} with {}", type_name(&x), type_name(&y)));
            };
            use std::cmp::Ordering::*;
            Ok(Value::Bool(match op {
                BinOp::Lt => ord == Less,
                BinOp::Le => ord != Greater,
                BinOp::Gt => ord == Greater,
                _ => ord != Less,
            }))
        }
    }
}

fn builtin(name: &str, args: &[Value]) -> Result<Value, EvalError> {
    let first = args.first().unwrap_or(&Value::Null);
    let text = |v: &Value| -> Result<String, EvalError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            other => err(format!("`{name}` needs a String, got {}", type_name(other))),
        }
    };
    match name {
        "len" => Ok(Value::from(match first {
            Value::String(s) => s.chars().count(),
            Value::Array(a) => a.len(),
            Value::Object(m) => m.len(),
            Value::Null => 0,
            other => return err(format!("`len` needs a String, List or record, got {}", type_name(other))),
        } as u64)),
        "json" => Ok(Value::String(first.to_string())),
        "join" => {
            let sep = match args.get(1) {
                Some(v) => text(v)?,
                None => String::new(),
            };
            match first {
                Value::Array(items) => Ok(Value::String(items.iter().map(render).collect::<Vec<_>>().join(&sep))),
                other => err(format!("`join` needs a List, got {}", type_name(other))),
            }
        }
        "lower" => Ok(Value::String(text(first)?.to_lowercase())),
        "upper" => Ok(Value::String(text(first)?.to_uppercase())),
        "trim" => Ok(Value::String(text(first)?.trim().to_string())),
        "take" => {
            let n = match args.get(1) {
                Some(Value::Number(n)) => n.as_i64().map_or(0, |n| usize::try_from(n).unwrap_or(0)),
                Some(other) => return err(format!("`take` needs an Int count, got {}", type_name(other))),
                None => 0,
            };
            match first {
                Value::Array(items) => Ok(Value::Array(items.iter().take(n).cloned().collect())),
                Value::Null => Ok(Value::Array(Vec::new())),
                other => err(format!("`take` needs a List, got {}", type_name(other))),
            }
        }
        other => err(format!("unknown built-in `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn lit(v: Value) -> Expr {
        Expr::Lit { value: v }
    }

    #[test]
    fn interpolation_builtins_and_coalesce() {
        let params = BTreeMap::from([("name".to_string(), json!("Ada"))]);
        let steps = HashMap::from([("tags".to_string(), Arc::new(json!(["a", "b"]))), ("n".to_string(), Arc::new(Value::Null))]);
        let secrets = Secrets::default();
        let scope = Scope { params: &params, steps: &steps, var: None, secrets: &secrets };
        let e = Expr::Interp {
            parts: vec![
                InterpPart::Text { text: "hi ".into() },
                InterpPart::Expr { expr: Expr::Builtin { name: "upper".into(), args: vec![Expr::Param { name: "name".into() }] } },
                InterpPart::Text { text: ": ".into() },
                InterpPart::Expr { expr: Expr::Builtin { name: "join".into(), args: vec![Expr::Step { name: "tags".into() }, lit(json!(", "))] } },
            ],
        };
        assert_eq!(eval(&e, &scope).unwrap(), json!("hi ADA: a, b"));
        let c = Expr::Binary { op: BinOp::Coalesce, a: Box::new(Expr::Step { name: "n".into() }), b: Box::new(lit(json!(3))) };
        assert_eq!(eval(&c, &scope).unwrap(), json!(3));
        let mut need = vec![];
        c.steps_read(true, &mut need);
        assert!(need.is_empty());
    }

    #[test]
    fn secrets_are_redacted() {
        let s = Secrets::default();
        s.remember("hunter2");
        assert_eq!(s.redact("pw=hunter2"), "pw=***");
    }
}
