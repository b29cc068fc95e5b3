//! One analysed document: the compiler's [`Analysis`] plus the name index
//! and line maps the features need.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use aos_compiler::{FileLoader, FsLoader, ProjectLoader};
use aos_compiler::query::{self, Index};
use aos_compiler::{Analysis, FileId, Span};
use tower_lsp_server::UriExt;
use tower_lsp_server::lsp_types::{Location, Position, Range, Uri};

use crate::position::LineMap;

/// Serves open documents first (their unsaved text), then the disk: within
/// the project roots when `disk` is set (the server sets it), else any
/// regular file of bounded size.
#[derive(Default)]
pub struct DocLoader {
    pub open: HashMap<PathBuf, String>,
    pub disk: Option<ProjectLoader>,
}

impl FileLoader for DocLoader {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        match self.open.get(path) {
            Some(text) => Ok(text.clone()),
            None => match &self.disk {
                Some(project) => project.load(path),
                None => FsLoader.load(path),
            },
        }
    }
}

/// A checked document.
pub struct Snapshot {
    pub analysis: Analysis,
    pub index: Index,
    lines: Vec<LineMap>,
}

impl Snapshot {
    /// Checks `text` as the file at `path`. The server shows findings and
    /// answers queries; it never runs the IR, so the check skips lowering
    /// (and counts prompts in bytes unless a finding quotes a cost figure:
    /// the findings are the same; hover recomputes exact figures).
    pub fn new(path: &str, text: &str, loader: &dyn FileLoader) -> Snapshot {
        let options = aos_compiler::CheckOptions { program: false };
        Snapshot::from_analysis(aos_compiler::check_with(path, text, loader, options))
    }

    /// The snapshot of `text`, the new text of this one's document after an
    /// edit: re-parses and re-checks only what the edit can affect
    /// ([`aos_compiler::recheck`]), with the same result as [`Snapshot::new`].
    pub fn recheck(self, text: &str, loader: &dyn FileLoader) -> (Snapshot, aos_compiler::Recheck) {
        let (analysis, how) = aos_compiler::recheck(self.analysis, text, loader);
        (Snapshot::from_analysis(analysis), how)
    }

    pub fn from_analysis(analysis: Analysis) -> Snapshot {
        let index = Index::new(&analysis);
        let lines = analysis.sources.iter().map(|(_, _, text)| LineMap::new(text)).collect();
        Snapshot { analysis, index, lines }
    }

    pub fn main(&self) -> FileId {
        self.analysis.main
    }

    pub fn text(&self, file: FileId) -> &str {
        self.analysis.sources.text(file)
    }

    pub fn main_text(&self) -> &str {
        self.text(self.main())
    }

    fn lines(&self, file: FileId) -> Option<&LineMap> {
        self.lines.get(file.0 as usize)
    }

    /// The byte offset of a position in the main file.
    pub fn offset(&self, pos: Position) -> usize {
        self.lines(self.main()).map_or(0, |m| m.offset(self.main_text(), pos))
    }

    pub fn range(&self, file: FileId, span: Span) -> Range {
        self.lines(file).map_or_else(Range::default, |m| m.range(self.text(file), span))
    }

    /// Whether a file is a standard library module.
    pub fn is_std(&self, file: FileId) -> bool {
        query::is_std_path(self.analysis.sources.path(file))
    }

    /// The URI of a file of the program; `None` for stdlib modules, which
    /// live inside the compiler rather than on disk.
    pub fn uri(&self, file: FileId) -> Option<Uri> {
        if self.is_std(file) {
            return None;
        }
        path_to_uri(self.analysis.sources.path(file))
    }

    pub fn location(&self, file: FileId, span: Span) -> Option<Location> {
        Some(Location { uri: self.uri(file)?, range: self.range(file, span) })
    }
}

/// `file://` URI of a path (relative paths are taken from the root, which
/// only tests use).
pub fn path_to_uri(path: &str) -> Option<Uri> {
    if Path::new(path).is_absolute() {
        Uri::from_file_path(path)
    } else {
        Uri::from_str(&format!("file:///{path}")).ok()
    }
}

/// The file path of a `file://` URI, as a string the compiler uses as a
/// path; other schemes are kept as they are.
pub fn uri_to_path(uri: &Uri) -> String {
    match uri.to_file_path() {
        Some(p) => p.to_string_lossy().into_owned(),
        None => uri.as_str().to_string(),
    }
}
