//! `file.read` and `file.write`, confined to the run's workspace: relative
//! paths only, no `..`, and no symbolic link (anywhere on the path, the file
//! included) may lead outside the workspace.

use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

use super::{Tool, ToolCtx};
use crate::store::BoxFuture;

/// Resolves `path` inside `workspace` lexically, refusing anything that could
/// leave it (absolute paths, `..`, empty paths).
pub fn confine(workspace: &Path, path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if path.is_empty() {
        return Err("file path is empty".into());
    }
    if p.is_absolute() {
        return Err(format!("file path `{path}` is absolute; file tools only accept paths relative to the run's workspace"));
    }
    for c in p.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            _ => return Err(format!("file path `{path}` leaves the run's workspace (`..` and roots are not allowed)")),
        }
    }
    Ok(workspace.join(p))
}

/// Checks on disk that `path` (already [`confine`]d) stays inside
/// `workspace` once symbolic links are followed: the deepest existing
/// ancestor, and the file itself when it exists or is a link, must resolve
/// inside the workspace. A dangling link is refused (writing through it
/// could create a file anywhere).
pub fn no_escape(workspace: &Path, path: &Path, shown: &str) -> Result<(), String> {
    let root = workspace.canonicalize().map_err(|e| format!("the run's workspace is not accessible: {e}"))?;
    let escape = || format!("file path `{shown}` leads outside the run's workspace through a symbolic link");
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_symlink() {
            let target = path.canonicalize().map_err(|_| escape())?;
            return if target.starts_with(&root) { Ok(()) } else { Err(escape()) };
        }
    }
    let mut existing = path;
    loop {
        if std::fs::symlink_metadata(existing).is_ok() {
            let real = existing.canonicalize().map_err(|_| escape())?;
            return if real.starts_with(&root) { Ok(()) } else { Err(escape()) };
        }
        match existing.parent() {
            Some(p) => existing = p,
            None => return Err(escape()),
        }
    }
}

fn arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, String> {
    args.get(name).and_then(Value::as_str).ok_or_else(|| format!("missing String argument `{name}`"))
}

pub struct Read;
pub struct Write;

impl Tool for Read {
    fn call<'a>(&'a self, args: Value, ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let rel = arg(&args, "path")?.to_string();
            let path = confine(&ctx.workspace, &rel)?;
            let ws = ctx.workspace.clone();
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&ws).map_err(|e| format!("cannot create the run's workspace: {e}"))?;
                no_escape(&ws, &path, &rel)?;
                std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{rel}` in the workspace: {e}"))
            })
            .await
            .map_err(|e| e.to_string())?
            .map(Value::String)
        })
    }
}

impl Tool for Write {
    fn call<'a>(&'a self, args: Value, ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let rel = arg(&args, "path")?.to_string();
            let content = arg(&args, "content")?.to_string();
            let path = confine(&ctx.workspace, &rel)?;
            let ws = ctx.workspace.clone();
            let n = content.len();
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&ws).map_err(|e| format!("cannot create the run's workspace: {e}"))?;
                no_escape(&ws, &path, &rel)?;
                let io = |e: std::io::Error| format!("cannot write `{rel}` in the workspace: {e}");
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                // Directories created above may not be links; check again
                // right before writing.
                no_escape(&ws, &path, &rel)?;
                std::fs::write(&path, content).map_err(io)
            })
            .await
            .map_err(|e| e.to_string())??;
            Ok(json!({ "bytes": n }))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_stay_in_the_workspace() {
        let ws = Path::new("/tmp/ws");
        assert!(confine(ws, "a/b.txt").is_ok());
        assert!(confine(ws, "../x").is_err());
        assert!(confine(ws, "a/../../x").is_err());
        assert!(confine(ws, "/etc/passwd").is_err());
        assert!(confine(ws, "").is_err());
    }

    fn ctx(ws: &Path) -> ToolCtx {
        ToolCtx { workspace: ws.to_path_buf(), idempotency_key: None, run_id: "r".into(), step: "s".into() }
    }

    #[tokio::test]
    async fn symlinks_cannot_escape() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s3cret").unwrap();
        let ws = tempfile::tempdir().unwrap();
        let c = ctx(ws.path());
        std::os::unix::fs::symlink(outside.path(), ws.path().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), ws.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("new"), ws.path().join("dangling")).unwrap();
        std::fs::write(ws.path().join("ok.txt"), "fine").unwrap();
        std::os::unix::fs::symlink(ws.path().join("ok.txt"), ws.path().join("inner")).unwrap();

        let read = |p: &str| Read.call(json!({ "path": p }), &c);
        assert!(read("out/secret").await.unwrap_err().contains("symbolic link"));
        assert!(read("link").await.unwrap_err().contains("symbolic link"));
        assert_eq!(read("inner").await.unwrap(), json!("fine"));
        let write = |p: &str| Write.call(json!({ "path": p, "content": "x" }), &c);
        assert!(write("out/new.txt").await.unwrap_err().contains("symbolic link"));
        assert!(write("dangling").await.unwrap_err().contains("symbolic link"));
        assert!(write("link").await.unwrap_err().contains("symbolic link"));
        assert!(!outside.path().join("new").exists() && !outside.path().join("new.txt").exists());
        assert_eq!(std::fs::read_to_string(outside.path().join("secret")).unwrap(), "s3cret");
        assert_eq!(write("sub/dir/a.txt").await.unwrap(), json!({ "bytes": 1 }));
    }
}
