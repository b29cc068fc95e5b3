//! The code action "Generate steps from intent": on a workflow that has an
//! `intent:` attribute and no steps, it runs the planner of `aosc new` and
//! replaces the workflow with the one it wrote (same name, steps wired,
//! gates and budget the checker demanded), adding the `use`, `model` and
//! `role` declarations that workflow needs.
//!
//! The planner runs as a child process, `aosc new INTENT --with CONTEXT -o
//! OUT --json`, rather than in the server: the planner needs the runtime's
//! model fabric (HTTP clients, provider keys) and possibly llama.cpp with a
//! 100 MB model, none of which belongs in the language server, and this
//! crate must not depend on the command-line crate. A child also keeps a
//! slow or crashing model away from the editor session, and there is one
//! planner, the command line's. `aosc lsp` tells the server where `aosc` is
//! ([`set_generator`]); without it the action is not offered.
//!
//! The action is offered without an edit (editors ask for code actions on
//! every cursor move); the edit is made when the editor resolves it
//! (`codeAction/resolve`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aos_compiler::ast::{self, ExprKind, ItemKind};
use aos_compiler::{Span, query};
use serde_json::{Value, json};
use tower_lsp_server::lsp_types::{
    CodeAction, CodeActionKind, CodeActionOptions, CodeActionOrCommand, CodeActionProviderCapability, Range, TextEdit, Uri,
    WorkDoneProgressOptions, WorkspaceEdit,
};

use crate::Snapshot;
use crate::snapshot::uri_to_path;

/// The action's title.
pub const TITLE: &str = "Generate steps from intent";
/// What `data` of the pending action says it is.
const DATA_KIND: &str = "aos.generateSteps";
/// The longest a generation may take (an embedded model on a loaded machine
/// takes tens of seconds; hosted ones a few).
const TIMEOUT: Duration = Duration::from_secs(300);

static GENERATOR: OnceLock<PathBuf> = OnceLock::new();
/// Tells apart the scratch files of concurrent generations.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// The server's code-action capability: actions are resolved lazily (the
/// generation's edit is made on `codeAction/resolve`).
pub fn capability() -> CodeActionProviderCapability {
    CodeActionProviderCapability::Options(CodeActionOptions {
        code_action_kinds: Some(vec![CodeActionKind::QUICKFIX, CodeActionKind::REFACTOR_REWRITE]),
        resolve_provider: Some(true),
        work_done_progress_options: WorkDoneProgressOptions::default(),
    })
}

/// The `aosc` binary whose `new` command plans (set once by `aosc lsp`).
pub fn set_generator(aosc: PathBuf) {
    let _ = GENERATOR.set(aosc);
}

fn generator() -> Option<&'static Path> {
    GENERATOR.get().map(PathBuf::as_path)
}

/// Why no steps were generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("the code action's data is not this server's")]
    BadData,
    #[error("no workflow `{0}` with an `intent:` and no steps in this document any more")]
    NoWorkflow(String),
    #[error("the language server was started without `aosc` to plan with")]
    NoGenerator,
    #[error("cannot prepare the planner's input: {0}")]
    Io(#[from] std::io::Error),
    #[error("the planner did not finish within {0} s")]
    Timeout(u64),
    #[error("the planner wrote no program that checks: {0}")]
    Failed(String),
}

/// The workflow of `item` when it has an `intent:` string and no steps.
fn empty_with_intent(item: &ast::Item) -> Option<(&ast::Workflow, String)> {
    let ItemKind::Workflow(w) = &item.kind else { return None };
    if !w.steps.is_empty() || w.ret_expr.is_some() {
        return None;
    }
    let attr = w.attrs.iter().find(|a| a.key.name == "intent")?;
    let ExprKind::Str(lit) = &attr.value.kind else { return None };
    let intent: String = lit
        .parts
        .iter()
        .map(|p| match p {
            ast::StrPart::Text(s) => s.as_str(),
            ast::StrPart::Interp(_) => "",
        })
        .collect();
    (!intent.trim().is_empty()).then_some((w, intent))
}

/// The pending action for the workflow under `range`, if it qualifies.
pub fn offers(snap: &Snapshot, uri: &Uri, range: Range) -> Vec<CodeActionOrCommand> {
    if generator().is_none() || !uri.as_str().starts_with("file:") {
        return Vec::new();
    }
    let Some(file) = query::file_ast(&snap.analysis, snap.main()) else { return Vec::new() };
    let wanted = Span::new(snap.offset(range.start), snap.offset(range.end));
    file.items
        .iter()
        .filter(|i| i.span.start <= wanted.end && wanted.start <= i.span.end)
        .filter_map(|i| empty_with_intent(i).map(|(w, _)| w.name.name.clone()))
        .map(|name| {
            CodeActionOrCommand::CodeAction(CodeAction {
                title: TITLE.to_string(),
                kind: Some(CodeActionKind::REFACTOR_REWRITE),
                data: Some(json!({"kind": DATA_KIND, "uri": uri.as_str(), "workflow": name})),
                ..CodeAction::default()
            })
        })
        .collect()
}

