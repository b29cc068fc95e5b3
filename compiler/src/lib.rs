//! `aos-compiler`: from `.aos` source to diagnostics and the checked IR.
//!
//! The facade other crates use:
//! - [`parse`]: text → syntax tree + syntax diagnostics (always a tree);
//! - [`format`]: canonical layout of a file, comments kept;
//! - [`check`]: a file and what it uses → diagnostics + [`ir::Program`].
//!
//! The compiler is plain synchronous Rust: no I/O beyond reading the files a
//! program `use`s, through [`check::FileLoader`].

pub mod ast;
pub mod check;
pub mod diagnostic;
pub mod format;
pub mod ir;
pub mod lexer;
pub mod parser;
pub mod query;
pub mod source;
pub mod span;
pub mod stdlib;
pub mod verify;
#[doc(hidden)]
pub mod testgen;

pub use check::{check, Analysis};
pub use diagnostic::{Diagnostic, Severity};
pub use format::format;
pub use parser::parse;
pub use source::{FileId, Sources};
pub use span::Span;
