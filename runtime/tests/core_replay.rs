//! Property tests of the pure run core, driven by a synchronous simulated
//! driver (no tokio, no store): for generated workflows (chains, joins,
//! fan-outs, retries with backoff, failures), at every commit point of an
//! uninterrupted run, replaying the journal prefix through `apply` gives
//! the state the run had at that point; and a run "crashed" at a random
//! commit point, replayed, recovered and driven on, ends exactly as the
//! uninterrupted run did.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use aos_compiler::ir::{Backoff, Expr, FanOut, Trust, Workflow};
use aos_runtime::core::{self, AttemptOutcome, AttemptResult, Finished, Launch, Outcome, RunCtx, RunState, Snapshot, Tick, WorkflowRef};
use aos_runtime::events::{Transition, Usage};
use aos_runtime::interp::Secrets;
use aos_runtime::testkit::*;
use proptest::prelude::*;
use serde_json::{json, Value};

/// What a generated step is.
#[derive(Clone, Debug)]
struct Gen {
    deps: Vec<usize>,
    fan: Option<u8>,
    retry: u32,
    backoff: bool,
    /// Attempts whose number is at most this fail (per unit).
    fail_first: u32,
}

fn gen_step(i: usize) -> impl Strategy<Value = Gen> {
    (proptest::collection::vec(0..i.max(1), 0..3), prop::option::of(0u8..4), 0u32..3, any::<bool>(), 0u32..3).prop_map(move |(deps, fan, retry, backoff, fail_first)| Gen {
        deps: if i == 0 { Vec::new() } else { deps },
        fan,
        retry,
        backoff,
        fail_first,
    })
}

fn gen_workflow() -> impl Strategy<Value = (Vec<Gen>, u32, u64)> {
    (1usize..7).prop_flat_map(|n| ((0..n).map(gen_step).collect::<Vec<_>>(), 1u32..4, any::<u64>()))
}

fn build(gens: &[Gen], concurrency: u32) -> (Workflow, Vec<u32>) {
    let mut wf = workflow("w");
    wf.max_concurrency = Some(concurrency);
    let mut fail_first = Vec::new();
    for (i, g) in gens.iter().enumerate() {
        let mut parts = vec![s(&format!("step {i}"))];
        for d in &g.deps {
            parts.push(s(" "));
            parts.push(step_ref(&format!("s{d}")));
        }
        let mut st = llm(&format!("s{i}"), "r", interp(parts));
        if let Some(k) = g.fan {
            parts_for_fan(&mut st, k);
        }
        st.retry = g.retry;
        st.backoff = g.backoff.then_some(Backoff::Fixed { ms: 7 });
        fail_first.push(g.fail_first);
        add(&mut wf, st);
    }
    wf.ret_expr = Some(Expr::Record { fields: (0..gens.len()).map(|i| (format!("s{i}"), step_ref(&format!("s{i}")))).collect() });
    (wf, fail_first)
}

fn parts_for_fan(st: &mut aos_compiler::ir::Step, k: u8) {
    let items: Vec<Value> = (0..k).map(|x| json!(x)).collect();
    st.fan_out = Some(FanOut { var: "x".into(), items: lit(Value::Array(items)), max_items: None, concurrency: Some(2) });
    if let aos_compiler::ir::Call::Llm { prompt: Expr::Interp { parts }, .. } = &mut st.call {
        parts.push(aos_compiler::ir::InterpPart::Expr { expr: var("x") });
    }
}

fn state(wf: &Workflow) -> RunState {
    let mut p = program();
    p.workflows.insert("w".into(), wf.clone());
    let p = Arc::new(p);
    let ctx = RunCtx { run_id: "r".into(), program: p.clone(), wf: WorkflowRef::new(p, "w").unwrap(), params: BTreeMap::new(), trust: Trust::Basic, secrets: Secrets::default() };
    RunState::new(Arc::new(ctx))
}

/// The simulated driver's model of an attempt: deterministic in the unit
/// and attempt number, so a resumed run sees what the first one saw.
fn result(wf: &Workflow, fail_first: &[u32], l: Launch) -> AttemptResult {
    let name = &wf.steps[l.step].name;
    let fails = l.attempt <= fail_first[l.step];
    let outcome = if fails {
        AttemptOutcome::Failed(format!("{name} attempt {} failed", l.attempt))
    } else {
        AttemptOutcome::Value(json!(format!("{name}/{:?}/{}", l.item, l.attempt)))
    };
    AttemptResult { step: l.step, item: l.item, attempt: l.attempt, outcome, usage: Usage { cost_usd: 0.001, ..Usage::default() }, decisions: Vec::new(), idempotency: None }
}

