//! Byte offsets (the compiler's spans) to and from LSP positions: 0-based
//! lines and 0-based columns in UTF-16 code units.

use aos_compiler::Span;
use tower_lsp_server::lsp_types::{Position, Range};

/// The line starts of one text.
#[derive(Clone, Debug)]
pub struct LineMap {
    starts: Vec<usize>,
    len: usize,
}

impl LineMap {
    pub fn new(text: &str) -> LineMap {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineMap { starts, len: text.len() }
    }

    /// The position of a byte offset (clamped to the text and moved back to
    /// a character boundary).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len()).min(self.len);
        while offset > 0 && !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(line).copied().unwrap_or(0);
        let character = text.get(start..offset).map_or(0, |s| s.encode_utf16().count());
        Position { line: to_u32(line), character: to_u32(character) }
    }

    /// The byte offset of a position; a column past the end of its line
    /// means the end of the line, a line past the end means the end of text.
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else { return text.len() };
        let end = self.starts.get(pos.line as usize + 1).copied().unwrap_or(text.len());
        let line = text.get(start..end).unwrap_or("");
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut units = 0usize;
        for (i, c) in line.char_indices() {
            if units >= pos.character as usize {
                return start + i;
            }
            units += c.len_utf16();
        }
        start + line.len()
    }

    pub fn range(&self, text: &str, span: Span) -> Range {
        Range { start: self.position(text, span.start as usize), end: self.position(text, span.end as usize) }
    }

    /// The byte span of a range.
    pub fn span(&self, text: &str, range: Range) -> Span {
        Span::new(self.offset(text, range.start), self.offset(text, range.end))
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_columns() {
        // `é` is 2 bytes and 1 UTF-16 unit; `𝄞` is 4 bytes and 2 units.
        let text = "ab\né𝄞x\n";
        let map = LineMap::new(text);
        assert_eq!(map.position(text, 0), Position::new(0, 0));
        assert_eq!(map.position(text, 3), Position::new(1, 0));
        assert_eq!(map.position(text, 5), Position::new(1, 1));
        assert_eq!(map.position(text, 9), Position::new(1, 3));
        assert_eq!(map.offset(text, Position::new(1, 3)), 9);
        assert_eq!(map.offset(text, Position::new(1, 99)), 10);
        assert_eq!(map.offset(text, Position::new(9, 0)), text.len());
        // Inside a character: back to its start.
        assert_eq!(map.position(text, 4), Position::new(1, 0));
    }
}