/// The document and workflow a pending action is about.
pub fn target(action: &CodeAction) -> Option<(String, String)> {
    let d = action.data.as_ref()?;
    if d.get("kind")?.as_str()? != DATA_KIND {
        return None;
    }
    Some((d.get("uri")?.as_str()?.to_string(), d.get("workflow")?.as_str()?.to_string()))
}

/// Fills in the edit of a pending action (blocking: it runs the planner).
pub fn resolve(snap: &Snapshot, uri: &Uri, mut action: CodeAction) -> Result<CodeAction, GenerateError> {
    let (_, workflow) = target(&action).ok_or(GenerateError::BadData)?;
    let aosc = generator().ok_or(GenerateError::NoGenerator)?;
    let edits = generate(snap, uri, &workflow, aosc)?;
    action.edit = Some(WorkspaceEdit { changes: Some(HashMap::from([(uri.clone(), edits)])), ..WorkspaceEdit::default() });
    Ok(action)
}

/// Removes a directory or file when dropped.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = if self.0.is_dir() { std::fs::remove_dir_all(&self.0) } else { std::fs::remove_file(&self.0) };
    }
}

/// Runs the planner for workflow `name` and returns the edits.
pub fn generate(snap: &Snapshot, uri: &Uri, name: &str, aosc: &Path) -> Result<Vec<TextEdit>, GenerateError> {
    let text = snap.main_text();
    let file = query::file_ast(&snap.analysis, snap.main()).ok_or_else(|| GenerateError::NoWorkflow(name.into()))?;
    let (item, intent) = file
        .items
        .iter()
        .find_map(|i| empty_with_intent(i).filter(|(w, _)| w.name.name == name).map(|(_, intent)| (i, intent)))
        .ok_or_else(|| GenerateError::NoWorkflow(name.into()))?;
    // The planner sees the document without the empty workflow (its tools,
    // types, models and roles), beside the document so its `use` paths
    // resolve. Hidden, and removed afterwards.
    let doc = PathBuf::from(uri_to_path(uri));
    let dir = doc.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let stamp = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let context = dir.join(format!(".aos-generate-{stamp}.aos"));
    let mut rest = String::with_capacity(text.len());
    rest.push_str(&text[..item.span.start as usize]);
    rest.push_str(&text[(item.span.end as usize).min(text.len())..]);
    std::fs::write(&context, &rest)?;
    let _context_guard = Cleanup(context.clone());
    let out_dir = std::env::temp_dir().join(format!("aos-generate-{stamp}"));
    std::fs::create_dir_all(&out_dir)?;
    let _out_guard = Cleanup(out_dir.clone());
    let out = out_dir.join("generated.aos");
    let has_content = rest.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with("//")
    });
    let mut cmd = Command::new(aosc);
    cmd.arg("new").arg(&intent);
    if has_content {
        cmd.arg("--with").arg(&context);
    }
    cmd.arg("-o").arg(&out).arg("--json").current_dir(&dir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let stdout = run_bounded(cmd, TIMEOUT)?;
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    if report["checked"] != Value::Bool(true) {
        let mut why = report["error"].as_str().unwrap_or("no report from `aosc new`").to_string();
        if let Some(ds) = report["diagnostics"].as_array() {
            for d in ds.iter().filter(|d| d["severity"] == "error").take(3) {
                why.push_str(&format!("; {} {}", d["code"].as_str().unwrap_or(""), d["message"].as_str().unwrap_or("")));
            }
        }
        return Err(GenerateError::Failed(why));
    }
    let generated = std::fs::read_to_string(&out)?;
    Ok(edits_for(snap, file, item, name, &generated, &context))
}

