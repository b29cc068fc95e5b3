//! The sandbox of `shell.exec` and `exec:` tools: what programs can do, and
//! the escapes they cannot make. Needs bubblewrap (`.ci/run` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aos_runtime::tools::exec::{ExecTool, ShellExec};
use aos_runtime::tools::sandbox::{Isolation, Limits, Output, Sandbox};
use aos_runtime::tools::{Tool, ToolCtx, ToolError};
use serde_json::{json, Value};

fn bwrap() -> Isolation {
    match Isolation::detect(false) {
        i @ Isolation::Bubblewrap(_) => i,
        other => panic!("these tests need bubblewrap (`apt-get install bubblewrap`): {other:?}"),
    }
}

fn limits() -> Limits {
    Limits { cpu_secs: 5, memory_bytes: 512 << 20, file_size_bytes: 1 << 20, processes: 16, wall: Duration::from_secs(20), ..Limits::default() }
}

struct Fixture {
    dir: tempfile::TempDir,
    sandbox: Sandbox,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(limits())
    }
    fn with(limits: Limits) -> Fixture {
        Fixture { dir: tempfile::tempdir().unwrap(), sandbox: Sandbox::new(bwrap(), limits) }
    }
    fn ws(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }
    async fn sh(&self, script: &str) -> Output {
        self.run(&["sh", "-c", script], None).await
    }
    async fn run(&self, argv: &[&str], stdin: Option<&str>) -> Output {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        self.sandbox.run(&argv, stdin.map(str::as_bytes), &self.ws()).await.unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Processes on the host whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = text(&cmd).replace('\0', " ");
            if cmd.contains(marker) && !cmd.contains("cargo") {
                found.push(format!("{:?}: {cmd}", e.file_name()));
            }
        }
    }
    found
}

// ---- what programs can do ----

#[tokio::test]
async fn echo_prints_and_exits_zero() {
    let f = Fixture::new();
    let out = f.run(&["echo", "hello", "sandbox"], None).await;
    assert_eq!((out.status, text(&out.stdout).as_str()), (0, "hello sandbox\n"), "{}", text(&out.stderr));
    assert!(!out.timed_out && !out.truncated);
}

#[tokio::test]
async fn stdin_reaches_the_program() {
    let f = Fixture::new();
    let out = f.run(&["tr", "a-z", "A-Z"], Some("shout\n")).await;
    assert_eq!(text(&out.stdout), "SHOUT\n");
}

#[tokio::test]
async fn exit_status_and_stderr_come_back() {
    let f = Fixture::new();
    let out = f.sh("echo oops >&2; exit 7").await;
    assert_eq!(out.status, 7);
    assert_eq!(text(&out.stderr), "oops\n");
}

#[tokio::test]
async fn the_workspace_is_shared_with_the_host() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.ws()).unwrap();
    std::fs::write(f.ws().join("in.txt"), "from the host\n").unwrap();
    let out = f.sh("cat in.txt; pwd; echo from the sandbox > out.txt").await;
    assert_eq!(out.status, 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from the host\n/workspace\n");
    assert_eq!(std::fs::read_to_string(f.ws().join("out.txt")).unwrap(), "from the sandbox\n");
}

#[tokio::test]
async fn the_environment_is_empty_but_for_basics() {
    let f = Fixture::new();
    let out = f.run(&["env"], None).await;
    let env = text(&out.stdout);
    // cargo sets CARGO_* for this test process: none of it may leak.
    assert!(!env.contains("CARGO"), "{env}");
    assert!(env.contains("HOME=/workspace"), "{env}");
}

#[tokio::test]
async fn output_is_bounded() {
    let f = Fixture::with(Limits { output_bytes: 1000, ..limits() });
    let out = f.run(&["head", "-c", "500000", "/dev/zero"], None).await;
    assert_eq!(out.stdout.len(), 1000);
    assert!(out.truncated);
}

