//! The incremental re-check (`aos_compiler::recheck`, what the language
//! server runs on every edit) must give exactly the analysis a check from
//! scratch gives: the same diagnostics, trees, cost figures and sources,
//! after any sequence of edits, on every fixture of the repository.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use aos_compiler::{Analysis, CheckOptions, FileLoader, FsLoader, Recheck, check_with, recheck};
use proptest::prelude::*;

/// Serves `use`d files of the `ui/check` fixtures from their folder.
struct FixtureLoader;

impl FileLoader for FixtureLoader {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/check");
        std::fs::read_to_string(if path.is_absolute() { path.to_path_buf() } else { dir.join(path) })
    }
}

/// A program of many small workflows, some calling others (so that an edit
/// has callers to re-check); with `findings`, one has no budget and one is
/// over its budget (findings that quote cost figures: exact counts).
fn generated(findings: bool) -> String {
    let mut s = String::from(
        "use std.email\n\nmodel m = sim(\"x\") { input: $1/M, output: $2/M, context: 100000 }\n\
         model o = openai(\"gpt-4o\") { input: $2.50/M, output: $10/M, context: 128000 }\n\
         role executor = [m]\nrole checker = [o, m]\n\
         type Row = { id: String, total: Float }\ntool crm.lookup(id: String) -> Row { risk: low }\n\n",
    );
    for i in 0..12 {
        let call = if i % 3 == 2 { format!("  step d = w{}(topic: b)\n", i - 1) } else { String::new() };
        let budget = if findings && i == 4 { String::new() } else if findings && i == 7 { "  budget: $0.0001\n".to_string() } else { "  budget: $5\n".to_string() };
        s.push_str(&format!(
            "/// Workflow number {i}.\nworkflow w{i}(topic: String = \"x\") -> String {{\n  intent: \"workflow {i}\"\n{budget}  risk: medium\n\n  \
             step a: Row = crm.lookup(id: topic) {{\n    retry: 2\n    timeout: 30s\n  }}\n  \
             step b = llm executor(\"Summarize {{a.id}} about {{topic}}\") {{\n    max_tokens: 200\n  }}\n{call}  \
             step c = llm checker(\"\"\"\n    Review {{b}}\n    and {{a.total}}\n    \"\"\") {{ max_tokens: 300 }}\n  \
             return c\n}}\n\n"
        ));
    }
    s
}

/// [`generated`] (without findings) where every other workflow fans out
/// over a block of steps (`for x in xs => { step … return … }`), which the
/// checker checks as the workflow `wN.fan` it runs as.
fn generated_with_blocks() -> String {
    let mut s = generated(false);
    for i in (1..12).step_by(2) {
        let anchor = format!("workflow w{i}(topic: String = \"x\") -> String {{\n  intent: \"workflow {i}\"\n  budget: $5\n  risk: medium\n\n");
        let at = s.find(&anchor).unwrap() + anchor.len();
        s.insert_str(
            at,
            "  step fan = for t in [topic, \"y\"] => {\n    step r: Row = crm.lookup(id: t)\n    step s = llm executor(\"About {r.id} and {t}\") { max_tokens: 50 }\n    return s\n  } { max_items: 2 }\n",
        );
        let ret = format!("  return c\n}}\n\n/// Workflow number {}.", i + 1);
        if let Some(at) = s.find(&ret) {
            s.replace_range(at..at + "  return c".len(), "  return \"{c} {fan}\"");
        }
    }
    s
}

/// (path given to the checker, text, loader) of every fixture.
fn fixtures() -> &'static [(String, String, bool)] {
    static FIXTURES: std::sync::OnceLock<Vec<(String, String, bool)>> = std::sync::OnceLock::new();
    FIXTURES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
        let mut out = vec![
            ("gen.aos".to_string(), generated(false), false),
            ("gen.aos".to_string(), generated(true), false),
            ("gen.aos".to_string(), generated_with_blocks(), false),
        ];
        let mut dir = |d: PathBuf, ui: bool| {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()).collect();
            paths.sort();
            for p in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "aos")) {
                let text = std::fs::read_to_string(&p).unwrap();
                let name = if ui { p.file_name().unwrap().to_string_lossy().into_owned() } else { p.to_string_lossy().into_owned() };
                out.push((name, text, ui));
            }
        };
        dir(root.join("compiler/tests/ui/check"), true);
        dir(root.join("examples"), false);
        dir(root.join("examples/tests"), false);
        dir(root.join("lsp/tests/fixtures"), false);
        out
    })
}

