//! Journal replay (`aosc resume` of a journal that was damaged or edited
//! by hand): arbitrary JSON transitions replayed over the examples'
//! programs, then recovered and decided on, as a resume does. Never a
//! panic, a stack overflow or a hang — whatever the journal says.
#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use aos_compiler::ir::{Program, Trust};
use aos_runtime::core::{decide, recover, replay, on_result, AttemptOutcome, AttemptResult, RunCtx, RunState, Tick};
use aos_runtime::events::{Transition, Usage};
use aos_runtime::interp::Secrets;
use libfuzzer_sys::fuzz_target;

const PROGRAMS: [&str; 3] = [
    include_str!("../seeds/ir/hello.json"),
    include_str!("../seeds/ir/weekly_sales_report.json"),
    include_str!("../seeds/ir/sandboxed_tools.json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(program) = serde_json::from_str::<Program>(PROGRAMS[usize::from(pick) % PROGRAMS.len()]) else { return };
    let Ok(journal) = serde_json::from_slice::<Vec<Transition>>(rest) else { return };
    let Some((name, wf)) = program.workflows.iter().next().map(|(n, w)| (n.clone(), w.clone())) else { return };
    let _ = name;
    let ctx = RunCtx { run_id: "fuzz".into(), program: Arc::new(program), wf, params: BTreeMap::new(), trust: Trust::Basic, secrets: Secrets::default() };
    let mut state = RunState::new(Arc::new(ctx));
    replay(&mut state, &journal);
    let mut tick = Tick::default();
    recover(&mut state, &mut tick);
    // A few rounds of the driver's loop, every attempt failing at once
    // (no I/O): the state must stay consistent enough to decide on.
    let mut now = 1_000;
    for _ in 0..16 {
        let (tick, _outcome) = decide(&mut state, now);
        if tick.launches.is_empty() {
            break;
        }
        for l in tick.launches {
            let r = AttemptResult { step: l.step, item: l.item, attempt: l.attempt, outcome: AttemptOutcome::Failed("fuzz".into()), usage: Usage::default(), decisions: Vec::new(), idempotency: None };
            let mut t = Tick::default();
            on_result(&mut state, &mut t, r);
        }
        now += 60_000;
    }
});
