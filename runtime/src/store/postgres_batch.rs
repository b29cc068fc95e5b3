//! A batch made ready for PostgreSQL: the journal rows, the audit rows with
//! their hash chain, the idempotency records and the run's new head, status
//! and cost, computed once from the run's [`RunHead`] read under its row
//! lock. The store writes it as separate statements
//! ([`super::postgres::write_batch_locked`]); a fleet worker writes it in one
//! statement together with the tasks it launches (one round trip).

use crate::audit::hash_record;
use crate::events::{RunStatus, Transition};
use crate::ids::{now_ms, rfc3339};

use super::postgres::RunHead;
use super::{Batch, StoreError, StoreResult};

/// The rows and run update of one batch.
pub(crate) struct Prepared {
    pub at: i64,
    pub kinds: Vec<String>,
    pub datas: Vec<String>,
    pub seqs: Vec<i64>,
    pub dkinds: Vec<String>,
    pub dsteps: Vec<Option<String>>,
    pub ddata: Vec<String>,
    pub prevs: Vec<String>,
    pub hashes: Vec<String>,
    pub idem_keys: Vec<String>,
    pub idem_steps: Vec<String>,
    pub idem_outputs: Vec<String>,
    pub head: String,
    pub count: i64,
    pub cost: f64,
    pub updated_at: String,
    pub status: Option<&'static str>,
    pub output: Option<String>,
    pub error: Option<String>,
}

/// Computes the rows of `batch` for `run_id` continuing from `h`.
pub(crate) fn prepare(run_id: &str, batch: &Batch, h: RunHead) -> StoreResult<Prepared> {
    let at = now_ms();
    let n = batch.decisions.len();
    let mut p = Prepared {
        at: i64::try_from(at).unwrap_or(i64::MAX),
        kinds: Vec::with_capacity(batch.transitions.len()),
        datas: Vec::with_capacity(batch.transitions.len()),
        seqs: Vec::with_capacity(n),
        dkinds: Vec::with_capacity(n),
        dsteps: Vec::with_capacity(n),
        ddata: Vec::with_capacity(n),
        prevs: Vec::with_capacity(n),
        hashes: Vec::with_capacity(n),
        idem_keys: Vec::new(),
        idem_steps: Vec::new(),
        idem_outputs: Vec::new(),
        head: h.audit_head,
        count: h.audit_count,
        cost: h.cost_usd,
        updated_at: rfc3339(at),
        status: None,
        output: None,
        error: None,
    };
    for t in &batch.transitions {
        p.kinds.push(t.kind().to_string());
        p.datas.push(serde_json::to_string(t).map_err(|e| StoreError::Db(e.to_string()))?);
        p.cost += t.spent();
        if let Some(s) = RunStatus::after(t) {
            p.status = Some(s.as_str());
        }
        match t {
            Transition::RunSucceeded { output: o, .. } => p.output = Some(o.to_string()),
            Transition::RunFailed { error: e, .. } => p.error = Some(e.clone()),
            Transition::RunInterrupted => p.error = Some("interrupted".into()),
            _ => {}
        }
    }
    for d in &batch.decisions {
        p.count += 1;
        let seq = u64::try_from(p.count).unwrap_or(0);
        let hash = hash_record(&p.head, run_id, seq, at, &d.kind, d.step.as_deref(), &d.data);
        p.seqs.push(p.count);
        p.dkinds.push(d.kind.clone());
        p.dsteps.push(d.step.clone());
        p.ddata.push(d.data.to_string());
        p.prevs.push(std::mem::replace(&mut p.head, hash.clone()));
        p.hashes.push(hash);
    }
    for (key, step, out) in &batch.idempotency {
        p.idem_keys.push(key.clone());
        p.idem_steps.push(step.clone());
        p.idem_outputs.push(out.to_string());
    }
    Ok(p)
}
