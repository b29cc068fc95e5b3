//! A run's transitions and its streamed deltas in one order, for readers
//! (`aosc serve`'s event stream, `aosc events --follow`).
//!
//! Transitions come from the journal, deltas from the bus: two sources, so a
//! reader sees them in no fixed order. What is known: an attempt's deltas
//! are sent after its `step.started` was decided and before its end
//! (`step.succeeded`, `item.succeeded`, `step.attempt_failed`, …) is
//! committed, since the provider call returns only after its last delta.
//! So a reader that reads the journal first and the deltas second has, for
//! every end it read, every delta of that attempt. [`Merge`] then places
//! each delta after its attempt's start (held until that start is read) and
//! before its end. Pure: no I/O, no clock.

use std::collections::{HashMap, HashSet};

use crate::events::Transition;
use crate::fabric::stream::Delta;

/// What an event means to the merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// An attempt of `(run, step, item)` started.
    Start { run: String, step: String, item: Option<u32>, attempt: u32 },
    /// The attempt (`None`: whichever is running) of `(run, step, item)` ended.
    End { run: String, step: String, item: Option<u32>, attempt: Option<u32> },
    /// The running attempt of `(run, step, item)` has returned: its router
    /// decisions (`llm.routed`) are journaled with its result, so its
    /// deltas all came before.
    Returned { run: String, step: String, item: Option<u32> },
    /// The run stopped: every running attempt has ended.
    RunEnd { run: String },
    Other,
}

impl Mark {
    /// What a transition of run `run` means to the merge.
    pub fn of(run: &str, t: &Transition) -> Mark {
        let at = |step: &str, item: Option<u32>, attempt: Option<u32>| Mark::End { run: run.into(), step: step.into(), item, attempt };
        match t {
            Transition::AttemptStarted { step, item, attempt, .. } => Mark::Start { run: run.into(), step: step.clone(), item: *item, attempt: *attempt },
            Transition::AttemptFailed { step, item, attempt, .. } | Transition::AttemptInterrupted { step, item, attempt, .. } => at(step, *item, Some(*attempt)),
            Transition::ItemSucceeded { step, item, .. } => at(step, Some(*item), None),
            Transition::StepSucceeded { step, .. } | Transition::StepFailed { step, .. } => at(step, None, None),
            Transition::Routed { step, item, .. } => Mark::Returned { run: run.into(), step: step.clone(), item: *item },
            Transition::RunSucceeded { .. } | Transition::RunFailed { .. } | Transition::RunInterrupted | Transition::RunPaused { .. } => {
                Mark::RunEnd { run: run.into() }
            }
            _ => Mark::Other,
        }
    }
}

/// One event of the merged order.
#[derive(Clone, Debug, PartialEq)]
pub enum Live<E> {
    Event(E),
    Delta(Delta),
}

type Key = (String, String, Option<u32>);

fn key(d: &Delta) -> Key {
    (d.run_id.clone(), d.step.clone(), d.item)
}

/// Deltas held back, and the attempts running, as far as the events read
/// so far tell.
#[derive(Debug, Default)]
pub struct Merge {
    running: HashMap<Key, u32>,
    ended: HashSet<(Key, u32)>,
    held: Vec<Delta>,
}

/// Deltas held at most (those of attempts whose start is never read).
const MAX_HELD: usize = 10_000;

impl Merge {
    pub fn new() -> Merge {
        Merge::default()
    }

