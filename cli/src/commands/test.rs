//! `aosc test`: run the `test "…" { … }` blocks of `.aos` files in
//! process, with scripted models and tools and a throwaway store.

use std::path::{Path, PathBuf};
use std::time::Instant;

use aos_compiler::ProjectLoader;
use aos_compiler::diagnostic::render_human;
use aos_runtime::testrun::{self, TestOutcome};
use serde_json::{json, Value};

use super::exit;

/// Run the test blocks of `.aos` files (directories are searched for `*.aos`).
#[derive(clap::Args)]
#[command(after_help = "Each test runs its workflow through the real run core and driver, with the
replies of each role and the results of each tool scripted by its `given`
lines: no network, no provider keys, and nothing written under AOS_HOME.

Exit status: 0 every test passed, 1 a test failed or a file does not check,
2 usage or I/O error.

Examples:
  aosc test examples/
  aosc test examples/hello.aos --filter Ada
  aosc test examples/ --junit target/aos-tests.xml")]
pub struct TestArgs {
    /// The files or directories to test (default: the current directory).
    #[arg(value_name = "FILE|DIR")]
    pub paths: Vec<String>,
    /// Run only the tests whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Also write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<String>,
    /// Print one JSON object with every result instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One test's result, for the reports.
struct Ran {
    file: String,
    name: String,
    line: usize,
    seconds: f64,
    result: Result<TestOutcome, String>,
}

impl Ran {
    fn passed(&self) -> bool {
        self.result.as_ref().is_ok_and(TestOutcome::passed)
    }
}

fn aos_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for e in entries {
            let hidden = e.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.') || n == "target");
            if !hidden && (e.is_dir() || e.extension().is_some_and(|x| x == "aos")) {
                aos_files(&e, out)?;
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

pub fn run(args: &TestArgs) -> u8 {
    let roots: Vec<String> = if args.paths.is_empty() { vec![".".into()] } else { args.paths.clone() };
    let mut files = Vec::new();
    for r in &roots {
        if let Err(e) = aos_files(Path::new(r), &mut files) {
            eprintln!("error: cannot read `{r}`: {e}");
            return exit::USAGE;
        }
    }
    let tokio = match super::runtime::tokio() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let mut status = exit::OK;
    let mut results: Vec<Ran> = Vec::new();
    for file in &files {
        let path = file.display().to_string();
        let text = match aos_compiler::files::read_regular(file, aos_compiler::files::MAX_PROGRAM_BYTES) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read `{path}`: {e}");
                return exit::USAGE;
            }
        };
        let analysis = aos_compiler::check(&path, &text, &ProjectLoader::for_program(file));
        let Some(program) = analysis.program.as_ref().filter(|_| !analysis.has_errors()) else {
            eprint!("{}", render_human(&analysis.diagnostics, &analysis.sources, super::stderr_color()));
            eprintln!("error: `{path}` does not check; its tests were not run");
            status = exit::ERRORS;
            continue;
        };
        for case in &analysis.tests {
            if args.filter.as_deref().is_some_and(|f| !case.name.contains(f)) {
                continue;
            }
            let (line, _, _, _) = analysis.sources.range_of(analysis.main, case.span);
            let started = Instant::now();
            let result = tokio.block_on(testrun::run(program, case)).map_err(|e| e.to_string());
            let ran = Ran { file: path.clone(), name: case.name.clone(), line, seconds: started.elapsed().as_secs_f64(), result };
            if !args.json {
                print_one(&ran);
            }
            results.push(ran);
        }
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    if failed > 0 {
        status = exit::ERRORS;
    }
    if args.json {
        let tests: Vec<Value> = results.iter().map(to_json).collect();
        println!("{}", json!({"passed": results.len() - failed, "failed": failed, "tests": tests}));
    } else {
        println!("{} passed, {failed} failed", results.len() - failed);
    }
    if let Some(out) = &args.junit
        && let Err(e) = std::fs::write(out, junit(&results))
    {
        eprintln!("error: cannot write `{out}`: {e}");
        return exit::USAGE;
    }
    status
}

fn print_one(r: &Ran) {
    match &r.result {
        Ok(o) if o.passed() => println!("ok   {}:{} {}", r.file, r.line, r.name),
        Ok(o) => {
            println!("FAIL {}:{} {}", r.file, r.line, r.name);
            for f in &o.failures {
                println!("  {}", f.expectation);
                for l in f.expected.lines() {
                    println!("  - {l}");
                }
                for l in f.actual.lines() {
                    println!("  + {l}");
                }
            }
            println!("  (- expected, + actual; the run {}{})", o.status.as_str(), o.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default());
        }
        Err(e) => println!("FAIL {}:{} {}\n  the test could not run: {e}", r.file, r.line, r.name),
    }
}

fn to_json(r: &Ran) -> Value {
    let mut v = json!({"file": r.file, "line": r.line, "name": r.name, "passed": r.passed(), "seconds": r.seconds});
    match &r.result {
        Ok(o) => {
            v["status"] = json!(o.status.as_str());
            v["output"] = o.output.clone().unwrap_or(Value::Null);
            v["cost_usd"] = json!(testrun::exact(o.cost));
            v["ran"] = json!(o.ran);
            v["skipped"] = json!(o.skipped);
            v["approvals"] = json!(o.approvals);
            v["failures"] =
                o.failures.iter().map(|f| json!({"expectation": f.expectation, "expected": f.expected, "actual": f.actual})).collect();
        }
        Err(e) => v["error"] = json!(e),
    }
    v
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one `<testsuite>` per file, one `<testcase>` per test.
fn junit(results: &[Ran]) -> String {
    let mut files: Vec<&str> = Vec::new();
    for r in results {
        if !files.contains(&r.file.as_str()) {
            files.push(&r.file);
        }
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let total: f64 = results.iter().map(|r| r.seconds).sum();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"aosc test\" tests=\"{}\" failures=\"{failed}\" time=\"{total:.3}\">\n",
        results.len()
    );
    for f in files {
        let mine: Vec<&Ran> = results.iter().filter(|r| r.file == f).collect();
        let fails = mine.iter().filter(|r| !r.passed()).count();
        let time: f64 = mine.iter().map(|r| r.seconds).sum();
        s.push_str(&format!("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\" time=\"{time:.3}\">\n", xml(f), mine.len()));
        for r in mine {
            s.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\" time=\"{:.3}\"",
                xml(&r.name),
                xml(f),
                xml(f),
                r.line,
                r.seconds
            ));
            match &r.result {
                Ok(o) if o.passed() => s.push_str("/>\n"),
                Ok(o) => {
                    let first = o.failures.first().map_or(String::new(), |f| f.expectation.clone());
                    let mut body = String::new();
                    for f in &o.failures {
                        body.push_str(&format!("{}\n  expected: {}\n  actual:   {}\n", f.expectation, f.expected, f.actual));
                    }
                    s.push_str(&format!(
                        ">\n      <failure message=\"{}\" type=\"expectation\">{}</failure>\n    </testcase>\n",
                        xml(&first),
                        xml(&body)
                    ));
                }
                Err(e) => s.push_str(&format!(">\n      <error message=\"{}\" type=\"run\"/>\n    </testcase>\n", xml(e))),
            }
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}
