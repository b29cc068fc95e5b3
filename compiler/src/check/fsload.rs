//! Reading the files a program `use`s from disk, safely: only regular files
//! (never a device, a FIFO or a directory: `use "/dev/zero"` must not grow
//! the checker without bound, nor a FIFO block it), no larger than
//! [`MAX_USE_BYTES`], and only inside the program's project roots, so that
//! checking an untrusted pipeline cannot read (and quote) `/etc/shadow` or
//! `../../secret`.
//!
//! The project root is the nearest directory above the program holding an
//! `aos.toml`; without one, the current directory and the program's own
//! directory. `aos.toml` may name more roots (relative to itself):
//!
//! ```toml
//! use_roots = ["../shared-pipelines", "/opt/aos/lib"]
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use super::FileLoader;

/// The largest file a `use` reads.
pub const MAX_USE_BYTES: u64 = 8 * 1024 * 1024;

/// Why a `use`d file is not read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "it is outside the project roots ({roots}); add its directory to `use_roots` in aos.toml"
    )]
    OutsideRoots { roots: String },
    #[error("it is not a regular file")]
    NotRegular,
    #[error("it is {size} bytes, more than the {limit} it may have")]
    TooLarge { size: u64, limit: u64 },
    #[error("it is not UTF-8 text")]
    NotText,
}

/// Reads `use`d files inside the project roots (see the module doc).
#[derive(Debug, Clone)]
pub struct ProjectLoader {
    /// Canonical directories.
    roots: Vec<PathBuf>,
}

impl ProjectLoader {
    /// A loader confined to explicit roots (made canonical; ones that do
    /// not exist are dropped).
    pub fn with_roots(roots: impl IntoIterator<Item = PathBuf>) -> ProjectLoader {
        let mut out: Vec<PathBuf> = roots
            .into_iter()
            .filter_map(|r| r.canonicalize().ok())
            .collect();
        out.sort();
        out.dedup();
        ProjectLoader { roots: out }
    }

    /// The roots of the program at `program` (see the module doc).
    pub fn for_program(program: &Path) -> ProjectLoader {
        let abs = std::path::absolute(program).unwrap_or_else(|_| program.to_path_buf());
        let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = dir.canonicalize().unwrap_or(dir);
        let mut at = Some(dir.as_path());
        while let Some(d) = at {
            let manifest = d.join("aos.toml");
            if manifest.is_file() {
                let mut roots = vec![d.to_path_buf()];
                roots.extend(extra_roots(&manifest).into_iter().map(|r| d.join(r)));
                return ProjectLoader::with_roots(roots);
            }
            at = d.parent();
        }
        let cwd = std::env::current_dir().ok();
        ProjectLoader::with_roots(cwd.into_iter().chain([dir]))
    }

    /// The canonical roots.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    fn read(&self, path: &Path) -> std::io::Result<String> {
        let real = path.canonicalize()?;
        if !self.roots.iter().any(|r| real.starts_with(r)) {
            let roots = self
                .roots
                .iter()
                .map(|r| format!("`{}`", r.display()))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(refused(LoadError::OutsideRoots { roots }));
        }
        read_regular(&real, MAX_USE_BYTES)
    }
}

/// The largest program file `aosc check` and `aosc run` read (a checked
/// program as IR JSON can be large).
pub const MAX_PROGRAM_BYTES: u64 = 256 * 1024 * 1024;

/// Reads a regular file of at most `limit` bytes as UTF-8 text: a device,
/// a FIFO or a directory is refused before it is opened.
pub fn read_regular(real: &Path, limit: u64) -> std::io::Result<String> {
    // Checked before opening: opening a FIFO blocks until a writer comes.
    let meta = std::fs::metadata(real)?;
    if !meta.is_file() {
        return Err(refused(LoadError::NotRegular));
    }
    if meta.len() > limit {
        return Err(refused(LoadError::TooLarge {
            size: meta.len(),
            limit,
        }));
    }
    let file = std::fs::File::open(real)?;
    // The file may grow between the look and the read: read one byte
    // past the limit at most.
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(refused(LoadError::TooLarge {
            size: bytes.len() as u64,
            limit,
        }));
    }
    String::from_utf8(bytes).map_err(|_| refused(LoadError::NotText))
}

impl FileLoader for ProjectLoader {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        self.read(path)
    }
}

fn refused(e: LoadError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, e)
}

/// `use_roots = [...]` of an `aos.toml` (nothing when it cannot be read).
fn extra_roots(manifest: &Path) -> Vec<PathBuf> {
    let Ok(meta) = std::fs::metadata(manifest) else {
        return Vec::new();
    };
    if !meta.is_file() || meta.len() > MAX_USE_BYTES {
        return Vec::new();
    }
    let Ok(text) = std::fs::read_to_string(manifest) else {
        return Vec::new();
    };
    let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
        return Vec::new();
    };
    let Some(list) = doc.get("use_roots").and_then(|v| v.as_array()) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|v| v.as_str())
        .map(PathBuf::from)
        .collect()
}