/// A run driven to its end, or to `stop_after` commits. Returns the
/// journal and the snapshot after each commit (journal length, state).
struct Driven {
    journal: Vec<Transition>,
    points: Vec<(usize, Snapshot)>,
    finished: Option<Finished>,
}

fn drive(st: &mut RunState, wf: &Workflow, fail_first: &[u32], mut journal: Vec<Transition>, seed: u64, stop_after: Option<usize>) -> Driven {
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut points = Vec::new();
    let mut in_flight: Vec<Launch> = Vec::new();
    let mut now = 1_000u64;
    let commit = |journal: &mut Vec<Transition>, points: &mut Vec<(usize, Snapshot)>, st: &RunState, tick: Tick| {
        journal.extend(tick.batch.transitions);
        points.push((journal.len(), st.snapshot()));
    };
    for _ in 0..10_000 {
        if stop_after.is_some_and(|n| points.len() >= n) {
            break;
        }
        let (tick, outcome) = core::decide(st, now);
        let launches = tick.launches.clone();
        commit(&mut journal, &mut points, st, tick);
        in_flight.extend(launches);
        match outcome {
            Outcome::Finished => break,
            Outcome::Waiting(r) => panic!("no gates here, yet waiting: {r:?}"),
            Outcome::Busy => {}
        }
        if in_flight.is_empty() {
            now = st.next_timer().unwrap_or(now + 1).max(now + 1);
            continue;
        }
        now += 1;
        // Some attempts end together, in a random order.
        let n = 1 + (next() as usize) % in_flight.len();
        let mut tick = Tick::default();
        st.set_now(now);
        for _ in 0..n {
            let l = in_flight.remove((next() as usize) % in_flight.len());
            core::on_result(st, &mut tick, result(wf, fail_first, l));
        }
        commit(&mut journal, &mut points, st, tick);
    }
    Driven { journal, points, finished: st.finished().cloned() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn replaying_a_journal_prefix_gives_the_live_state((gens, conc, seed) in gen_workflow()) {
        let (wf, ff) = build(&gens, conc);
        let mut live = state(&wf);
        let run = drive(&mut live, &wf, &ff, Vec::new(), seed, None);
        prop_assert!(run.finished.is_some(), "the run did not end");
        for (len, snap) in &run.points {
            let mut replayed = state(&wf);
            core::replay(&mut replayed, &run.journal[..*len]);
            prop_assert_eq!(&replayed.snapshot(), snap, "after {} transitions", len);
        }
    }

    #[test]
    fn a_run_crashed_anywhere_and_resumed_ends_the_same((gens, conc, seed) in gen_workflow(), crash in any::<prop::sample::Index>(), seed2 in any::<u64>()) {
        let (wf, ff) = build(&gens, conc);
        let whole = drive(&mut state(&wf), &wf, &ff, Vec::new(), seed, None);
        let at = crash.index(whole.points.len().max(1));
        let mut first = state(&wf);
        let cut = drive(&mut first, &wf, &ff, Vec::new(), seed, Some(at));
        // The crash: only the committed journal survives.
        let mut resumed = state(&wf);
        core::replay(&mut resumed, &cut.journal);
        let mut tick = Tick::default();
        core::recover(&mut resumed, &mut tick);
        let mut journal = cut.journal.clone();
        journal.extend(tick.batch.transitions);
        let end = drive(&mut resumed, &wf, &ff, journal, seed2, None);
        let (a, b) = (whole.finished.unwrap(), end.finished.unwrap());
        prop_assert_eq!(a.status, b.status);
        prop_assert_eq!(a.output, b.output);
        // Which failure is reported first depends on the order attempts end.
        prop_assert_eq!(a.error.is_some(), b.error.is_some());
        // Every step succeeded at most once in the resumed journal.
        for st in &wf.steps {
            let n = end.journal.iter().filter(|t| matches!(t, Transition::StepSucceeded { step, .. } if *step == st.name)).count();
            prop_assert!(n <= 1, "step {} succeeded {} times", st.name, n);
        }
    }
}