#[tokio::test]
async fn without_a_sandbox_nothing_runs_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let refused = Sandbox::new(Isolation::detect_with(None, false), limits());
    let err = refused.run(&["echo".into(), "hi".into()], None, dir.path()).await.unwrap_err();
    assert!(matches!(err, ToolError::Denied(_)), "{err:?}");
    let err = err.to_string();
    assert!(err.contains("no sandbox is available") && err.contains("AOS_ALLOW_UNSANDBOXED=1"), "{err}");
    let allowed = Sandbox::new(Isolation::detect_with(None, true), limits());
    assert_eq!(allowed.isolation, Isolation::Unsandboxed);
    let out = allowed.run(&["sh".into(), "-c".into(), "echo hi; pwd".into()], None, dir.path()).await.unwrap();
    assert_eq!(text(&out.stdout), format!("hi\n{}\n", dir.path().canonicalize().unwrap().display()));
}

// ---- escapes, each refused ----

#[tokio::test]
async fn escape_writing_outside_the_workspace() {
    let f = Fixture::new();
    let tag = format!("aos-escape-{}", std::process::id());
    let parent = f.dir.path().join(&tag);
    let script = format!(
        "for p in /usr/{tag} /etc/{tag} /{tag} /workspace/../{tag} {parent}; do echo x > $p && echo wrote $p; done; echo x > /tmp/{tag} && echo tmp",
        parent = parent.display()
    );
    let out = f.sh(&script).await;
    let stdout = text(&out.stdout);
    // /tmp is private: writable inside, invisible outside. Nothing else is writable.
    assert_eq!(stdout, "tmp\n", "{}", text(&out.stderr));
    for p in [format!("/usr/{tag}"), format!("/etc/{tag}"), format!("/{tag}"), format!("/tmp/{tag}")] {
        assert!(!Path::new(&p).exists(), "{p} was written on the host");
    }
    assert!(!parent.exists());
}

#[tokio::test]
async fn escape_reading_root_and_shadow() {
    let f = Fixture::new();
    let out = f.sh("cat /etc/shadow; cat /etc/gshadow; ls -a /root; cat /root/.bashrc; ls /etc").await;
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("root:"), "{stdout}");
    assert!(!stdout.contains("shadow") && !stdout.contains("sudoers") && !stdout.contains("ssh"), "{stdout}");
    assert!(stdout.contains("passwd"), "/etc/passwd is visible for tools that look users up: {stdout}");
    assert!(text(&out.stderr).contains("/etc/shadow: No such file"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn escape_reading_a_host_file_next_to_the_workspace() {
    let f = Fixture::new();
    let secret = f.dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP SECRET").unwrap();
    let out = f.sh(&format!("cat {}; cat ../secret.txt", secret.display())).await;
    assert!(!text(&out.stdout).contains("TOP SECRET"));
    assert_ne!(out.status, 0);
}

#[tokio::test]
async fn escape_via_symlinks_planted_in_the_workspace() {
    let f = Fixture::new();
    let secret = f.dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP SECRET").unwrap();
    std::fs::create_dir_all(f.ws()).unwrap();
    std::os::unix::fs::symlink(&secret, f.ws().join("to-secret")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", f.ws().join("to-shadow")).unwrap();
    std::os::unix::fs::symlink("/root", f.ws().join("to-root")).unwrap();
    std::os::unix::fs::symlink("..", f.ws().join("up")).unwrap();
    let out = f.sh("cat to-secret; cat to-shadow; ls to-root; cat up/secret.txt; ln -s / rootfs && ls rootfs/").await;
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("TOP SECRET") && !stdout.contains("root:"), "{stdout}");
    // The sandbox's own root has only what was bound into it.
    let entries: Vec<&str> = stdout.lines().collect();
    assert!(entries.contains(&"usr") && entries.contains(&"workspace"), "{stdout}");
    for host_only in ["root", "home", "var", "opt", "srv", "mnt"] {
        assert!(!entries.contains(&host_only), "{host_only} is visible: {stdout}");
    }
}

#[tokio::test]
async fn escape_opening_a_network_connection() {
    let f = Fixture::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "import socket\nfor host in ['127.0.0.1', '1.1.1.1']:\n  try:\n    socket.create_connection((host, {port}), timeout=2); print('connected', host)\n  except OSError as e:\n    print('refused', host, e)\n"
    );
    let out = f.run(&["python3", "-c", &script], None).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("refused 127.0.0.1") && stdout.contains("refused 1.1.1.1"), "{stdout}{}", text(&out.stderr));
    assert!(!stdout.contains("connected"));
    assert_eq!(listener.accept().map_err(|e| e.kind()).err(), Some(std::io::ErrorKind::WouldBlock), "the listener saw a connection");
}

