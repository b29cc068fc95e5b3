//! What a hostile or careless user broke (issue 17), each reproduced against
//! the real binary: `use` of devices, FIFOs and files outside the project;
//! run inputs and returned values of the wrong type; hand-edited IR; a
//! password in a URL; a closed stdout; the language server's exit status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aos_compiler::ir::{Effect, Expr, Program, Risk, SimOptions, Type};
use aos_runtime::testkit::*;
use serde_json::{Value, json};

fn aosc_in(dir: &Path, home: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aosc"))
        .args(args)
        .current_dir(dir)
        .env("AOS_HOME", home)
        .env_remove("AOS_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nothing here may hang: a bounded wait, then the process is killed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("aosc {args:?} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn aosc(home: &Path, args: &[&str]) -> Output {
    aosc_in(home, home, args)
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

const MAIN_HEAD: &str = "model echo = sim(\"echo\") { input: $0.10/M, output: $0.40/M, context: 8192 }\nrole executor = [echo]\n";

// --- 1. `use` reads only regular files of bounded size ---------------------

#[test]
fn use_of_a_device_or_a_fifo_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("aos.toml"), "").unwrap();
    let fifo = dir.path().join("pipe.aos");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for target in ["/dev/zero", fifo.to_str().unwrap()] {
        let prog = dir.path().join("main.aos");
        std::fs::write(&prog, format!("use \"{target}\"\n{MAIN_HEAD}")).unwrap();
        let started = Instant::now();
        let o = aosc(dir.path(), &["check", prog.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{}", err(&o));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(err(&o).contains("E0104"), "{}", err(&o));
    }
}

// --- 2. `use` confined to the project; never quoting a non-.aos file -------

#[test]
fn use_outside_the_project_is_refused_and_nothing_is_quoted() {
    let outer = tempfile::tempdir().unwrap();
    let project = outer.path().join("project");
    std::fs::create_dir_all(project.join("pipelines")).unwrap();
    std::fs::write(project.join("aos.toml"), "").unwrap();
    std::fs::write(
        outer.path().join("secret.aos"),
        "TOPSECRET-OUTSIDE hunter2\n",
    )
    .unwrap();
    std::fs::write(
        project.join("shadow"),
        "root:TOPSECRET-INSIDE:19000:0:99999:7:::\n",
    )
    .unwrap();
    let prog = project.join("pipelines/main.aos");

    // `..` out of the project root: refused without reading it.
    std::fs::write(&prog, format!("use \"../../secret.aos\"\n{MAIN_HEAD}")).unwrap();
    let o = aosc_in(&project, &project, &["check", prog.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("outside the project roots"), "{}", err(&o));
    assert!(!err(&o).contains("TOPSECRET"), "{}", err(&o));

    // Inside the root but not .aos: an error at the `use`, the file unquoted.
    std::fs::write(&prog, format!("use \"../shadow\"\n{MAIN_HEAD}")).unwrap();
    for format in ["human", "json"] {
        let o = aosc_in(
            &project,
            &project,
            &["check", "--format", format, prog.to_str().unwrap()],
        );
        assert_eq!(o.status.code(), Some(1));
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), err(&o));
        assert!(all.contains("does not parse as .aos"), "{all}");
        assert!(
            !all.contains("TOPSECRET") && !all.contains("19000"),
            "{all}"
        );
    }

    // A root named in aos.toml is allowed.
    let shared = outer.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("types.aos"), "type Note = { text: String }\n").unwrap();
    std::fs::write(project.join("aos.toml"), "use_roots = [\"../shared\"]\n").unwrap();
    std::fs::write(
        &prog,
        format!("use \"../../shared/types.aos\"\n{MAIN_HEAD}"),
    )
    .unwrap();
    let o = aosc_in(&project, &project, &["check", prog.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
}

// --- 3. run inputs and the returned value checked against their types -------

fn typed() -> Program {
    let mut p = program();
    with_role(
        &mut p,
        "executor",
        vec![sim_model("echo", SimOptions::default())],
    );
    let mut wf = workflow("w");
    let mut n = param("n", None);
    n.ty = Type::Int;
    let mut level = param("level", Some("low"));
    level.ty = Type::Enum {
        name: "Level".into(),
        variants: vec!["low".into(), "high".into()],
    };
    wf.params.extend([n, level]);
    add(
        &mut wf,
        llm("a", "executor", interp(vec![s("n is "), param_ref("n")])),
    );
    wf.ret_expr = Some(step_ref("a"));
    wf.ret = Some(Type::String);
    p.workflows.insert("w".into(), wf);
    p
}

fn write_program(dir: &Path, p: &Program) -> String {
    let path = dir.join("prog.json");
    std::fs::write(&path, serde_json::to_string(p).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn inputs_of_the_wrong_type_exit_2_naming_parameter_and_type() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_program(dir.path(), &typed());
    let o = aosc(dir.path(), &["run", &file, "--input", "n=hello"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("input `n`") && err(&o).contains("must be Int"),
        "{}",
        err(&o)
    );
    let o = aosc(
        dir.path(),
        &["run", &file, "--input", "n=3", "--input", "level=banana"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("input `level`") && err(&o).contains("one of low, high"),
        "{}",
        err(&o)
    );
    let o = aosc(
        dir.path(),
        &[
            "run",
            &file,
            "--input",
            "n=3",
            "--input",
            "level=high",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
}

#[test]
fn a_returned_value_of_the_wrong_type_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = typed();
    p.workflows.get_mut("w").unwrap().ret = Some(Type::Int);
    let file = write_program(dir.path(), &p);
    let o = aosc(dir.path(), &["run", &file, "--input", "n=3", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let v = stdout_json(&o);
    assert_eq!(v["status"], "failed");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("not its declared Int"),
        "{v}"
    );
}

// --- 6. hand-edited IR is verified or refused -----------------------------

fn gated() -> Program {
    let mut p = typed();
    p.tools.insert(
        "file.write".into(),
        builtin_tool(
            "file.write",
            &["path", "content"],
            Effect::External,
            Risk::High,
        ),
    );
    let wf = p.workflows.get_mut("w").unwrap();
    let mut w = tool(
        "save",
        "file.write",
        vec![("path", s("x.txt")), ("content", step_ref("a"))],
        Effect::External,
    );
    w.approval = Some("leads".into());
    w.risk = Risk::High;
    add(wf, w);
    p
}

#[test]
fn tampered_ir_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let run = |p: &Program| {
        aosc(
            dir.path(),
            &["run", &write_program(dir.path(), p), "--input", "n=1"],
        )
    };
    // The untouched program runs up to its gate.
    assert_eq!(run(&gated()).status.code(), Some(3));

    let mut cases: Vec<(&str, Program)> = Vec::new();
    let mut p = gated();
    p.workflows.get_mut("w").unwrap().steps[1].approval = None;
    cases.push(("no approval gate", p));
    let mut p = gated();
    p.workflows.get_mut("w").unwrap().steps[1].approval = None;
    p.workflows.get_mut("w").unwrap().steps[1].risk = Risk::Low;
    cases.push(("understates", p));
    let mut p = gated();
    p.version = 999;
    cases.push(("IR version 999", p));
    let mut p = gated();
    let dup = p.workflows["w"].steps[0].clone();
    p.workflows.get_mut("w").unwrap().steps.push(dup);
    cases.push(("defined twice", p));
    let mut p = gated();
    p.workflows.get_mut("w").unwrap().steps[1]
        .deps
        .push("ghost".into());
    cases.push(("does not define", p));
    let mut p = gated();
    p.workflows.get_mut("w").unwrap().budget_usd = Some(-1.0);
    cases.push(("not a finite amount", p));
    for (why, p) in cases {
        let o = run(&p);
        assert_eq!(o.status.code(), Some(2), "{why}: {}", err(&o));
        assert!(
            err(&o).contains("is refused") && err(&o).contains(why),
            "{why}: {}",
            err(&o)
        );
    }
    // Nothing of the refused programs was run.
    let runs = stdout_json(&aosc(dir.path(), &["runs", "--json"]));
    assert_eq!(runs.as_array().unwrap().len(), 1);
}

// --- 10. a password in a URL is shown as *** and never stored -------------

fn http_get_program(url: Expr) -> Program {
    let mut p = program();
    p.tools.insert(
        "http.get".into(),
        builtin_tool("http.get", &["url"], Effect::Read, Risk::Low),
    );
    let mut wf = workflow("w");
    wf.params.push(param("note", Some("none")));
    add(&mut wf, tool("g", "http.get", vec![("url", url)], Effect::Read));
    p.workflows.insert("w".into(), wf);
    p
}

/// Every byte under `dir`, lossy, concatenated with the paths.
fn all_bytes(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_type().unwrap().is_file() {
                out.push_str(&format!("\n== {}\n", e.path().display()));
                out.push_str(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

#[test]
fn a_password_written_into_a_url_literal_or_input_is_refused_before_it_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let file = write_program(src.path(), &http_get_program(s("http://admin:hunter2@127.0.0.1:9/x")));
    let o = aosc(dir.path(), &["run", &file, "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("`http://admin:***@127.0.0.1:9/x`") && err(&o).contains("secret("), "{}", err(&o));
    let file = write_program(src.path(), &http_get_program(s("http://127.0.0.1:9/x")));
    let o = aosc(dir.path(), &["run", &file, "--input", "note=see https://bo:hunter2@example.com/", "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("input `note`"), "{}", err(&o));
    let runs = stdout_json(&aosc(dir.path(), &["runs", "--json"]));
    assert_eq!(runs.as_array().unwrap().len(), 0);
    let all = all_bytes(dir.path());
    assert!(!all.contains("hunter2"), "{all}");
}

#[test]
fn a_password_in_an_http_url_never_reaches_errors_the_journal_events_or_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    const PW: &str = "hunter2-in-a-secret";
    let url = interp(vec![s("http://admin:"), Expr::Secret { name: "AOS_TEST_URL_PW".into() }, s("@127.0.0.1:9/x")]);
    let file = write_program(dir.path(), &http_get_program(url));
    let home = dir.path().join("home");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_aosc"))
            .args(args)
            .env("AOS_HOME", &home)
            .env("AOS_TEST_URL_PW", PW)
            .env("AOS_HTTP_ALLOW", "127.0.0.1:9")
            .env_remove("AOS_DATABASE_URL")
            .output()
            .unwrap()
    };
    // Port 9 (discard) on loopback: nothing listens, the connection fails.
    let o = run(&["run", &file, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let v = stdout_json(&o);
    let id = v["run_id"].as_str().unwrap();
    let mut text = format!("{}{}", String::from_utf8_lossy(&o.stdout), err(&o));
    for args in [vec!["show", id, "--json"], vec!["show", id], vec!["replay", id], vec!["events", id], vec!["audit", "verify", id]] {
        let o = run(&args);
        text.push_str(&String::from_utf8_lossy(&o.stdout));
        text.push_str(&err(&o));
    }
    assert!(text.contains("admin:***@127.0.0.1"), "{text}");
    assert!(!text.contains(PW), "{text}");
    let all = all_bytes(&home);
    assert!(!all.contains(PW), "the password is stored: {all}");
}

// --- 11. no panic on a closed stdout ------------------------------------

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_program(dir.path(), &typed());
    let o = aosc(dir.path(), &["run", &file, "--input", "n=1", "--json"]);
    let id = stdout_json(&o)["run_id"].as_str().unwrap().to_string();
    for args in [
        vec!["runs", "--json"],
        vec!["runs"],
        vec!["show", &id, "--json"],
        vec!["replay", &id],
        vec!["run", &file, "--input", "n=2", "--json"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aosc"))
            .args(&args)
            .current_dir(dir.path())
            .env("AOS_HOME", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the first byte (as `| head -c0`).
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert_ne!(o.status.code(), Some(101), "{args:?}: {}", err(&o));
        assert!(!err(&o).contains("panicked"), "{args:?}: {}", err(&o));
    }
}

// --- 13. the language server's exit status --------------------------------

fn lsp_with(input: &[u8]) -> Option<i32> {
    lsp_with_pauses(&[input])
}

/// Sends the chunks with a pause between them, as a client waits for the
/// answers to `initialize` and `shutdown`.
fn lsp_with_pauses(chunks: &[&[u8]]) -> Option<i32> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aosc"))
        .arg("lsp")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
        let _ = stdin.write_all(chunk);
        let _ = stdin.flush();
    }
    // Kept open: the server must end by itself, not at the end of input.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            drop(stdin);
            panic!("aosc lsp did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn frame(v: &Value) -> Vec<u8> {
    let body = v.to_string();
    format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

#[test]
fn the_language_server_exits_1_on_a_malformed_frame_and_on_exit_without_shutdown() {
    let init = frame(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}),
    );
    let initialized = frame(&json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));
    let exit = frame(&json!({"jsonrpc": "2.0", "method": "exit"}));
    let shutdown = frame(&json!({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}));

    let bad_length = [init.clone(), b"Content-Length: banana\r\n\r\n{}".to_vec()].concat();
    assert_eq!(lsp_with(&bad_length), Some(1));
    let bad_json = [init.clone(), b"Content-Length: 9\r\n\r\n{not json".to_vec()].concat();
    assert_eq!(lsp_with(&bad_json), Some(1));
    assert_eq!(
        lsp_with_pauses(&[&init, &[initialized.clone(), exit.clone()].concat()]),
        Some(1)
    );
    assert_eq!(
        lsp_with_pauses(&[&init, &[initialized, shutdown].concat(), &exit]),
        Some(0)
    );
}
