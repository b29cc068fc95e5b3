//! The worker's side of parked attempts ([`crate::store::fleet::Parked`]):
//! workflow calls whose sub-run paused at an approval gate.
//!
//! The embedded driver keeps such an attempt in flight in the journal and
//! pauses the run; `aosc resume` runs the attempt again, which continues the
//! sub-run past its decided gate. A fleet run does the same across workers:
//! the paused attempt's task row stays, parked, so that every worker that
//! advances the run sees the paused units (and the run pauses when nothing
//! else runs, with the same reasons whoever commits), and when an approval
//! or denial wakes the run, the worker that takes the wake-up runs again
//! each parked attempt whose sub-run no longer waits at a gate: journaled as
//! a resume journals it (`step.interrupted`, then `step.started`).

use crate::driver::workflow::sub_run_id;
use crate::core::{self, AttemptOutcome, AttemptResult, RunState, Tick};
use crate::store::fleet::{FleetTx, Parked, TaskKey};
use crate::store::StoreResult;

/// The parked row for a result whose sub-run paused, `None` for any other.
pub(super) fn parked_of(state: &RunState, key: TaskKey, r: &AttemptResult) -> Option<Parked> {
    let AttemptOutcome::Paused(why) = &r.outcome else { return None };
    let (i, item) = super::unit_of(key);
    let step = state.step(i)?;
    Some(Parked { step: key.0, item: key.1, attempt: r.attempt, sub_run: sub_run_id(&state.ctx.run_id, &step.name, item), reason: why.clone() })
}

/// Marks the attempts other workers parked as paused in this worker's
/// state of the run (the journal shows them in flight).
pub(super) fn apply_parked(state: &mut RunState, parked: &[Parked]) {
    for p in parked {
        let (i, item) = super::unit_of((p.step, p.item));
        core::park(state, i, item, p.attempt, p.reason.clone());
    }
}

/// Parks the attempts that paused now, and runs again those (paused now,
/// or parked before when `waking`) whose sub-run has no undecided gate left:
/// a decision may have been journaled while the attempt was paused.
/// Returns whether any attempt runs again.
pub(super) async fn settle_parked(tx: &mut FleetTx, state: &mut RunState, tick: &mut Tick, paused: Vec<Parked>, waking: Vec<Parked>) -> StoreResult<bool> {
    if paused.is_empty() && waking.is_empty() {
        return Ok(false);
    }
    let before = tick.batch.transitions.len();
    let subs: Vec<String> = paused.iter().chain(&waking).map(|p| p.sub_run.clone()).collect();
    let gated = tx.still_gated(&subs).await?;
    let waits = |p: &Parked| gated.contains(&p.sub_run);
    let mut park = Vec::new();
    for p in paused {
        if waits(&p) {
            park.push(p);
        } else {
            let (i, item) = super::unit_of((p.step, p.item));
            core::recover_unit(state, tick, i, item, p.attempt);
        }
    }
    let mut unpark = Vec::new();
    for p in waking.iter().filter(|p| !waits(p)) {
        let (i, item) = super::unit_of((p.step, p.item));
        core::recover_unit(state, tick, i, item, p.attempt);
        unpark.push((p.step, p.item));
    }
    tx.unpark(&unpark).await?;
    tx.park(&park).await?;
    Ok(tick.batch.transitions.len() > before)
}
