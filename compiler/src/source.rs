//! The files of one compilation: the file given, the files it `use`s and the
//! standard library modules, each with an id that diagnostics refer to.

use crate::span::{LineIndex, Span};

/// Which file of a [`Sources`] something is in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct FileId(pub u32);

struct SourceFile {
    path: String,
    text: String,
    lines: LineIndex,
}

/// All files of a compilation.
#[derive(Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn new() -> Self {
        Sources::default()
    }

    /// Adds a file and returns its id.
    pub fn add(&mut self, path: impl Into<String>, text: impl Into<String>) -> FileId {
        let text = text.into();
        let lines = LineIndex::new(&text);
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        self.files.push(SourceFile { path: path.into(), text, lines });
        id
    }

    /// The id of a file already added under this path.
    pub fn find(&self, path: &str) -> Option<FileId> {
        self.files.iter().position(|f| f.path == path).and_then(|i| u32::try_from(i).ok()).map(FileId)
    }

    pub fn path(&self, id: FileId) -> &str {
        self.files.get(id.0 as usize).map_or("<unknown>", |f| f.path.as_str())
    }

    pub fn text(&self, id: FileId) -> &str {
        self.files.get(id.0 as usize).map_or("", |f| f.text.as_str())
    }

    pub fn line_index(&self, id: FileId) -> Option<&LineIndex> {
        self.files.get(id.0 as usize).map(|f| &f.lines)
    }

    /// 1-based (line, column, end_line, end_column) of a span, columns in
    /// characters.
    pub fn range_of(&self, id: FileId, span: Span) -> (usize, usize, usize, usize) {
        match self.files.get(id.0 as usize) {
            Some(f) => {
                let a = f.lines.line_col(&f.text, span.start as usize);
                let b = f.lines.line_col(&f.text, span.end as usize);
                (a.line, a.column, b.line, b.column)
            }
            None => (1, 1, 1, 1),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileId, &str, &str)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(u32::try_from(i).unwrap_or(u32::MAX)), f.path.as_str(), f.text.as_str()))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}
