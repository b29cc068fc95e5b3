//! The run core: a run's state and the rules that move it, with no I/O,
//! no clock and no async runtime. Drivers carry the decisions out: the
//! embedded driver ([`crate::driver`]) on tokio in one process today, and
//! any other driver (a fleet worker on PostgreSQL or Redis) the same way.
//!
//! # The API
//!
//! - [`RunState::new`] builds the state of a run from its [`RunCtx`] (the
//!   program, workflow, inputs, trust).
//! - [`apply`] changes the state as one journaled [`Transition`] says.
//!   [`replay`] feeds a whole journal through it: a resumed run's state is
//!   exactly the state the run had when its last transition was committed.
//! - [`decide`]`(state, now_ms)` returns a [`Tick`] and an [`Outcome`]. The
//!   tick holds the transitions decided (already applied to `state` through
//!   [`apply`]: the next decision of the same tick depends on them), the
//!   audit decisions behind them, and the attempts to [`Launch`].
//! - [`on_result`] turns an attempt's [`AttemptResult`] into transitions
//!   (value, retry with backoff, fallback, failure), into a tick.
//! - [`recover`], after [`replay`] of an interrupted run, decides about the
//!   attempts left in flight (run again, or hold for an operator).
//!
//! `decide` takes `&mut RunState` only to apply what it decides and to pop
//! its own work lists; the same state and the same `now_ms` give the same
//! tick. Time is what the driver passes in (retry delays are due at
//! `now_ms + delay`; [`RunState::next_timer`] says when to call again).
//!
//! # The driver's contract
//!
//! A driver loops: `decide`, **commit the tick's batch** (one transaction),
//! publish it, and only then launch the tick's attempts; when an attempt
//! ends, `on_result` into a new tick, and loop. Nothing with an external
//! effect acts on a transition before it is durable, so a crash at any
//! point leaves a journal whose replay (plus [`recover`]) continues the run
//! without repeating a completed step. On [`Outcome::Waiting`] the driver
//! either journals `run.paused` ([`pause`]) or waits for a decision from
//! another process (it applies the journaled `approval.*` transitions it
//! reads); on an interrupt it journals `run.interrupted`.

mod apply;
mod decide;
mod results;
mod state;

pub use apply::{apply, replay};
pub use decide::{decide, Launch, Outcome, Tick};
pub use results::{on_lost, on_result, park, recover, recover_unit, AttemptOutcome, AttemptResult};
pub use state::{
    eval_with, Fan, Finished, Gate, Phase, RunCtx, RunState, Snapshot, StepSnapshot, StepState, StepStatus, Unit, UnitKey, WorkflowRef,
    DEFAULT_MAX_CONCURRENCY,
};

use crate::events::Transition;

/// On [`Outcome::Waiting`] when the driver does not wait: the run pauses
/// at its gates (`reasons`), or fails when nothing can ever run.
pub fn pause(state: &mut RunState, tick: &mut Tick, reasons: &[String]) {
    if reasons.is_empty() {
        let cost_usd = state.spent();
        tick.emit(state, Transition::RunFailed { error: "no step can run (internal error: the run is stuck)".into(), cost_usd });
    } else {
        tick.emit(state, Transition::RunPaused { reason: reasons.join("; ") });
    }
}
