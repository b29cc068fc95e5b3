//! The checker: resolution, types, the step graph, roles, risk and policy,
//! secrets, cost — and lowering to the IR.

pub mod cost;
pub mod env;
pub mod models;
pub mod roles;
pub mod tokens;

use std::path::Path;

use crate::ast;
use crate::diagnostic::Diagnostic;
use crate::ir;
use crate::source::{FileId, Sources};

/// Reads the files a program `use`s. The CLI reads the file system; the
/// language server reads its open documents first.
pub trait FileLoader {
    fn load(&self, path: &Path) -> std::io::Result<String>;
}

/// Reads from the file system.
pub struct FsLoader;

impl FileLoader for FsLoader {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Everything the checker learned about a program.
pub struct Analysis {
    pub sources: Sources,
    /// The file that was checked.
    pub main: FileId,
    /// The syntax tree of every file parsed (the main file, used files and
    /// stdlib modules).
    pub files: Vec<(FileId, ast::File)>,
    /// Every finding, in file and source order.
    pub diagnostics: Vec<Diagnostic>,
    /// The checked program, when there are no errors.
    pub program: Option<ir::Program>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks the file at `path` whose text is `text`.
pub fn check(path: &str, text: &str, loader: &dyn FileLoader) -> Analysis {
    let _ = loader;
    let mut sources = Sources::new();
    let main = sources.add(path, text);
    let (file, diagnostics) = crate::parser::parse(text, main);
    Analysis { sources, main, files: vec![(main, file)], diagnostics, program: None }
}
