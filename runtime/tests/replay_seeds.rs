//! The seeds of the journal-replay fuzz target (`fuzz/seeds/replay`: real
//! journals of the examples, and damaged ones) replay without a panic, on
//! stable and in every CI run (the fuzz smoke run needs nightly).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

const PROGRAMS: [&str; 3] = [
    include_str!("../../fuzz/seeds/ir/hello.json"),
    include_str!("../../fuzz/seeds/ir/weekly_sales_report.json"),
    include_str!("../../fuzz/seeds/ir/sandboxed_tools.json"),
];

#[test]
fn the_replay_seeds_replay_without_a_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/replay");
    let mut n = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let path = f.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        // A seed that is not a journal would test nothing.
        serde_json::from_slice::<Vec<aos_runtime::events::Transition>>(&bytes[1..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        aos_runtime::testkit::replay_journal_bytes(&PROGRAMS, &bytes);
        // Every prefix of a journal is a journal a crash could leave.
        if let Ok(journal) = serde_json::from_slice::<Vec<serde_json::Value>>(&bytes[1..]) {
            for k in 0..journal.len() {
                let mut prefix = vec![bytes[0]];
                prefix.extend(serde_json::to_vec(&journal[..k]).unwrap());
                aos_runtime::testkit::replay_journal_bytes(&PROGRAMS, &prefix);
            }
        }
        n += 1;
    }
    assert!(n >= 3, "{n} seeds");
}
