//! Running a program sandboxed, for `shell.exec` and user `exec:` tools.
//!
//! Isolation is bubblewrap (`bwrap`) when it is installed: a fresh mount
//! namespace holding only read-only system directories (`/usr`, the `/bin`
//! and `/lib*` links, a few harmless files of `/etc`), a private `/tmp`, the
//! run's workspace read-write at `/workspace` (also the working directory and
//! `$HOME`), new user, PID, network, IPC, UTS and cgroup namespaces (so no
//! network at all), a new session, no capabilities, an empty environment, and
//! death with the runtime. On top of that the child gets resource limits
//! (CPU seconds, address space, file size, processes, open files, no core
//! dumps, set by `prlimit` so that no `unsafe` code runs between fork and
//! exec) and a wall-clock limit after which its whole process group is
//! killed; when the sandboxed program's main process ends, the PID namespace
//! ends with it, so nothing it started (double fork, `setsid`) survives.
//!
//! The kernel does not apply the process limit to root, so when the runtime
//! runs as root the program runs as a user of its own (uid and gid
//! 100000–159999, derived from the workspace path, so each run has its own
//! process count), with no capabilities, and the workspace directory is
//! handed to that user. bubblewrap then runs without a user namespace (which
//! would map the user back to root outside) and `setpriv` drops to the
//! sandbox user inside.
//!
//! Without bubblewrap the sandbox refuses to run anything unless the operator
//! sets `AOS_ALLOW_UNSANDBOXED=1`; then programs run with the same limits,
//! environment and working directory but without namespaces.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use rustix::process::Pid;
use tokio::sync::OnceCell;
use super::ToolError;

/// Where the workspace appears inside the bubblewrap sandbox.
pub const SANDBOX_WORKSPACE: &str = "/workspace";

/// A root runtime runs each run's programs as a user of its own, in
/// `SANDBOX_UID_BASE .. SANDBOX_UID_BASE + SANDBOX_UID_SPAN`, so that one
/// run's processes do not count against another's process limit.
const SANDBOX_UID_BASE: u32 = 100_000;
const SANDBOX_UID_SPAN: u32 = 60_000;

/// The sandbox user of a workspace: stable, so a run's later programs can
/// change the files its earlier ones wrote.
pub fn sandbox_uid(workspace: &Path) -> u32 {
    // FNV-1a: stable across builds, unlike the std hasher.
    let mut h: u32 = 0x811c_9dc5;
    for b in workspace.as_os_str().as_encoded_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    SANDBOX_UID_BASE + h % SANDBOX_UID_SPAN
}

/// Resource limits of one sandboxed program.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// CPU time in seconds (`RLIMIT_CPU`; SIGXCPU, then SIGKILL a second later).
    pub cpu_secs: u64,
    /// Address space in bytes (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Largest file the program may write, in bytes (`RLIMIT_FSIZE`).
    pub file_size_bytes: u64,
    /// Processes and threads the program may have at once (`RLIMIT_NPROC`,
    /// counted on top of what its user already runs).
    pub processes: u64,
    /// Open file descriptors (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Wall-clock limit; the step's own `timeout:` may end it sooner.
    pub wall: Duration,
    /// Bytes kept of each of stdout and stderr; the rest is read and dropped.
    pub output_bytes: usize,
    /// Size of the sandbox's private `/tmp` (a tmpfs: its pages are host
    /// memory outside the address-space limit, so it is bounded).
    pub tmp_bytes: u64,
    /// What the run's workspace may hold in all; a program that makes it
    /// larger is killed and the step fails.
    pub workspace_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            cpu_secs: 30,
            memory_bytes: 1 << 30,
            file_size_bytes: 64 << 20,
            processes: 64,
            open_files: 256,
            wall: Duration::from_secs(120),
            output_bytes: 1 << 20,
            tmp_bytes: 64 << 20,
            workspace_bytes: 256 << 20,
        }
    }
}

