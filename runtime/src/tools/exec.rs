//! `shell.exec` and user tools declared with `exec: ["program", "arg", …]`,
//! both run in the [`Sandbox`].
//!
//! An `exec:` tool's protocol: the program is started with the declared
//! argv; its stdin is the call's arguments as one JSON object keyed by
//! parameter name (`{"param": value, …}`), then end of file; its stdout is
//! the result, one JSON value. When
//! the tool is declared `-> String`, stdout that is not JSON is taken as the
//! string itself (one trailing newline removed). A non-zero exit status, a
//! signal, the wall-clock limit or stdout that is not JSON fail the step
//! with the program's stderr in the message.

use std::sync::Arc;

use serde_json::{json, Value};

use super::sandbox::{Output, Sandbox};
use super::{Tool, ToolCtx, ToolError};
use crate::store::BoxFuture;

/// `shell.exec(command: List<String>, stdin: String?) -> { status, stdout, stderr }`.
pub struct ShellExec {
    pub sandbox: Arc<Sandbox>,
}

impl Tool for ShellExec {
    fn call<'a>(&'a self, args: Value, ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let command = match args.get("command") {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string).ok_or_else(|| ToolError::BadInput(format!("shell.exec: `command` must be a list of strings, found {v}"))))
                    .collect::<Result<Vec<String>, ToolError>>()?,
                None | Some(Value::Null) => {
                    return Err(ToolError::BadInput("shell.exec: missing argument `command` (a list of strings: the program, then its arguments)".into()));
                }
                Some(other) => {
                    return Err(ToolError::BadInput(format!("shell.exec: `command` must be a list of strings (the program, then its arguments), found {other}")));
                }
            };
            let stdin = match args.get("stdin") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => return Err(ToolError::BadInput(format!("shell.exec: `stdin` must be a string, found {other}"))),
            };
            let shown = show_command(&command);
            let out = self
                .sandbox
                .run(&command, stdin.as_deref().map(str::as_bytes), &ctx.workspace)
                .await
                .map_err(|e| e.map(|e| format!("shell.exec `{shown}`: {e}")))?;
            if out.timed_out {
                return Err(ToolError::Timeout(format!("shell.exec `{shown}`: killed after the wall-clock limit of {}s", self.sandbox.limits.wall.as_secs())));
            }
            if let Some(used) = out.workspace_exceeded {
                return Err(ToolError::Denied(format!("shell.exec `{shown}`: {}", super::sandbox::quota_message(&self.sandbox.limits, used))));
            }
            let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if let Some(note) = note(&out, &self.sandbox) {
                if !stderr.is_empty() && !stderr.ends_with('\n') {
                    stderr.push('\n');
                }
                stderr.push_str(&note);
            }
            Ok(json!({
                "status": out.status,
                "stdout": String::from_utf8_lossy(&out.stdout),
                "stderr": stderr,
            }))
        })
    }
}

/// A user tool declared with `exec: [...]`.
pub struct ExecTool {
    /// The tool's dotted name, for messages.
    pub name: String,
    pub argv: Vec<String>,
    /// Whether the tool is declared `-> String` (stdout may be plain text).
    pub returns_string: bool,
    pub sandbox: Arc<Sandbox>,
}

impl Tool for ExecTool {
    fn call<'a>(&'a self, args: Value, ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let name = &self.name;
            let shown = show_command(&self.argv);
            let input = serde_json::to_vec(&args).map_err(|e| ToolError::BadInput(format!("tool `{name}`: cannot encode the arguments: {e}")))?;
            let out = self
                .sandbox
                .run(&self.argv, Some(&input), &ctx.workspace)
                .await
                .map_err(|e| e.map(|e| format!("tool `{name}` (`{shown}`): {e}")))?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail = tail(stderr.trim(), 2000);
            if out.timed_out {
                return Err(ToolError::Timeout(format!("tool `{name}` (`{shown}`): killed after the wall-clock limit of {}s", self.sandbox.limits.wall.as_secs())));
            }
            if let Some(used) = out.workspace_exceeded {
                return Err(ToolError::Denied(format!("tool `{name}` (`{shown}`): {}", super::sandbox::quota_message(&self.sandbox.limits, used))));
            }
            if out.status != 0 {
                let why = note(&out, &self.sandbox).unwrap_or_else(|| format!("exited with status {}", out.status));
                return Err(ToolError::Failed(if tail.is_empty() {
                    format!("tool `{name}` (`{shown}`): {why}")
                } else {
                    format!("tool `{name}` (`{shown}`): {why}; stderr: {tail}")
                }));
            }
            if out.truncated {
                return Err(ToolError::Denied(format!("tool `{name}` (`{shown}`): its output is longer than {} bytes", self.sandbox.limits.output_bytes)));
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            match serde_json::from_str::<Value>(&stdout) {
                Ok(v) => Ok(v),
                Err(_) if self.returns_string => Ok(Value::String(stdout.strip_suffix('\n').unwrap_or(&stdout).to_string())),
                Err(e) => Err(ToolError::Failed(format!("tool `{name}` (`{shown}`): its stdout is not one JSON value ({e}): {}", tail_start(stdout.trim(), 200)))),
            }
        })
    }
}

/// Says which limit ended the program, when one did.
fn note(out: &Output, sandbox: &Sandbox) -> Option<String> {
    let l = &sandbox.limits;
    let mut notes = Vec::new();
    match out.signal {
        Some(24) => notes.push(format!("[sandbox] killed: CPU limit of {}s exceeded", l.cpu_secs)),
        Some(25) => notes.push(format!("[sandbox] killed: file size limit of {} bytes exceeded", l.file_size_bytes)),
        Some(9) => notes.push(format!("[sandbox] killed by SIGKILL (CPU hard limit of {}s, or killed from outside)", l.cpu_secs + 1)),
        Some(s) => notes.push(format!("[sandbox] killed by signal {s}")),
        None => {}
    }
    if out.truncated {
        notes.push(format!("[sandbox] output truncated to {} bytes per stream", l.output_bytes));
    }
    if notes.is_empty() { None } else { Some(notes.join("\n")) }
}

fn show_command(argv: &[String]) -> String {
    let s = argv.join(" ");
    tail_start(&s, 120).to_string()
}

/// At most `n` bytes from the start of `s`, on a character boundary.
fn tail_start(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or(s)
}

/// At most `n` bytes from the end of `s`, on a character boundary.
fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s.get(start..).unwrap_or(s)
}
