//! The programs of `aosc serve --programs DIR`: every `.aos` file of the
//! folder, checked once at start and named after its file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use aos_compiler::FsLoader;
use aos_compiler::diagnostic::{render_human, Color};
use aos_compiler::ir::Program;

#[derive(Default)]
pub struct Programs {
    by_name: BTreeMap<String, Arc<Program>>,
}

impl Programs {
    /// Checks every `.aos` file of `dir`; any error refuses the whole folder
    /// (with the diagnostics) so that a broken pipeline is never scheduled.
    pub fn load(dir: &Path) -> Result<Programs, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("--programs `{}`: {e}", dir.display()))?;
        let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "aos")).collect();
        paths.sort();
        let mut by_name = BTreeMap::new();
        for path in paths {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
            let analysis = aos_compiler::check(&shown, &text, &FsLoader);
            let program = match (&analysis.program, analysis.diagnostics.iter().any(|d| d.is_error())) {
                (Some(p), false) => p.clone(),
                _ => {
                    return Err(format!(
                        "program `{shown}` does not check:\n{}",
                        render_human(&analysis.diagnostics, &analysis.sources, Color::Never)
                    ))
                }
            };
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            by_name.insert(name, Arc::new(program));
        }
        Ok(Programs { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Program>> {
        self.by_name.get(name)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<Program>)> {
        self.by_name.iter()
    }
}