impl Limits {
    /// The defaults, overridden by `AOS_EXEC_CPU_SECS`, `AOS_EXEC_MEMORY_MB`,
    /// `AOS_EXEC_FILE_MB`, `AOS_EXEC_PROCESSES`, `AOS_EXEC_TIMEOUT_SECS` and
    /// `AOS_EXEC_OUTPUT_BYTES` where they are set to a number.
    pub fn from_env() -> Limits {
        let num = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<u64>().ok());
        let mut l = Limits::default();
        if let Some(v) = num("AOS_EXEC_CPU_SECS") {
            l.cpu_secs = v.max(1);
        }
        if let Some(v) = num("AOS_EXEC_MEMORY_MB") {
            l.memory_bytes = v.saturating_mul(1 << 20);
        }
        if let Some(v) = num("AOS_EXEC_FILE_MB") {
            l.file_size_bytes = v.saturating_mul(1 << 20);
        }
        if let Some(v) = num("AOS_EXEC_PROCESSES") {
            l.processes = v.max(1);
        }
        if let Some(v) = num("AOS_EXEC_TIMEOUT_SECS") {
            l.wall = Duration::from_secs(v.max(1));
        }
        if let Some(v) = num("AOS_EXEC_OUTPUT_BYTES") {
            l.output_bytes = usize::try_from(v).unwrap_or(usize::MAX);
        }
        if let Some(v) = num("AOS_EXEC_TMP_MB") {
            l.tmp_bytes = v.max(1).saturating_mul(1 << 20);
        }
        if let Some(v) = num("AOS_EXEC_WORKSPACE_MB") {
            l.workspace_bytes = v.max(1).saturating_mul(1 << 20);
        }
        l
    }
}

/// How programs are isolated.
#[derive(Clone, Debug, PartialEq)]
pub enum Isolation {
    /// bubblewrap at this path.
    Bubblewrap(PathBuf),
    /// No namespaces, only limits: the operator allowed it explicitly.
    Unsandboxed,
    /// Nothing runs; the reason says why and how to fix it.
    Refused(String),
}

impl Isolation {
    /// bubblewrap from `AOS_BWRAP` or `PATH`; without it, unsandboxed
    /// execution when the operator allowed it, else refusal.
    pub fn detect(allow_unsandboxed: bool) -> Isolation {
        let bwrap = std::env::var_os("AOS_BWRAP").map(PathBuf::from).filter(|p| p.is_file()).or_else(|| find_in_path("bwrap"));
        Isolation::detect_with(bwrap, allow_unsandboxed)
    }

    /// The decision of [`Isolation::detect`], given where bubblewrap is.
    pub fn detect_with(bwrap: Option<PathBuf>, allow_unsandboxed: bool) -> Isolation {
        match (bwrap, allow_unsandboxed) {
            (Some(p), _) => Isolation::Bubblewrap(p),
            (None, true) => Isolation::Unsandboxed,
            (None, false) => Isolation::Refused(
                "no sandbox is available: install bubblewrap (`bwrap`, e.g. `apt-get install bubblewrap`), \
                 or set AOS_ALLOW_UNSANDBOXED=1 to run programs with resource limits only"
                    .into(),
            ),
        }
    }
}

/// What a sandboxed program did.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// The exit status, or 128 + the signal that killed it.
    pub status: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// True when stdout or stderr was longer than `output_bytes`.
    pub truncated: bool,
    /// True when the wall-clock limit killed it.
    pub timed_out: bool,
    /// The program was killed for making the workspace larger than
    /// [`Limits::workspace_bytes`] (then the bytes it held).
    pub workspace_exceeded: Option<u64>,
}

fn waiting(e: std::io::Error) -> ToolError {
    ToolError::Failed(format!("waiting for the program failed: {e}"))
}

/// A configured sandbox; cheap to share.
#[derive(Debug)]
pub struct Sandbox {
    pub isolation: Isolation,
    pub limits: Limits,
    /// Whether bubblewrap actually works here, checked once on first use.
    probe: OnceCell<Result<(), ToolError>>,
}

impl Sandbox {
    /// bubblewrap from `PATH` when installed (or `AOS_BWRAP`), else refusal
    /// unless `AOS_ALLOW_UNSANDBOXED=1`; limits from the environment.
    pub fn from_env() -> Sandbox {
        let allow = matches!(std::env::var("AOS_ALLOW_UNSANDBOXED").as_deref().map(str::trim), Ok("1" | "true" | "yes"));
        Sandbox::new(Isolation::detect(allow), Limits::from_env())
    }

    pub fn new(isolation: Isolation, limits: Limits) -> Sandbox {
        Sandbox { isolation, limits, probe: OnceCell::new() }
    }

