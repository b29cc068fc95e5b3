//! `file.read` and `file.write`, confined to the run's workspace: relative
//! paths only, no `..`.

use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

use super::{Tool, ToolCtx};
use crate::store::BoxFuture;

/// Resolves `path` inside `workspace`, refusing anything that could leave it.
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

fn arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, String> {
    args.get(name).and_then(Value::as_str).ok_or_else(|| format!("missing String argument `{name}`"))
}

pub struct Read;
pub struct Write;

impl Tool for Read {
    fn call<'a>(&'a self, args: Value, ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let rel = arg(&args, "path")?;
            let path = confine(&ctx.workspace, rel)?;
            tokio::task::spawn_blocking(move || std::fs::read_to_string(&path))
                .await
                .map_err(|e| e.to_string())?
                .map(Value::String)
                .map_err(|e| format!("cannot read `{rel}` in the workspace: {e}"))
        })
    }
}

impl Tool for Write {
    fn call<'a>(&'a self, args: Value, ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let rel = arg(&args, "path")?.to_string();
            let content = arg(&args, "content")?.to_string();
            let path = confine(&ctx.workspace, &rel)?;
            let n = content.len();
            tokio::task::spawn_blocking(move || {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&path, content)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot write `{rel}` in the workspace: {e}"))?;
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
