//! Find references.

use tower_lsp_server::lsp_types::{Location, Position};

use crate::Snapshot;
use crate::features::definition::symbol_at;

/// Every place the symbol under the cursor is named (in the workspace's
/// files, not the stdlib), its declaration when `include_decl`.
pub fn references(snap: &Snapshot, pos: Position, include_decl: bool) -> Vec<Location> {
    let Some((id, _)) = symbol_at(snap, pos) else { return Vec::new() };
    snap.index
        .references(id)
        .filter(|o| include_decl || !o.is_decl)
        .filter_map(|o| snap.location(o.file, o.span))
        .collect()
}