    /// Runs `argv` with `stdin` in `workspace` (created if missing).
    pub async fn run(&self, argv: &[String], stdin: Option<&[u8]>, workspace: &Path) -> Result<Output, ToolError> {
        let Some(program) = argv.first() else {
            return Err(ToolError::BadInput("the command is empty: give the program and its arguments".into()));
        };
        if program.is_empty() {
            return Err(ToolError::BadInput("the program name is empty".into()));
        }
        if let Isolation::Refused(why) = &self.isolation {
            return Err(ToolError::Denied(why.clone()));
        }
        let Some(prlimit) = find_in_path("prlimit") else {
            return Err(ToolError::Unavailable("`prlimit` (util-linux) is not installed: resource limits cannot be set, so nothing runs".into()));
        };
        let root = euid() == 0;
        // The kernel ignores the process limit for root: drop to a sandbox user.
        let drop_root = if root {
            match find_in_path("setpriv") {
                Some(p) => Some(p),
                None => {
                    return Err(ToolError::Unavailable(
                        "`setpriv` (util-linux) is not installed: the runtime runs as root and cannot drop to a sandbox user".into(),
                    ));
                }
            }
        } else {
            None
        };
        std::fs::create_dir_all(workspace).map_err(|e| ToolError::Failed(format!("cannot create the workspace {}: {e}", workspace.display())))?;
        let workspace = workspace.canonicalize().map_err(|e| ToolError::Failed(format!("cannot resolve the workspace {}: {e}", workspace.display())))?;
        let uid = if root { sandbox_uid(&workspace) } else { uid() };
        if root {
            // The program must be able to write its workspace as its own user.
            std::os::unix::fs::chown(&workspace, Some(uid), Some(uid))
                .map_err(|e| ToolError::Failed(format!("cannot hand the workspace {} to the sandbox user: {e}", workspace.display())))?;
        }
        let mut inner: Vec<String> = Vec::new();
        if let Some(setpriv) = &drop_root {
            inner.push(setpriv.to_string_lossy().into_owned());
            inner.push(format!("--reuid={uid}"));
            inner.push(format!("--regid={uid}"));
            inner.extend(
                [
                    "--clear-groups",
                    "--inh-caps=-all",
                    "--bounding-set=-all",
                    "--no-new-privs",
                    "--",
                ]
                .map(String::from),
            );
        }
        inner.extend(argv.iter().cloned());
        match &self.isolation {
            Isolation::Refused(why) => Err(ToolError::Denied(why.clone())),
            Isolation::Bubblewrap(bwrap) => {
                let probe = self
                    .probe
                    .get_or_init(|| async {
                        let mut args = inner.get(..inner.len() - argv.len()).unwrap_or_default().to_vec();
                        args.push("true".into());
                        let cmd = self.bwrap_command(&prlimit, bwrap, &args, &workspace, root, uid);
                        match self.spawn(cmd, None, false, &workspace).await {
                            Ok(out) if out.status == 0 => Ok(()),
                            Ok(out) => Err(ToolError::Unavailable(format!(
                                "bubblewrap is installed but cannot create a sandbox here (are user namespaces disabled?): {}",
                                String::from_utf8_lossy(&out.stderr).trim()
                            ))),
                            Err(e) => Err(ToolError::Unavailable(format!("bubblewrap is installed but does not start: {}", e.message()))),
                        }
                    })
                    .await;
                probe.clone()?;
                let cmd = self.bwrap_command(&prlimit, bwrap, &inner, &workspace, root, uid);
                self.spawn(cmd, stdin, true, &workspace).await
            }
            Isolation::Unsandboxed => {
                let mut cmd = Command::new(&prlimit);
                cmd.args(self.prlimit_args(uid));
                cmd.args(&inner);
                cmd.current_dir(&workspace);
                cmd.env_clear().envs(base_env(&workspace.to_string_lossy()));
                self.spawn(cmd, stdin, false, &workspace).await
            }
        }
    }

    /// `prlimit` options for a program whose real user will be `uid`.
    fn prlimit_args(&self, uid: u32) -> Vec<String> {
        let l = &self.limits;
        // RLIMIT_NPROC counts every task of the user: allow `processes` more
        // than it runs now, plus a few for bubblewrap's own.
        let nproc = count_tasks(uid).saturating_add(l.processes).saturating_add(3);
        vec![
            format!("--cpu={}:{}", l.cpu_secs, l.cpu_secs.saturating_add(1)),
            format!("--as={}", l.memory_bytes),
            // No one file may be larger than the whole workspace may be.
            format!("--fsize={}", l.file_size_bytes.min(l.workspace_bytes)),
            format!("--nproc={nproc}"),
            format!("--nofile={}", l.open_files),
            "--core=0".into(),
            "--".into(),
        ]
    }

