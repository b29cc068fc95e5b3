//! Go to definition.

use aos_compiler::query::Symbol;
use tower_lsp_server::lsp_types::{Location, Position};

use crate::Snapshot;

/// The symbol under a position of the main file.
pub fn symbol_at(snap: &Snapshot, pos: Position) -> Option<(usize, &Symbol)> {
    let offset = snap.offset(pos);
    let occ = snap.index.at(snap.main(), offset)?;
    Some((occ.symbol, snap.index.symbol(occ.symbol)?))
}

/// Where the name under the cursor is declared. Built-ins and stdlib
/// declarations have no location in the workspace: `None`.
pub fn definition(snap: &Snapshot, pos: Position) -> Option<Location> {
    let (_, sym) = symbol_at(snap, pos)?;
    snap.location(sym.file?, sym.name_span)
}
