//! `aos-lsp`: the AOS language server.
//!
//! A thin adapter over the compiler's analysis. Every feature is a pure
//! function in [`features`] over a [`Snapshot`] (one `check` of a document
//! and the [`aos_compiler::query::Index`] of its names), tested directly;
//! [`server`] only moves documents in and converts answers out over the
//! Language Server Protocol.

// lsp-types keys edits by `Uri`, whose cached parse is interior mutability.
#![allow(clippy::mutable_key_type)]

pub mod features;
pub mod position;
pub mod server;
pub mod snapshot;

pub use server::{serve, serve_stdio};
pub use snapshot::{DocLoader, Snapshot};
pub use tower_lsp_server::lsp_types;
