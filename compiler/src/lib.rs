//! `aos-compiler`: from `.aos` source to diagnostics and the checked IR.
//!
//! The facade other crates use:
//! - [`parse`]: text → syntax tree + syntax diagnostics (always a tree);
//! - [`format`]: canonical layout of a file, comments kept;
//! - [`check`]: a file and what it uses → diagnostics + [`ir::Program`];
//! - [`recheck`]: the same after an edit, reusing the previous analysis
//!   (the language server's incremental analysis).
//!
//! The compiler is plain synchronous Rust: no I/O beyond reading the files a
//! program `use`s, through [`check::FileLoader`].

pub mod ast;
pub mod attrs;
pub mod check;
pub mod codes;
pub mod diagnostic;
pub mod format;
pub mod ir;
pub mod lexer;
pub mod money;
pub mod parser;
pub mod query;
pub mod source;
pub mod span;
pub mod stdlib;
pub mod testplan;
pub mod verify;
/// Test support: generated pipelines for the benchmarks and tests (feature
/// `testkit`, never in a release build of the tools) and hand-made trees for
/// the unit tests.
#[cfg(any(test, feature = "testkit"))]
#[doc(hidden)]
pub mod testkit;

pub use check::{check, check_with, Analysis, FileLoader, FsLoader, Options as CheckOptions, ProjectLoader};
pub use check::incremental::{recheck, Recheck};

/// Reading program files: regular files only, bounded in size.
pub mod files {
    pub use crate::check::fsload::{read_regular, MAX_PROGRAM_BYTES};
}

/// The cost bound as the checker computes and shows it (`aosc check --cost`,
/// hover).
pub mod cost {
    pub use crate::check::cost::{CostReport, WorkflowCost, fmt_price, fmt_usd, render_table};
    pub use crate::money::Usd;
}

/// The names the language gives meaning to: built-in roles and functions,
/// and the one conversion between IR enums and their names.
pub mod names {
    pub use crate::check::env::{BUILTIN_ROLES, PURE_BUILTINS};
    pub use crate::check::risk::{effect_name, kind_name, parse_effect, parse_kind, parse_risk, parse_trust, risk_name, trust_name};
}

/// Token counts that are sound upper bounds for a model's tokenizer.
pub mod tokens {
    pub use crate::check::tokens::count;
}

/// Reading attribute blocks (the typed values every pass uses).
pub use check::attrs::{Block as AttrBlock, StepAttrs, ToolAttrs, WorkflowAttrs};
pub use codes::Code;
pub use diagnostic::{Diagnostic, Severity};
pub use format::format;
pub use parser::parse;
pub use source::{FileId, Sources};
pub use span::Span;
