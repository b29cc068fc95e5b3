//! `file.read` and `file.write`, confined to the run's workspace: relative
//! paths only, no `..`, and no symbolic link that leads out of it (a
//! sandboxed program can plant links in the workspace, and the runtime may
//! read what the program may not). Paths are resolved by the kernel with
//! `openat2(RESOLVE_BENEATH)` from the workspace directory, so a link
//! swapped in between a check and the open cannot escape either.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use serde_json::{json, Value};

use super::{Tool, ToolCtx, ToolError};
use crate::store::BoxFuture;

/// Resolves `path` inside `workspace`, refusing anything that could leave it.
pub fn confine(workspace: &Path, path: &str) -> Result<PathBuf, ToolError> {
    let p = Path::new(path);
    if path.is_empty() {
        return Err(ToolError::BadInput("file path is empty".into()));
    }
    if p.is_absolute() {
        return Err(ToolError::Denied(format!("file path `{path}` is absolute; file tools only accept paths relative to the run's workspace")));
    }
    for c in p.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            _ => return Err(ToolError::Denied(format!("file path `{path}` leaves the run's workspace (`..` and roots are not allowed)"))),
        }
    }
    Ok(workspace.join(p))
}

/// Opens `rel` (already checked by [`confine`]) beneath `workspace`; with
/// `create`, creates missing parent directories and the file (truncated).
/// Messages start with "cannot read" or "cannot write" (`create`).
fn open_beneath(workspace: &Path, rel: &str, create: bool) -> Result<File, ToolError> {
    let verb = if create { "write" } else { "read" };
    let fail = |e: rustix::io::Errno| {
        if e == rustix::io::Errno::XDEV || e == rustix::io::Errno::LOOP {
            ToolError::Denied(format!("file path `{rel}` leaves the run's workspace through a symbolic link"))
        } else {
            ToolError::Failed(format!("cannot {verb} `{rel}` in the workspace: {}", std::io::Error::from(e)))
        }
    };
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    std::fs::create_dir_all(workspace).map_err(|e| ToolError::Failed(format!("cannot create the workspace: {e}")))?;
    let root = File::open(workspace).map_err(|e| ToolError::Failed(format!("cannot open the workspace: {e}")))?;
    let path = Path::new(rel);
    if !create {
        // NONBLOCK: opening a FIFO planted in the workspace must not wait
        // for a writer; anything but a regular file is then refused.
        let fd = rustix::fs::openat2(&root, path, OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK, Mode::empty(), resolve).map_err(fail)?;
        let file = File::from(fd);
        if !file.metadata().map_err(|e| ToolError::Failed(format!("cannot read `{rel}` in the workspace: {e}")))?.is_file() {
            return Err(ToolError::BadInput(format!("cannot read `{rel}` in the workspace: it is not a regular file")));
        }
        return Ok(file);
    }
    let mut dir = std::os::fd::OwnedFd::from(root);
    let mut parts: Vec<&std::ffi::OsStr> = path.components().filter_map(|c| if let Component::Normal(n) = c { Some(n) } else { None }).collect();
    let Some(name) = parts.pop() else { return Err(ToolError::BadInput(format!("file path `{rel}` names no file"))) };
    for part in parts {
        match rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(fail(e)),
        }
        dir = rustix::fs::openat2(&dir, part, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), resolve).map_err(fail)?;
    }
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC;
    let fd = rustix::fs::openat2(&dir, name, flags, Mode::from_raw_mode(0o644), resolve).map_err(fail)?;
    Ok(File::from(fd))
}

fn arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, ToolError> {
    args.get(name).and_then(Value::as_str).ok_or_else(|| ToolError::BadInput(format!("missing String argument `{name}`")))
}

fn join_error(e: tokio::task::JoinError) -> ToolError {
    ToolError::Failed(e.to_string())
}

pub struct Read;
pub struct Write;

impl Tool for Read {
    fn call<'a>(&'a self, args: Value, ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let rel = arg(&args, "path")?;
            confine(&ctx.workspace, rel)?;
            let (workspace, owned) = (ctx.workspace.clone(), rel.to_string());
            tokio::task::spawn_blocking(move || {
                let mut file = open_beneath(&workspace, &owned, false)?;
                let mut text = String::new();
                file.read_to_string(&mut text).map_err(|e| ToolError::Failed(format!("cannot read `{owned}` in the workspace: {e}")))?;
                Ok::<_, ToolError>(Value::String(text))
            })
            .await
            .map_err(join_error)?
        })
    }
}

impl Tool for Write {
    fn call<'a>(&'a self, args: Value, ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let rel = arg(&args, "path")?.to_string();
            let content = arg(&args, "content")?.to_string();
            confine(&ctx.workspace, &rel)?;
            let n = content.len();
            let workspace = ctx.workspace.clone();
            tokio::task::spawn_blocking(move || {
                let mut file = open_beneath(&workspace, &rel, true)?;
                file.write_all(content.as_bytes()).map_err(|e| ToolError::Failed(format!("cannot write `{rel}` in the workspace: {e}")))
            })
            .await
            .map_err(join_error)??;
            Ok(json!({ "bytes": n }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_in_the_workspace() {
        let ws = Path::new("/tmp/ws");
        assert!(confine(ws, "a/b.txt").is_ok());
        assert!(confine(ws, "../x").is_err());
        assert!(confine(ws, "a/../../x").is_err());
        assert!(confine(ws, "/etc/passwd").is_err());
    }
}