#[tokio::test]
async fn escape_exceeding_memory() {
    let f = Fixture::new();
    let out = f.run(&["python3", "-c", "b = bytearray(2 * 1024**3); print('allocated', len(b))"], None).await;
    assert!(!text(&out.stdout).contains("allocated"));
    assert_ne!(out.status, 0);
    assert!(text(&out.stderr).contains("MemoryError"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn escape_exceeding_cpu() {
    let f = Fixture::with(Limits { cpu_secs: 1, wall: Duration::from_secs(60), ..limits() });
    let started = Instant::now();
    let out = f.sh("while :; do :; done").await;
    assert!(!out.timed_out, "the CPU limit, not the wall clock, must end it");
    assert!(matches!(out.signal, Some(24) | Some(9)), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn escape_exceeding_the_file_size() {
    let f = Fixture::with(Limits { output_bytes: 8 << 20, ..limits() });
    let out = f.run(&["head", "-c", "4000000", "/dev/zero"], None).await;
    assert_eq!(out.stdout.len(), 4_000_000, "a pipe is not a file");
    let out = f.sh("head -c 4000000 /dev/zero > big").await;
    let size = std::fs::metadata(f.ws().join("big")).unwrap().len();
    assert_eq!(size, 1 << 20, "wrote {size} bytes");
    assert_eq!(out.signal, Some(25), "SIGXFSZ: {out:?}");
}

/// Issue 17, finding 8: the private /tmp was a tmpfs of half the host's
/// memory, outside the address-space limit. It is bounded now.
#[tokio::test]
async fn escape_by_filling_tmp() {
    let f = Fixture::with(Limits { tmp_bytes: 4 << 20, file_size_bytes: 64 << 20, workspace_bytes: 64 << 20, ..limits() });
    let out = f.sh("head -c 16000000 /dev/zero > /tmp/fill; echo status=$?; df -k /tmp | tail -n 1; du -k /tmp/fill").await;
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("No space left on device"), "{stdout} {stderr}");
    let kib: u64 = stdout.lines().last().unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(kib <= 4 * 1024, "wrote {kib} KiB to /tmp: {stdout}");
}

/// Issue 17, finding 8: the workspace had no bound beyond the size of one
/// file; many files under it filled the disk. Now the program is killed
/// when the workspace grows past its quota and the step fails clearly.
#[tokio::test]
async fn escape_by_filling_the_workspace_with_many_files() {
    let f = Fixture::with(Limits { file_size_bytes: 1 << 20, workspace_bytes: 8 << 20, ..limits() });
    let started = Instant::now();
    // 1 MiB files (each within the file limit) without end.
    let out = f.sh("i=0; while :; do head -c 1048576 /dev/zero > f$i || exit 3; i=$((i+1)); done").await;
    assert!(started.elapsed() < Duration::from_secs(15), "{out:?}");
    let used = out.workspace_exceeded.unwrap_or_else(|| panic!("not stopped for its workspace: {out:?}"));
    assert!(used > 8 << 20, "{used}");
    let on_disk = aos_runtime::tools::sandbox::tree_bytes(&f.ws());
    // Stopped within a few intervals of the quota, not after filling the disk.
    assert!(on_disk < 64 << 20, "the workspace holds {} MiB", on_disk >> 20);
    // Through the tool, the step fails and says why.
    let tool = ShellExec { sandbox: Arc::new(Sandbox::new(bwrap(), Limits { file_size_bytes: 1 << 20, workspace_bytes: 8 << 20, ..limits() })) };
    let ws = tempfile::tempdir().unwrap();
    let ctx = ToolCtx { workspace: ws.path().to_path_buf(), idempotency_key: None, run_id: "r".into(), step: "s".into(), ..Default::default() };
    let e = tool.call(json!({"command": ["sh", "-c", "i=0; while :; do head -c 1048576 /dev/zero > f$i; i=$((i+1)); done"]}), &ctx).await.unwrap_err();
    assert!(matches!(e, ToolError::Denied(_)), "{e:?}");
    let e = e.to_string();
    assert!(e.contains("over its quota of 8 MiB") && e.contains("AOS_EXEC_WORKSPACE_MB"), "{e}");
}

#[tokio::test]
async fn escape_exceeding_the_process_limit() {
    let f = Fixture::new();
    let script = "import os, time\nn = 0\nfor i in range(200):\n  try:\n    pid = os.fork()\n  except OSError:\n    break\n  if pid == 0:\n    time.sleep(5); os._exit(0)\n  n += 1\nprint(n)\n";
    let out = f.run(&["python3", "-c", script], None).await;
    let n: u64 = text(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("{out:?}"));
    // A few of the user's processes may belong to other sandboxes running now.
    assert!(n < 40, "forked {n} processes");
}

#[tokio::test]
async fn escape_by_fork_bomb() {
    let f = Fixture::with(Limits { wall: Duration::from_secs(3), ..limits() });
    let marker = format!("forkbomb{}", std::process::id());
    let started = Instant::now();
    let out = f.sh(&format!(": {marker}; b() {{ b | b & }}; b; sleep 60")).await;
    assert!(started.elapsed() < Duration::from_secs(10), "{out:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(processes_with(&marker), Vec::<String>::new());
}

#[tokio::test]
async fn escape_outliving_the_wall_clock_limit() {
    let f = Fixture::with(Limits { wall: Duration::from_secs(1), ..limits() });
    let marker = format!("outlive{}", std::process::id());
    let started = Instant::now();
    let out = f.sh(&format!(": {marker}; (sleep 2; echo late > late) & (setsid sh -c 'sleep 2; echo late > late2' &); sleep 30")).await;
    assert!(out.timed_out);
    assert!(started.elapsed() < Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!f.ws().join("late").exists() && !f.ws().join("late2").exists());
    assert_eq!(processes_with(&marker), Vec::<String>::new());
}

#[tokio::test]
async fn escape_by_double_fork_and_setsid_after_exit() {
    let f = Fixture::new();
    let started = Instant::now();
    let out = f.sh("(setsid sh -c 'sleep 4; echo late > late' &); (nohup sh -c 'sleep 4; echo late > late2' >/dev/null 2>&1 &); exit 0").await;
    assert_eq!(out.status, 0);
    assert!(started.elapsed() < Duration::from_millis(3500), "the program's exit must not wait for orphans");
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(!f.ws().join("late").exists() && !f.ws().join("late2").exists());
}

#[tokio::test]
async fn escape_outliving_the_step_timeout() {
    // The scheduler enforces `timeout:` by dropping the tool's future.
    let f = Fixture::new();
    let tool = ShellExec { sandbox: Arc::new(Sandbox::new(bwrap(), limits())) };
    let ctx = ToolCtx { workspace: f.ws(), idempotency_key: None, ..Default::default() };
    let args = json!({"command": ["sh", "-c", "(setsid sh -c 'sleep 2; echo late > late' &); sleep 2; echo late > late2"]});
    let res = tokio::time::timeout(Duration::from_millis(800), tool.call(args, &ctx)).await;
    assert!(res.is_err());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!f.ws().join("late").exists() && !f.ws().join("late2").exists());
}

#[tokio::test]
async fn escape_signalling_or_seeing_host_processes() {
    let f = Fixture::new();
    let me = std::process::id();
    let out = f.sh(&format!("kill -9 {me}; cat /proc/{me}/cmdline; ls /proc | grep -c '^[0-9]'")).await;
    assert!(!text(&out.stdout).contains("sandbox-"), "{out:?}");
    let visible: u32 = text(&out.stdout).lines().last().unwrap_or("0").trim().parse().unwrap();
    assert!(visible < 10, "{visible} processes visible");
}

#[tokio::test]
async fn escape_by_privilege() {
    let f = Fixture::new();
    let out = f.sh("grep CapEff /proc/self/status; mount -t tmpfs none /usr 2>&1 || echo nomount; su -c id 2>&1 || echo nosu").await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("CapEff:\t0000000000000000"), "{stdout}");
    assert!(stdout.contains("nomount") && stdout.contains("nosu"), "{stdout}");
}

// ---- the tools ----

#[tokio::test]
async fn shell_exec_returns_status_stdout_and_stderr() {
    let f = Fixture::new();
    let tool = ShellExec { sandbox: Arc::new(Sandbox::new(bwrap(), limits())) };
    let ctx = ToolCtx { workspace: f.ws(), idempotency_key: None, ..Default::default() };
    let v = tool.call(json!({"command": ["sh", "-c", "cat; echo err >&2; exit 3"], "stdin": "in"}), &ctx).await.unwrap();
    assert_eq!(v, json!({"status": 3, "stdout": "in", "stderr": "err\n"}));
    let err = tool.call(json!({"command": []}), &ctx).await.unwrap_err();
    assert!(matches!(err, ToolError::BadInput(_)), "{err:?}");
    let err = err.to_string();
    assert!(err.contains("empty"), "{err}");
    let v = tool.call(json!({"command": ["no-such-program-aos"]}), &ctx).await.unwrap();
    assert_ne!(v["status"], json!(0));
}

#[tokio::test]
async fn shell_exec_says_which_limit_ended_the_program() {
    let f = Fixture::new();
    let tool = ShellExec { sandbox: Arc::new(Sandbox::new(bwrap(), Limits { cpu_secs: 1, ..limits() })) };
    let ctx = ToolCtx { workspace: f.ws(), idempotency_key: None, ..Default::default() };
    let v = tool.call(json!({"command": ["sh", "-c", "while :; do :; done"]}), &ctx).await.unwrap();
    assert!(v["stderr"].as_str().unwrap().contains("CPU limit"), "{v}");
    let tool = ShellExec { sandbox: Arc::new(Sandbox::new(bwrap(), Limits { wall: Duration::from_secs(1), ..limits() })) };
    let err = tool.call(json!({"command": ["sleep", "10"]}), &ctx).await.unwrap_err();
    assert!(matches!(err, ToolError::Timeout(_)), "{err:?}");
    let err = err.to_string();
    assert_eq!(err, "shell.exec `sleep 10`: killed after the wall-clock limit of 1s");
}

fn exec_tool(argv: &[&str], returns_string: bool) -> ExecTool {
    ExecTool {
        name: "calc.add".into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        returns_string,
        sandbox: Arc::new(Sandbox::new(bwrap(), limits())),
    }
}

#[tokio::test]
async fn exec_tools_take_json_on_stdin_and_answer_json_on_stdout() {
    let f = Fixture::new();
    let ctx = ToolCtx { workspace: f.ws(), idempotency_key: None, ..Default::default() };
    let add = exec_tool(&["python3", "-c", "import json, sys; a = json.load(sys.stdin); print(json.dumps({'sum': a['x'] + a['y']}))"], false);
    assert_eq!(add.call(json!({"x": 2, "y": 40}), &ctx).await.unwrap(), json!({"sum": 42}));

    let text_tool = exec_tool(&["sh", "-c", "echo plain words"], true);
    assert_eq!(text_tool.call(json!({}), &ctx).await.unwrap(), Value::String("plain words".into()));

    let bad = exec_tool(&["sh", "-c", "echo plain words"], false);
    let err = bad.call(json!({}), &ctx).await.unwrap_err();
    assert!(matches!(err, ToolError::Failed(_)), "{err:?}");
    let err = err.to_string();
    assert!(err.starts_with("tool `calc.add` (`sh -c echo plain words`): its stdout is not one JSON value"), "{err}");

    let failing = exec_tool(&["sh", "-c", "echo 'bad input' >&2; exit 2"], false);
    let err = failing.call(json!({}), &ctx).await.unwrap_err();
    assert!(matches!(err, ToolError::Failed(_)), "{err:?}");
    let err = err.to_string();
    assert!(err.ends_with("exited with status 2; stderr: bad input"), "{err}");
}

#[tokio::test]
async fn escape_through_file_tools_via_a_symlink_the_program_planted() {
    // The program cannot read /etc/shadow, but the runtime (maybe root) can:
    // file.read and file.write must not follow links out of the workspace.
    let f = Fixture::new();
    let secret = f.dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP SECRET").unwrap();
    let script = format!("ln -s /etc/shadow shadow; ln -s {} secret; ln -s .. up; ln -s /tmp tmp; mkdir -p d; ln -s ../../ d/up2", secret.display());
    let out = f.sh(&script).await;
    assert_eq!(out.status, 0, "{}", text(&out.stderr));
    let ctx = ToolCtx { workspace: f.ws(), idempotency_key: None, ..Default::default() };
    let read = aos_runtime::tools::file::Read;
    for path in ["shadow", "secret", "up/secret.txt", "d/up2/secret.txt"] {
        let err = read.call(json!({"path": path}), &ctx).await.unwrap_err();
        assert!(matches!(err, ToolError::Denied(_)), "{err:?}");
        let err = err.to_string();
        assert!(err.contains("leaves the run's workspace"), "{path}: {err}");
    }
    let write = aos_runtime::tools::file::Write;
    for path in ["secret", "up/written.txt", "tmp/written.txt", "d/up2/written.txt"] {
        let err = write.call(json!({"path": path, "content": "pwned"}), &ctx).await.unwrap_err();
        assert!(matches!(err, ToolError::Denied(_)), "{err:?}");
        let err = err.to_string();
        assert!(err.contains("leaves the run's workspace"), "{path}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "TOP SECRET");
    assert!(!f.dir.path().join("written.txt").exists());
    // Links that stay inside the workspace still work.
    std::fs::write(f.ws().join("real.txt"), "inside").unwrap();
    std::os::unix::fs::symlink("real.txt", f.ws().join("alias.txt")).unwrap();
    assert_eq!(read.call(json!({"path": "alias.txt"}), &ctx).await.unwrap(), json!("inside"));
    write.call(json!({"path": "d/new/deep.txt", "content": "ok"}), &ctx).await.unwrap();
    assert_eq!(std::fs::read_to_string(f.ws().join("d/new/deep.txt")).unwrap(), "ok");
}

#[tokio::test]
async fn unsandboxed_output_survives_a_daemon_holding_the_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sandbox::new(Isolation::detect_with(None, true), limits());
    let started = Instant::now();
    let script = "echo before; (setsid sleep 6 &); echo after";
    let out = s.run(&["sh".into(), "-c".into(), script.into()], None, dir.path()).await.unwrap();
    assert_eq!(text(&out.stdout), "before\nafter\n");
    assert!(started.elapsed() < Duration::from_secs(5));
}
