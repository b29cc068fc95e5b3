//! "Run test" above every `test "…" { … }` block. The lens' command is
//! `aos.runTest` with the file and the test's name; its third argument is
//! the shell command an editor can run: `aosc test FILE --filter NAME`.

use aos_compiler::ast::ItemKind;
use aos_compiler::query;
use serde_json::json;
use tower_lsp_server::lsp_types::{CodeLens, Command};

use crate::Snapshot;

/// The command the lenses carry.
pub const RUN_TEST: &str = "aos.runTest";

/// One lens per test block of the main file (from the syntax tree: a file
/// that does not check yet still shows its lenses).
pub fn code_lenses(snap: &Snapshot) -> Vec<CodeLens> {
    let main = snap.main();
    let Some(file) = query::file_ast(&snap.analysis, main) else { return Vec::new() };
    let path = snap.analysis.sources.path(main).to_string();
    file.items
        .iter()
        .filter_map(|item| match &item.kind {
            ItemKind::Test(t) => Some(CodeLens {
                range: snap.range(main, t.name_span),
                command: Some(Command {
                    title: "▶ Run test".to_string(),
                    command: RUN_TEST.to_string(),
                    arguments: Some(vec![json!(path), json!(t.name), json!(shell_command(&path, &t.name))]),
                }),
                data: None,
            }),
            _ => None,
        })
        .collect()
}

/// `aosc test 'FILE' --filter 'NAME'`, quoted for a POSIX shell.
pub fn shell_command(path: &str, name: &str) -> String {
    format!("aosc test {} --filter {}", quote(path), quote(name))
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