    /// Places `deltas`, read after `events`, among them; `mark` says what
    /// an event means. Deltas of an attempt not started yet are kept for a
    /// later call; deltas of an attempt already ended are dropped (their
    /// text is in its result).
    pub fn push<E>(&mut self, events: Vec<E>, deltas: Vec<Delta>, mark: impl Fn(&E) -> Mark) -> Vec<Live<E>> {
        self.held.extend(deltas);
        let mut out = Vec::with_capacity(events.len() + self.held.len());
        for e in events {
            match mark(&e) {
                Mark::Start { run, step, item, attempt } => {
                    let k = (run, step, item);
                    out.push(Live::Event(e));
                    release(&mut self.held, &mut out, |d| key(d) == k && d.attempt == attempt);
                    self.running.insert(k, attempt);
                }
                Mark::End { run, step, item, attempt } => {
                    let k = (run, step, item);
                    let attempt = attempt.or_else(|| self.running.get(&k).copied());
                    release(&mut self.held, &mut out, |d| key(d) == k && attempt.is_none_or(|a| d.attempt == a));
                    self.running.remove(&k);
                    if let Some(a) = attempt {
                        self.ended.insert((k, a));
                    }
                    out.push(Live::Event(e));
                }
                Mark::Returned { run, step, item } => {
                    let k = (run, step, item);
                    let attempt = self.running.get(&k).copied();
                    release(&mut self.held, &mut out, |d| key(d) == k && attempt.is_none_or(|a| d.attempt == a));
                    out.push(Live::Event(e));
                }
                Mark::RunEnd { run } => {
                    let running = std::mem::take(&mut self.running);
                    release(&mut self.held, &mut out, |d| d.run_id == run && running.get(&key(d)) == Some(&d.attempt));
                    for (k, a) in running {
                        if k.0 != run {
                            self.running.insert(k, a);
                        } else {
                            self.ended.insert((k, a));
                        }
                    }
                    out.push(Live::Event(e));
                }
                Mark::Other => out.push(Live::Event(e)),
            }
        }
        let running = &self.running;
        release(&mut self.held, &mut out, |d| running.get(&key(d)) == Some(&d.attempt));
        let ended = &self.ended;
        self.held.retain(|d| !ended.contains(&(key(d), d.attempt)));
        if self.held.len() > MAX_HELD {
            let extra = self.held.len() - MAX_HELD;
            self.held.drain(..extra);
        }
        out
    }

}

