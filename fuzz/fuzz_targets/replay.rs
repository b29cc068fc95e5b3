//! Journal replay (`aosc resume` of a journal that was damaged or edited
//! by hand): arbitrary JSON transitions replayed over the examples'
//! programs, then recovered and decided on, as a resume does. Never a
//! panic, a stack overflow or a hang — whatever the journal says. The body
//! is `aos_runtime::testkit::replay_journal_bytes`; the seeds in
//! `fuzz/seeds/replay` are replayed by `runtime/tests/replay_seeds.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

const PROGRAMS: [&str; 3] = [
    include_str!("../seeds/ir/hello.json"),
    include_str!("../seeds/ir/weekly_sales_report.json"),
    include_str!("../seeds/ir/sandboxed_tools.json"),
];

fuzz_target!(|data: &[u8]| {
    aos_runtime::testkit::replay_journal_bytes(&PROGRAMS, data);
});