    fn bwrap_command(&self, prlimit: &Path, bwrap: &Path, argv: &[String], workspace: &Path, root: bool, uid: u32) -> Command {
        let mut cmd = Command::new(prlimit);
        cmd.args(self.prlimit_args(uid));
        cmd.arg(bwrap);
        // bwrap itself runs in a clean environment; the program gets only what --setenv gives.
        cmd.env_clear();
        if root {
            // No user namespace: it would map the sandbox user back to root outside,
            // where the process limit does not apply. setpriv drops to
            // the sandbox user inside, with no capabilities left.
            cmd.args(["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]);
        } else {
            cmd.arg("--unshare-all");
        }
        cmd.arg("--new-session").arg("--die-with-parent");
        cmd.args(["--hostname", "sandbox"]);
        cmd.args(["--ro-bind", "/usr", "/usr"]);
        for dir in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            let p = Path::new(dir);
            match std::fs::read_link(p) {
                Ok(target) => {
                    cmd.arg("--symlink").arg(target).arg(dir);
                }
                Err(_) if p.is_dir() => {
                    cmd.args(["--ro-bind", dir, dir]);
                }
                Err(_) => {}
            }
        }
        // Only what programs need from /etc: no shadow, sudoers, ssh keys, machine secrets.
        cmd.args(["--perms", "0755", "--dir", "/etc"]);
        for f in ETC_ALLOWED {
            let p = Path::new("/etc").join(f);
            if p.exists() {
                cmd.arg("--ro-bind").arg(&p).arg(&p);
            }
        }
        cmd.args(["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size"]);
        cmd.arg(self.limits.tmp_bytes.to_string()).args(["--tmpfs", "/tmp"]);
        cmd.arg("--bind").arg(workspace).arg(SANDBOX_WORKSPACE);
        // The sandbox's own root (a tmpfs holding the mount points) is read-only too.
        cmd.args(["--remount-ro", "/"]);
        cmd.args(["--chdir", SANDBOX_WORKSPACE]);
        cmd.arg("--clearenv");
        for (k, v) in base_env(SANDBOX_WORKSPACE) {
            cmd.args(["--setenv", k, &v]);
        }
        cmd.arg("--");
        cmd.args(argv);
        cmd
    }

    async fn spawn(&self, mut cmd: Command, stdin: Option<&[u8]>, bwrap: bool, workspace: &Path) -> Result<Output, ToolError> {
        let l = &self.limits;
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.process_group(0);
        cmd.kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| ToolError::Failed(format!("cannot start the sandbox: {e}")))?;
        let group = KillGroup(child.id().and_then(|p| i32::try_from(p).ok()).and_then(Pid::from_raw));
        let input = stdin.map(<[u8]>::to_vec);
        let mut pipe_in = child.stdin.take();
        let writer = tokio::spawn(async move {
            if let (Some(pipe), Some(bytes)) = (pipe_in.as_mut(), input) {
                // A program that exits without reading its input is not an error.
                let _ = pipe.write_all(&bytes).await;
                let _ = pipe.shutdown().await;
            }
            drop(pipe_in);
        });
        let bound = l.output_bytes;
        let (out_buf, err_buf) = (Captured::default(), Captured::default());
        let out = child.stdout.take().map(|p| tokio::spawn(read_bounded(p, bound, out_buf.clone())));
        let err = child.stderr.take().map(|p| tokio::spawn(read_bounded(p, bound, err_buf.clone())));
        // The workspace quota: its size is measured while the program runs
        // (every 50 ms) and the program's group killed once it is over. A
        // fast writer can overshoot by what it writes in one interval; no
        // single file can be larger than the quota (RLIMIT_FSIZE).
        let quota = l.workspace_bytes;
        let ws = workspace.to_path_buf();
        let over_quota = async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                let ws = ws.clone();
                let used = tokio::task::spawn_blocking(move || tree_bytes(&ws)).await.unwrap_or(0);
                if used > quota {
                    return used;
                }
            }
        };
        let (status, timed_out, workspace_exceeded) = tokio::select! {
            r = tokio::time::timeout(l.wall, child.wait()) => match r {
                Ok(s) => (s.map_err(waiting)?, false, None),
                Err(_) => {
                    group.kill();
                    (child.wait().await.map_err(waiting)?, true, None)
                }
            },
            used = over_quota => {
                group.kill();
                (child.wait().await.map_err(waiting)?, false, Some(used))
            }
        };
        // Written between the last measure and the kill.
        let workspace_exceeded = workspace_exceeded.or_else(|| Some(tree_bytes(workspace)).filter(|&u| u > quota));
        // Whatever the program left in its group goes with it.
        group.kill();
        writer.abort();
        let collect = |h: Option<tokio::task::JoinHandle<()>>, buf: Captured| async move {
            if let Some(mut h) = h {
                // A descendant that escaped the group (possible only without
                // bubblewrap) may hold the pipe open: keep what was read.
                if tokio::time::timeout(Duration::from_secs(2), &mut h).await.is_err() {
                    h.abort();
                }
            }
            buf.lock().map(|mut g| std::mem::take(&mut *g)).unwrap_or_default()
        };
        let (stdout, t1) = collect(out, out_buf).await;
        let (stderr, t2) = collect(err, err_buf).await;
        use std::os::unix::process::ExitStatusExt;
        let code = status.code().or(status.signal().map(|s| 128 + s)).unwrap_or(-1);
        // bubblewrap reports a program killed by a signal as 128 + the signal.
        let signal = status.signal().or(if bwrap && code > 128 && code < 128 + 65 { Some(code - 128) } else { None });
        Ok(Output { status: code, signal, stdout, stderr, truncated: t1 || t2, timed_out, workspace_exceeded })
    }
}