fn loader(ui: bool) -> &'static dyn FileLoader {
    if ui { &FixtureLoader } else { &FsLoader }
}

fn scratch(path: &str, text: &str, ui: bool) -> Analysis {
    check_with(path, text, loader(ui), CheckOptions { program: false })
}

/// The two analyses are the same, field by field.
fn assert_same(inc: &Analysis, full: &Analysis, context: &str) {
    assert_eq!(inc.main, full.main, "{context}");
    let texts = |a: &Analysis| a.sources.iter().map(|(id, p, t)| (id, p.to_string(), t.to_string())).collect::<Vec<_>>();
    assert_eq!(texts(inc), texts(full), "sources: {context}");
    if inc.diagnostics != full.diagnostics {
        let only = |a: &Analysis, b: &Analysis| a.diagnostics.iter().filter(|d| !b.diagnostics.contains(d)).cloned().collect::<Vec<_>>();
        panic!("diagnostics differ: {context}\nonly incremental: {:?}\nonly from scratch: {:?}", only(inc, full), only(full, inc));
    }
    assert_eq!(inc.files, full.files, "trees: {context}");
    assert_eq!(inc.cost, full.cost, "cost: {context}");
    assert_eq!(inc.cost.exact, full.cost.exact, "cost exactness: {context}");
    assert!(inc.program.is_none() && full.program.is_none(), "{context}");
    assert_eq!(inc.tests.len(), full.tests.len(), "{context}");
}

/// What one random edit does at a position.
#[derive(Clone, Debug)]
enum Edit {
    Insert(u16, &'static str),
    Delete(u16, u8),
}

const INSERTS: &[&str] = &[
    "x", "a", "_", "1", " ", "\n", "\"", "{", "}", "(", ")", ":", ",", ".", "$", "é", "//", "/// d\n",
    "\n  step z = llm executor(\"hi {topic}\")\n", "\n  budget: $0.000001\n", "\n  retry: -1\n", "w1(topic: \"t\")",
    " max_tokens: 90000000 ", "\n  step y = w0(topic: \"q\")\n", "\n  step q = crm.lookup(id: topic)\n", "b", "c", "topic",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<u16>(), prop::sample::select(INSERTS)).prop_map(|(p, s)| Edit::Insert(p, s)),
        1 => (any::<u16>(), 1u8..6).prop_map(|(p, n)| Edit::Delete(p, n)),
    ]
}

