//! The audit log: append-only, hash-chained records of every decision
//! (policy evaluation, approval, budget check, model choice, retry,
//! fallback). Each record's `hash = sha256(prev_hash ‖ canonical row)`, so
//! a changed, removed or reordered record breaks the chain at that record;
//! the run row keeps the head and the count so that a removed last record is
//! caught too.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A decision to record; the store gives it its place in the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// `policy`, `approval`, `budget`, `model`, `retry`, `fallback`, `recovery`.
    pub kind: String,
    pub step: Option<String>,
    pub data: Value,
}

impl Decision {
    pub fn new(kind: &str, step: Option<&str>, data: Value) -> Decision {
        Decision { kind: kind.to_string(), step: step.map(str::to_string), data }
    }
}

/// A record as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub run_id: String,
    pub seq: u64,
    pub at_ms: u64,
    pub kind: String,
    pub step: Option<String>,
    pub data: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// JSON with object keys sorted and no whitespace: the same value always
/// hashes the same, whatever map order a serializer used.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(val) = map.get(*k) {
                    write_canonical(val, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The hash of a record given the previous record's hash.
pub fn hash_record(prev_hash: &str, run_id: &str, seq: u64, at_ms: u64, kind: &str, step: Option<&str>, data: &Value) -> String {
    let row = serde_json::json!({
        "run_id": run_id, "seq": seq, "at_ms": at_ms, "kind": kind, "step": step, "data": data,
    });
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical(&row).as_bytes());
    hex::encode(h.finalize())
}

/// What `aosc audit verify` found.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Intact { records: u64 },
    /// The first record that does not fit the chain, and why.
    Broken { seq: u64, reason: String },
}

/// Checks a run's records (in storage order) against the head the run row keeps.
pub fn verify(records: &[Record], head: &str, count: u64) -> Verdict {
    let mut prev = String::new();
    for (i, r) in records.iter().enumerate() {
        let expected_seq = i as u64 + 1;
        if r.seq != expected_seq {
            let later = records.iter().skip(i + 1).any(|x| x.seq == expected_seq);
            let reason = if later {
                format!("records are out of order: record {} is stored where record {expected_seq} should be", r.seq)
            } else if r.seq > expected_seq {
                format!("record {expected_seq} is missing (found record {} in its place)", r.seq)
            } else {
                format!("record {} appears out of order (expected record {expected_seq})", r.seq)
            };
            return Verdict::Broken { seq: expected_seq, reason };
        }
        if r.prev_hash != prev {
            return Verdict::Broken {
                seq: r.seq,
                reason: format!("record {} does not follow the record before it (prev_hash mismatch): a record was removed, reordered or changed", r.seq),
            };
        }
        let h = hash_record(&prev, &r.run_id, r.seq, r.at_ms, &r.kind, r.step.as_deref(), &r.data);
        if h != r.hash {
            return Verdict::Broken { seq: r.seq, reason: format!("record {} was changed (its hash does not match its content)", r.seq) };
        }
        prev = r.hash.clone();
    }
    let n = records.len() as u64;
    if n != count || prev != head {
        return Verdict::Broken {
            seq: n + 1,
            reason: format!("the run recorded {count} audit record(s) but {n} remain: record {} onwards was removed", n + 1),
        };
    }
    Verdict::Intact { records: n }
}
