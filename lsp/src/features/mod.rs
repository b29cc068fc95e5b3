//! The editor features, each a pure function over a [`crate::Snapshot`]
//! (or the text of a document) that answers in LSP types.

pub mod code_actions;
pub mod code_lens;
pub mod completion;
pub mod definition;
pub mod diagnostics;
pub mod formatting;
pub mod generate;
pub mod hover;
pub mod references;
pub mod rename;
pub mod semantic_tokens;
pub mod symbols;