fn boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, e: &Edit) -> String {
    let pos = |p: u16| boundary(text, (p as usize * text.len()) / (u16::MAX as usize + 1));
    let mut out = text.to_string();
    match e {
        Edit::Insert(p, s) => out.insert_str(pos(*p), s),
        Edit::Delete(p, n) => {
            let a = pos(*p);
            let b = boundary(text, a + *n as usize);
            out.replace_range(a..b, "");
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random edit sequences on every fixture: after each edit, the
    /// incremental analysis equals the analysis from scratch.
    #[test]
    fn recheck_equals_a_check_from_scratch(fixture in any::<prop::sample::Index>(), edits in prop::collection::vec(edit(), 1..8)) {
        let all = fixtures();
        let (path, text, ui) = &all[fixture.index(all.len())];
        let mut text = text.clone();
        let mut analysis = scratch(path, &text, *ui);
        for (k, e) in edits.iter().enumerate() {
            let next = apply(&text, e);
            let (inc, how) = recheck(analysis, &next, loader(*ui));
            let full = scratch(path, &next, *ui);
            assert_same(&inc, &full, &format!("{path}, edit {k} {e:?} ({how:?})"));
            analysis = inc;
            text = next;
        }
    }
}

/// An edit inside one workflow of a large file re-checks that workflow (and
/// its callers) only, and still equals the check from scratch; with byte
/// counts, and with exact counts (a finding elsewhere quotes figures).
#[test]
fn an_edit_inside_a_workflow_is_rechecked_alone() {
    for findings in [false, true] {
        let text = generated(findings);
        let first = scratch("gen.aos", &text, false);
        assert_eq!(first.cost.exact, findings);
        // Inside the intent of w1 (called by w2, itself called by nobody).
        let at = text.find("intent: \"workflow 1\"").unwrap() + 12;
        let mut next = text.clone();
        next.insert(at, 'x');
        let (inc, how) = recheck(first, &next, &FsLoader);
        assert_eq!(how, Recheck::Incremental { workflows: 2 }, "w1 and its caller w2");
        assert_same(&inc, &scratch("gen.aos", &next, false), "intent edit");
        // A new step with a typo: an unknown-name finding, located right.
        let at = next.find("  return c\n}\n\n/// Workflow number 6.").unwrap();
        let mut typo = next.clone();
        typo.insert_str(at, "  step t = llm executor(\"{topci}\")\n");
        let (inc, how) = recheck(inc, &typo, &FsLoader);
        assert!(matches!(how, Recheck::Incremental { .. }), "{how:?}");
        assert_same(&inc, &scratch("gen.aos", &typo, false), "typo");
        assert!(inc.diagnostics.iter().any(|d| d.code == aos_compiler::Code::E0101), "{:?}", inc.diagnostics);
    }
}

/// Edits inside a fan-out block are re-checked incrementally and give what
/// a whole check gives: the block is checked as the workflow it runs as
/// (names, types and cost inside it), and its cost entry (`w1.fan`) follows.
#[test]
fn an_edit_inside_a_fan_out_block_is_rechecked_as_a_whole_check_does() {
    let text = generated_with_blocks();
    let first = scratch("gen.aos", &text, false);
    assert!(first.diagnostics.iter().all(|d| !d.is_error()), "{:?}", first.diagnostics);
    assert!(first.cost.workflows.contains_key("w1.fan"), "{:?}", first.cost.workflows.keys());
    let block = text.find("    step s = llm executor(\"About {r.id}").unwrap();
    let mut with_step = text.clone();
    with_step.insert_str(block, "    step q = crm.lookup(id: topci)\n");
    let edits = [
        ("a typo inside the block", text.replacen("About {r.id} and {t}", "About {r.idd} and {tt}", 1)),
        ("a wrong argument type inside the block", text.replacen("crm.lookup(id: t)", "crm.lookup(id: 5)", 1)),
        ("a dearer step inside the block", text.replacen("{ max_tokens: 50 }", "{ max_tokens: 5000 }", 1)),
        ("a new step inside the block", with_step),
    ];
    for (what, next) in edits {
        assert_ne!(next, text, "{what}");
        let (inc, how) = recheck(scratch("gen.aos", &text, false), &next, &FsLoader);
        assert!(matches!(how, Recheck::Incremental { .. }), "{what}: {how:?}");
        let full = scratch("gen.aos", &next, false);
        assert_same(&inc, &full, what);
        if what.contains("dearer") {
            assert_ne!(full.cost.workflows.get("w1.fan"), first.cost.workflows.get("w1.fan"), "{what}");
        } else {
            assert!(full.diagnostics.iter().any(|d| d.is_error()), "{what}: {:?}", full.diagnostics);
        }
    }
}

/// Typing inside workflow bodies: 150 single-character edits at pseudo-random
/// places of the steps; nearly all take the incremental path, and each
/// result equals the check from scratch.
#[test]
fn typing_inside_workflows_stays_incremental() {
    let mut text = generated(false);
    let mut analysis = scratch("gen.aos", &text, false);
    let mut seed: u64 = 0x5eed;
    let mut incremental = 0;
    for k in 0..150 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // A place inside a step line (after `step `), so inside a body.
        let steps: Vec<usize> = text.match_indices("  step ").map(|(i, _)| i + 7).collect();
        let at = steps[(seed >> 33) as usize % steps.len()] + (seed >> 20) as usize % 9;
        let ch = ['x', 'a', '1', ' ', '_'][(seed >> 8) as usize % 5];
        let mut next = text.clone();
        next.insert(at, ch);
        let (inc, how) = recheck(analysis, &next, &FsLoader);
        if matches!(how, Recheck::Incremental { .. }) {
            incremental += 1;
        } else {
            eprintln!("edit {k}: {how:?}");
        }
        assert_same(&inc, &scratch("gen.aos", &next, false), &format!("edit {k} at {at} ({how:?})"));
        analysis = inc;
        text = next;
    }
    assert!(incremental >= 120, "only {incremental} of 150 edits were incremental");
}

/// Edits outside any workflow's body fall back to a whole check.
#[test]
fn an_edit_of_a_declaration_checks_the_whole_program() {
    let text = generated(false);
    let first = scratch("gen.aos", &text, false);
    let next = text.replace("role executor = [m]", "role executor = [m, o]");
    let (inc, how) = recheck(first, &next, &FsLoader);
    assert!(matches!(how, Recheck::Whole(_)), "{how:?}");
    assert_same(&inc, &scratch("gen.aos", &next, false), "declaration edit");
}