/// Runs `cmd`, killing it after `limit`; its stdout.
fn run_bounded(mut cmd: Command, limit: Duration) -> Result<String, GenerateError> {
    let mut child = cmd.spawn()?;
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = std::io::Read::read_to_string(o, &mut s);
        }
        s
    });
    let mut stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = std::io::Read::read_to_string(e, &mut s);
        }
        s
    });
    let started = Instant::now();
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(GenerateError::Timeout(limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = err_reader.join();
    Ok(reader.join().unwrap_or_default())
}

/// The edits: `use` lines the program needs that the document lacks go
/// after the document's last `use` (or at the top); the workflow is
/// replaced by the generated one, renamed to `name`, preceded by the
/// generated `model`, `role` and `type` declarations the document lacks.
fn edits_for(snap: &Snapshot, file: &ast::File, item: &ast::Item, name: &str, generated: &str, context: &Path) -> Vec<TextEdit> {
    let text = snap.main_text();
    let (gen_file, _) = aos_compiler::parse(generated, aos_compiler::FileId(0));
    let context_name = context.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let declared: Vec<String> = file.items.iter().filter_map(item_name).collect();
    let slice = |s: Span| generated.get(s.start as usize..s.end as usize).unwrap_or("").trim().to_string();
    let mut uses = String::new();
    let mut decls = String::new();
    let mut workflow = String::new();
    for gi in &gen_file.items {
        match &gi.kind {
            ItemKind::Use(_) => {
                let t = slice(gi.span);
                if !t.contains(&context_name) && !text.lines().any(|l| l.trim() == t) {
                    uses.push_str(&t);
                    uses.push('\n');
                }
            }
            ItemKind::Workflow(w) => {
                let start = gi.span.start as usize;
                let mut t = generated.get(start..gi.span.end as usize).unwrap_or("").to_string();
                let (ns, ne) = (w.name.span.start as usize - start, w.name.span.end as usize - start);
                if ne <= t.len() {
                    t.replace_range(ns..ne, name);
                }
                workflow = t.trim().to_string();
            }
            _ => {
                if item_name(gi).is_some_and(|n| !declared.contains(&n)) {
                    decls.push_str(&slice(gi.span));
                    decls.push('\n');
                }
            }
        }
    }
    let mut edits = Vec::new();
    if !uses.is_empty() {
        let after_uses = file.items.iter().filter(|i| matches!(i.kind, ItemKind::Use(_))).map(|i| i.span.end).max();
        let (at, new_text) = match after_uses {
            Some(end) => (end, format!("\n{}", uses.trim_end())),
            None => (0, format!("{uses}\n")),
        };
        edits.push(TextEdit { range: snap.range(snap.main(), Span::new(at as usize, at as usize)), new_text });
    }
    let new_text = if decls.is_empty() { workflow } else { format!("{}\n\n{workflow}", decls.trim_end()) };
    edits.push(TextEdit { range: snap.range(snap.main(), item.span), new_text });
    edits
}

/// The name an item declares (models, roles, types, tools, workflows…).
fn item_name(i: &ast::Item) -> Option<String> {
    match &i.kind {
        ItemKind::Model(m) => Some(format!("model {}", m.name.name)),
        ItemKind::Role(r) => Some(format!("role {}", r.name.name)),
        ItemKind::Type(t) => Some(format!("type {}", t.name.name)),
        ItemKind::Workflow(w) => Some(format!("workflow {}", w.name.name)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aos_compiler::FileLoader;

    struct NoFiles;
    impl FileLoader for NoFiles {
        fn load(&self, _: &Path) -> std::io::Result<String> {
            Err(std::io::Error::other("no files"))
        }
    }

    const DOC: &str = "model m = sim(\"echo\")\nrole executor = [m]\n\nworkflow weekly() {\n  intent: \"Email the weekly sales to Bob\"\n}\n";

    #[test]
    fn the_action_is_offered_on_an_empty_workflow_with_an_intent() {
        set_generator(PathBuf::from("/nonexistent/aosc"));
        let snap = Snapshot::new("/tmp/doc.aos", DOC, &NoFiles);
        let uri: Uri = "file:///tmp/doc.aos".parse().unwrap_or_else(|_| unreachable!());
        let all = Range::new(snap.range(snap.main(), Span::new(0, 0)).start, snap.range(snap.main(), Span::new(DOC.len(), DOC.len())).end);
        let offered = offers(&snap, &uri, all);
        assert_eq!(offered.len(), 1);
        let CodeActionOrCommand::CodeAction(a) = &offered[0] else { unreachable!() };
        assert_eq!(a.title, TITLE);
        assert!(a.edit.is_none());
        assert_eq!(target(a), Some(("file:///tmp/doc.aos".into(), "weekly".into())));
        // A workflow that has steps gets none.
        let full = "use std.sql\nworkflow w() {\n  intent: \"x\"\n  step a = sql.query(sql: \"select 1\")\n}\n";
        let snap = Snapshot::new("/tmp/doc.aos", full, &NoFiles);
        assert!(offers(&snap, &uri, all).is_empty());
    }

    #[test]
    fn the_workflow_is_replaced_and_missing_declarations_added() {
        let snap = Snapshot::new("/tmp/doc.aos", DOC, &NoFiles);
        let file = query::file_ast(&snap.analysis, snap.main()).unwrap_or_else(|| unreachable!());
        let item = &file.items[2];
        let generated = "use \"./.aos-generate-1.aos\"\nuse std.email\n\nmodel m = sim(\"echo\")\nrole writer = [m]\n\nworkflow email_weekly_sales() {\n  intent: \"Email the weekly sales to Bob\"\n  budget: $0.01\n\n  step send = email.send(to: \"bob@example.com\", subject: \"Sales\", body: \"x\")\n}\n";
        let edits = edits_for(&snap, file, item, "weekly", generated, Path::new("/tmp/.aos-generate-1.aos"));
        assert_eq!(edits.len(), 2, "{edits:?}");
        assert_eq!(edits[0].new_text, "use std.email\n\n");
        assert!(edits[1].new_text.starts_with("role writer = [m]\n\nworkflow weekly() {"), "{}", edits[1].new_text);
        assert!(edits[1].new_text.contains("step send = email.send("));
        assert!(!edits[1].new_text.contains("model m"));
    }
}
