-- The fleet runs workflow calls whose sub-runs pause at an approval gate.
-- The attempt of such a call is "parked": its task row stays (the journal
-- keeps the attempt in flight, as `aosc run` does), never visible to a claim
-- (`visible_ms` is i64::MAX, `claimed_by` NULL), and names the sub-run it
-- waits on and why (the reason every worker puts in the run's `run.paused`).
-- A worker that advances the run after a decision in that sub-run runs the
-- attempt again, which continues the sub-run.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS parked_run TEXT;
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS parked_reason TEXT;
