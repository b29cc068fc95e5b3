//! `verify` accepts every program the checker lowers (examples and the
//! conformance suite's valid programs) and refuses hand-edited IR that
//! breaks the checker's guarantees (issue 17, finding 6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use aos_compiler::check::ProjectLoader;
use aos_compiler::ir::{Program, Risk};
use aos_compiler::verify::{VerifyError, verify};

fn checked(path: &Path) -> Option<Program> {
    let text = std::fs::read_to_string(path).unwrap();
    let loader = ProjectLoader::for_program(path);
    aos_compiler::check(path.to_str().unwrap(), &text, &loader).program
}

fn programs() -> Vec<(String, Program)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<_> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let conf = root.join("../shared/conformance/valid");
    if let Ok(rd) = std::fs::read_dir(&conf) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                files.push(p.join("main.aos"))
            } else {
                files.push(p)
            }
        }
    }
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "aos") && p.is_file())
        .filter_map(|p| checked(&p).map(|prog| (p.display().to_string(), prog)))
        .collect()
}

#[test]
fn every_checked_program_verifies() {
    let all = programs();
    assert!(all.len() >= 3, "{}", all.len());
    for (path, p) in &all {
        assert_eq!(verify(p), Ok(()), "{path}");
    }
}

#[test]
fn tampering_is_refused() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sandboxed_tools.aos");
    let p = checked(&root).unwrap();
    let (wf, i) = p
        .workflows
        .iter()
        .find_map(|(n, w)| {
            w.steps
                .iter()
                .position(|s| s.approval.is_some())
                .map(|i| (n.clone(), i))
        })
        .expect("the example has an approval gate");

    let mut t = p.clone();
    t.workflows.get_mut(&wf).unwrap().steps[i].approval = None;
    assert!(
        matches!(verify(&t), Err(VerifyError::Ungated { .. })),
        "{:?}",
        verify(&t)
    );

    let mut t = p.clone();
    t.workflows.get_mut(&wf).unwrap().steps[i].approval = None;
    t.workflows.get_mut(&wf).unwrap().steps[i].risk = Risk::Low;
    assert!(verify(&t).is_err());

    let mut t = p.clone();
    t.version = 999;
    assert!(matches!(
        verify(&t),
        Err(VerifyError::Version { found: 999, .. })
    ));

    let mut t = p.clone();
    let steps = &mut t.workflows.get_mut(&wf).unwrap().steps;
    steps.reverse();
    if steps.iter().any(|s| !s.deps.is_empty()) {
        assert!(
            matches!(verify(&t), Err(VerifyError::Order { .. })),
            "{:?}",
            verify(&t)
        );
    }

    let mut t = p.clone();
    t.workflows.get_mut(&wf).unwrap().budget_usd = Some(f64::NAN);
    assert!(matches!(verify(&t), Err(VerifyError::Amount { .. })));

    let mut t = p;
    t.workflows.get_mut(&wf).unwrap().cost_bound_usd = 1e9;
    assert!(verify(&t).is_err());
}