/// Files of `/etc` visible in the sandbox.
const ETC_ALLOWED: &[&str] = &[
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "nsswitch.conf",
    "passwd",
    "group",
    "hosts",
    "os-release",
    "debian_version",
    "mime.types",
    "ssl/certs",
];

/// Why a program was stopped for its workspace.
pub fn quota_message(l: &Limits, used: u64) -> String {
    format!(
        "killed: the run's workspace grew to {} MiB, over its quota of {} MiB (AOS_EXEC_WORKSPACE_MB); what was written stays in the workspace",
        used >> 20,
        l.workspace_bytes >> 20
    )
}

/// The bytes the files under `dir` take on disk (allocated blocks, so a
/// sparse file counts for what it holds), not following symbolic links.
pub fn tree_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else { continue };
            total = total.saturating_add(m.blocks().saturating_mul(512));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

fn base_env(home: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
        ("HOME", home.to_string()),
        ("TMPDIR", "/tmp".to_string()),
        ("LANG", "C.UTF-8".to_string()),
    ]
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// What a reader kept of a stream, and whether it dropped some.
type Captured = Arc<Mutex<(Vec<u8>, bool)>>;

async fn read_bounded<R: AsyncRead + Unpin>(mut r: R, bound: usize, into: Captured) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let chunk = buf.get(..n).unwrap_or_default();
                let Ok(mut kept) = into.lock() else { break };
                let room = bound.saturating_sub(kept.0.len());
                if chunk.len() > room {
                    kept.1 = true;
                }
                kept.0.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
            }
        }
    }
}

/// Kills a process group with SIGKILL when asked and when dropped, so a
/// step's timeout (which drops the tool's future) takes the program with it.
struct KillGroup(Option<Pid>);

impl KillGroup {
    fn kill(&self) {
        if let Some(pgid) = self.0 {
            // The group may be gone already.
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Tasks (threads included, as RLIMIT_NPROC counts them) whose real user is `uid`.
fn count_tasks(uid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    let mut n = 0u64;
    for e in dir.flatten() {
        if !e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else { continue };
        let mut real = None;
        let mut threads = 1;
        for line in status.lines() {
            if let Some(rest) = line.strip_prefix("Uid:") {
                real = rest.split_whitespace().next().and_then(|v| v.parse::<u32>().ok());
            } else if let Some(rest) = line.strip_prefix("Threads:") {
                threads = rest.trim().parse::<u64>().unwrap_or(1);
            }
        }
        if real == Some(uid) {
            n = n.saturating_add(threads);
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_workspace_has_a_stable_sandbox_user_in_range() {
        let a = sandbox_uid(Path::new("/home/aos/.aos/runs/A/workspace"));
        let b = sandbox_uid(Path::new("/home/aos/.aos/runs/B/workspace"));
        assert_eq!(a, sandbox_uid(Path::new("/home/aos/.aos/runs/A/workspace")));
        assert_ne!(a, b);
        for uid in [a, b] {
            assert!((SANDBOX_UID_BASE..SANDBOX_UID_BASE + SANDBOX_UID_SPAN).contains(&uid));
        }
    }

    #[test]
    fn limits_become_prlimit_options() {
        let s = Sandbox::new(Isolation::Unsandboxed, Limits { cpu_secs: 3, memory_bytes: 1000, file_size_bytes: 10, processes: 5, ..Limits::default() });
        let args = s.prlimit_args(4_000_000_000);
        assert_eq!(args.first().map(String::as_str), Some("--cpu=3:4"));
        assert!(args.contains(&"--as=1000".to_string()) && args.contains(&"--fsize=10".to_string()) && args.contains(&"--core=0".to_string()));
        // No task runs as that user: only the program's own allowance and bubblewrap's.
        assert!(args.contains(&"--nproc=8".to_string()), "{args:?}");
        assert_eq!(args.last().map(String::as_str), Some("--"));
    }
}