/// Moves the held deltas `pick` chooses to `out`, in arrival order.
fn release<E>(held: &mut Vec<Delta>, out: &mut Vec<Live<E>>, pick: impl Fn(&Delta) -> bool) {
    let (go, keep): (Vec<Delta>, Vec<Delta>) = std::mem::take(held).into_iter().partition(|d| pick(d));
    *held = keep;
    out.extend(go.into_iter().map(Live::Delta));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::events::Usage;
    use serde_json::json;

    fn d(step: &str, attempt: u32, offset: u64, text: &str) -> Delta {
        Delta { run_id: "r".into(), step: step.into(), item: None, attempt, model: "m".into(), offset, text: text.into(), at_ms: 0 }
    }

    fn started(step: &str, attempt: u32) -> Transition {
        Transition::AttemptStarted { step: step.into(), item: None, attempt, fallback: false }
    }

    fn ok(step: &str) -> Transition {
        Transition::StepSucceeded { step: step.into(), output: Some(json!("x")), usage: Usage::default() }
    }

    fn names(out: &[Live<Transition>]) -> Vec<String> {
        out.iter()
            .map(|l| match l {
                Live::Event(t) => t.kind().to_string(),
                Live::Delta(d) => format!("{}:{}", d.step, d.text),
            })
            .collect()
    }

    fn push(m: &mut Merge, events: Vec<Transition>, deltas: Vec<Delta>) -> Vec<String> {
        names(&m.push(events, deltas, |t| Mark::of("r", t)))
    }

    #[test]
    fn deltas_go_between_their_start_and_their_end() {
        let mut m = Merge::new();
        // Read together: the journal had the step's start and end already.
        let out = push(&mut m, vec![started("a", 1), ok("a")], vec![d("a", 1, 0, "Hel"), d("a", 1, 3, "lo")]);
        assert_eq!(out, ["step.started", "a:Hel", "a:lo", "step.succeeded"]);
    }

    #[test]
    fn deltas_go_before_the_router_decisions_journaled_with_the_result() {
        let mut m = Merge::new();
        let routed = Transition::Routed { step: "a".into(), item: None, kind: "model".into(), data: json!({}) };
        let out = push(&mut m, vec![started("a", 1), routed.clone(), ok("a")], vec![d("a", 1, 0, "x")]);
        assert_eq!(out, ["step.started", "a:x", "llm.routed", "step.succeeded"]);
        // Read in two rounds, the same order.
        let mut m = Merge::new();
        let mut out = push(&mut m, vec![started("a", 1)], vec![]);
        out.extend(push(&mut m, vec![routed, ok("a")], vec![d("a", 1, 0, "x")]));
        assert_eq!(out, ["step.started", "a:x", "llm.routed", "step.succeeded"]);
    }

    #[test]
    fn a_delta_read_before_its_start_waits_for_it() {
        let mut m = Merge::new();
        assert_eq!(push(&mut m, vec![], vec![d("a", 1, 0, "Hi")]), Vec::<String>::new());
        assert_eq!(push(&mut m, vec![started("a", 1)], vec![d("a", 1, 2, "!")]), ["step.started", "a:Hi", "a:!"]);
        assert_eq!(push(&mut m, vec![], vec![d("a", 1, 3, "?")]), ["a:?"]);
        assert_eq!(push(&mut m, vec![ok("a")], vec![]), ["step.succeeded"]);
        // Late pieces of an ended attempt are dropped.
        assert_eq!(push(&mut m, vec![], vec![d("a", 1, 4, "late")]), Vec::<String>::new());
    }

    #[test]
    fn a_retry_is_told_apart_by_its_attempt() {
        let mut m = Merge::new();
        let failed = Transition::AttemptFailed { step: "a".into(), item: None, attempt: 1, error: "cut".into(), usage: Usage::default(), retry_in_ms: Some(0) };
        let out = push(&mut m, vec![started("a", 1), failed], vec![d("a", 1, 0, "one"), d("a", 2, 0, "two")]);
        assert_eq!(out, ["step.started", "a:one", "step.attempt_failed"]);
        assert_eq!(push(&mut m, vec![started("a", 2), ok("a")], vec![]), ["step.started", "a:two", "step.succeeded"]);
    }

    #[test]
    fn a_run_that_stops_releases_what_its_running_attempts_sent() {
        let mut m = Merge::new();
        assert_eq!(push(&mut m, vec![started("a", 1), started("b", 1)], vec![]), ["step.started", "step.started"]);
        let out = push(&mut m, vec![Transition::RunInterrupted], vec![d("a", 1, 0, "x"), d("b", 1, 0, "y")]);
        assert_eq!(out, ["a:x", "b:y", "run.interrupted"]);
    }

    #[test]
    fn items_are_attempts_of_their_own() {
        let mut m = Merge::new();
        let start = |i| Transition::AttemptStarted { step: "f".into(), item: Some(i), attempt: 1, fallback: false };
        let item_ok = |i| Transition::ItemSucceeded { step: "f".into(), item: i, output: json!(i), usage: Usage::default() };
        let mut d0 = d("f", 1, 0, "zero");
        d0.item = Some(0);
        let mut d1 = d("f", 1, 0, "one");
        d1.item = Some(1);
        let out = push(&mut m, vec![start(0), start(1), item_ok(1), item_ok(0)], vec![d0, d1]);
        assert_eq!(out, ["step.started", "f:zero", "step.started", "f:one", "item.succeeded", "item.succeeded"]);
    }

    /// One token of a simulated history: attempt `a`'s start, its delta
    /// number `n`, or its end (router decision and result, one batch).
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Tok {
        Start(usize),
        Delta(usize, usize),
        End(usize),
    }

    /// A history of `attempts` (each on a step of its own, `deltas[a]`
    /// deltas): deltas in order and before the end; the start's commit may
    /// come after some deltas (the group-commit writer lags), never after
    /// the end. Interleaved by `order` (picks among the attempts).
    fn history(deltas: &[usize], start_at: &[usize], order: &[usize]) -> Vec<Tok> {
        let mut queues: Vec<Vec<Tok>> = deltas
            .iter()
            .enumerate()
            .map(|(a, &n)| {
                let mut q: Vec<Tok> = (0..n).map(|i| Tok::Delta(a, i)).collect();
                q.insert(start_at[a].min(n), Tok::Start(a));
                q.push(Tok::End(a));
                q
            })
            .collect();
        let mut out = Vec::new();
        let mut pick = order.iter().cycle();
        while queues.iter().any(|q| !q.is_empty()) {
            let live: Vec<usize> = (0..queues.len()).filter(|&i| !queues[i].is_empty()).collect();
            let i = live[pick.next().copied().unwrap_or(0) % live.len()];
            out.push(queues[i].remove(0));
        }
        out
    }

    proptest::proptest! {
        /// However the journal and the deltas are read (rounds of: the
        /// journal up to a point, then the deltas up to a later one), every
        /// delta comes once, in order, after its attempt's start and before
        /// its router decision and its end; journal entries keep their order.
        #[test]
        fn every_reading_puts_each_delta_inside_its_attempt(
            deltas in proptest::collection::vec(0usize..5, 1..4),
            start_at in proptest::collection::vec(0usize..5, 4),
            order in proptest::collection::vec(0usize..7, 1..30),
            cuts in proptest::collection::vec(0usize..40, 0..8),
        ) {
            let h = history(&deltas, &start_at, &order);
            let step = |a: usize| format!("s{a}");
            // Journal entries and deltas with their times (positions in h).
            let mut journal: Vec<(usize, Transition)> = Vec::new();
            let mut sent: Vec<(usize, Delta)> = Vec::new();
            for (t, tok) in h.iter().enumerate() {
                match *tok {
                    Tok::Start(a) => journal.push((t, started(&step(a), 1))),
                    Tok::Delta(a, n) => sent.push((t, d(&step(a), 1, n as u64, &n.to_string()))),
                    Tok::End(a) => {
                        journal.push((t, Transition::Routed { step: step(a), item: None, kind: "model".into(), data: json!({}) }));
                        journal.push((t, ok(&step(a))));
                    }
                }
            }
            let mut cuts = cuts;
            cuts.sort_unstable();
            cuts.push(h.len());
            cuts.push(h.len());
            let mut m = Merge::new();
            let (mut j, mut k) = (0, 0);
            let mut out: Vec<Live<Transition>> = Vec::new();
            for pair in cuts.chunks(2) {
                let (t1, t2) = (pair[0], *pair.get(1).unwrap_or(&pair[0]));
                let events: Vec<Transition> = journal[j..].iter().take_while(|(t, _)| *t <= t1).map(|(_, e)| e.clone()).collect();
                j += events.len();
                let got: Vec<Delta> = sent[k..].iter().take_while(|(t, _)| *t <= t2).map(|(_, d)| d.clone()).collect();
                k += got.len();
                out.extend(m.push(events, got, |e| Mark::of("r", e)));
            }
            let events: Vec<Transition> = journal[j..].iter().map(|(_, e)| e.clone()).collect();
            out.extend(m.push(events, sent[k..].iter().map(|(_, d)| d.clone()).collect(), |e| Mark::of("r", e)));

            let journal_out: Vec<&Transition> = out.iter().filter_map(|l| match l { Live::Event(e) => Some(e), _ => None }).collect();
            proptest::prop_assert_eq!(journal_out, journal.iter().map(|(_, e)| e).collect::<Vec<_>>());
            for (a, &n) in deltas.iter().enumerate() {
                let s = step(a);
                let pos = |pred: &dyn Fn(&Live<Transition>) -> bool| out.iter().position(pred);
                let start = pos(&|l| matches!(l, Live::Event(Transition::AttemptStarted { step, .. }) if *step == s)).unwrap();
                let routed = pos(&|l| matches!(l, Live::Event(Transition::Routed { step, .. }) if *step == s)).unwrap();
                let mine: Vec<(usize, u64)> = out.iter().enumerate().filter_map(|(i, l)| match l {
                    Live::Delta(x) if x.step == s => Some((i, x.offset)),
                    _ => None,
                }).collect();
                proptest::prop_assert_eq!(mine.iter().map(|(_, o)| *o).collect::<Vec<_>>(), (0..n as u64).collect::<Vec<_>>());
                proptest::prop_assert!(mine.iter().all(|(i, _)| start < *i && *i < routed), "{:?}", out);
            }
        }
    }
}
