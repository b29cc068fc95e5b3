//! Whole-document formatting with the compiler's formatter.

use tower_lsp_server::lsp_types::{Range, TextEdit};

use crate::position::LineMap;

/// The edits that format `text`: `None` when it does not parse (broken
/// text is never rewritten), no edit when it is already formatted, else one
/// edit replacing the whole document.
pub fn format(text: &str) -> Option<Vec<TextEdit>> {
    let formatted = aos_compiler::format(text).ok()?;
    if formatted == text {
        return Some(Vec::new());
    }
    let map = LineMap::new(text);
    let range = Range { start: map.position(text, 0), end: map.position(text, text.len()) };
    Some(vec![TextEdit { range, new_text: formatted }])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn formats_and_refuses_broken_text() {
        let edits = format("type   A = {x: Int}\n").unwrap();
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].new_text, "type A = { x: Int }\n");
        assert_eq!(edits[0].range.end, tower_lsp_server::lsp_types::Position::new(1, 0));
        assert!(format("workflow w( {").is_none());
        assert_eq!(format("type A = { x: Int }\n").unwrap(), vec![]);
    }
}
