//! The `[new]` table of the project's `aos.toml`: which model plans.
//!
//! ```toml
//! [new]
//! planner = "drafter"          # a role of the --with files to plan with
//! # or a model of its own:
//! provider = "openai"          # openai | anthropic | gemini | local
//! model = "gpt-4o-mini"        # the provider's model id; for `local`, a GGUF file
//! base_url = "http://127.0.0.1:8080/v1"   # optional: an OpenAI-compatible server
//! ```
//!
//! Keys never go in the file: they stay in the environment. The project is
//! the nearest directory above the output file holding an `aos.toml` (as
//! for `use`).

use std::path::{Path, PathBuf};

use aos_compiler::ir::Provider;

/// What `[new]` says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewConfig {
    /// The `aos.toml` it came from.
    pub path: PathBuf,
    /// A role of the `--with` files.
    pub planner_role: Option<String>,
    pub model: Option<ConfiguredModel>,
}

/// `provider` + `model` (+ `base_url`).
#[derive(Clone, Debug, PartialEq)]
pub enum ConfiguredModel {
    Hosted { provider: Provider, id: String, base_url: Option<String> },
    /// The embedded planner with this GGUF file (relative paths are taken
    /// from the `aos.toml`'s directory).
    Local { gguf: PathBuf },
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{path}`: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("`{path}` is not valid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("`{path}`, [new] {field}: {message}")]
    Field { path: String, field: &'static str, message: String },
}

/// The nearest `aos.toml` at or above `dir`.
pub fn find(dir: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let abs = abs.canonicalize().unwrap_or(abs);
    abs.ancestors().map(|d| d.join("aos.toml")).find(|m| m.is_file())
}

/// The `[new]` table of the `aos.toml` above `dir`; `None` when there is no
/// manifest or it has no `[new]`.
pub fn load(dir: &Path) -> Result<Option<NewConfig>, ConfigError> {
    let Some(path) = find(dir) else { return Ok(None) };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
    parse(&text, &path)
}

/// Parses the manifest text (`path` for messages and relative paths).
pub fn parse(text: &str, path: &Path) -> Result<Option<NewConfig>, ConfigError> {
    let shown = path.display().to_string();
    let doc: toml_edit::DocumentMut =
        text.parse().map_err(|e: toml_edit::TomlError| ConfigError::Toml { path: shown.clone(), message: e.to_string() })?;
    let Some(item) = doc.get("new") else { return Ok(None) };
    let field_err = |field: &'static str, message: String| ConfigError::Field { path: shown.clone(), field, message };
    let Some(table) = item.as_table_like() else {
        return Err(field_err("(table)", "`new` must be a table: `[new]`".into()));
    };
    let string = |field: &'static str| -> Result<Option<String>, ConfigError> {
        match table.get(field) {
            None => Ok(None),
            Some(v) => match v.as_str() {
                Some(s) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                _ => Err(field_err(field, "must be a non-empty string".into())),
            },
        }
    };
    for (key, _) in table.iter() {
        if !["planner", "provider", "model", "base_url"].contains(&key) {
            return Err(field_err("(keys)", format!("unknown key `{key}` (known: planner, provider, model, base_url)")));
        }
    }
    let planner_role = string("planner")?;
    let provider = string("provider")?;
    let model = string("model")?;
    let base_url = string("base_url")?;
    let configured = match (provider, model) {
        (None, None) => {
            if base_url.is_some() {
                return Err(field_err("base_url", "needs `provider` and `model`".into()));
            }
            None
        }
        (Some(_), None) => return Err(field_err("model", "`provider` is set but `model` is not".into())),
        (None, Some(_)) => return Err(field_err("provider", "`model` is set but `provider` is not".into())),
        (Some(p), Some(m)) => Some(match p.as_str() {
            "local" => {
                let gguf = PathBuf::from(&m);
                let gguf = if gguf.is_absolute() { gguf } else { path.parent().unwrap_or(Path::new(".")).join(gguf) };
                ConfiguredModel::Local { gguf }
            }
            other => {
                let provider = match other {
                    "openai" => Provider::Openai,
                    "anthropic" => Provider::Anthropic,
                    "gemini" => Provider::Gemini,
                    _ => return Err(field_err("provider", format!("unknown provider `{other}` (openai, anthropic, gemini or local)"))),
                };
                ConfiguredModel::Hosted { provider, id: m, base_url }
            }
        }),
    };
    if planner_role.is_some() && configured.is_some() {
        return Err(field_err("planner", "name a role or a provider and model, not both".into()));
    }
    Ok(Some(NewConfig { path: path.to_path_buf(), planner_role, model: configured }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Option<NewConfig>, ConfigError> {
        parse(text, Path::new("/proj/aos.toml"))
    }

    #[test]
    fn a_role_or_a_model_is_read() {
        assert_eq!(p("use_roots = []\n").ok(), Some(None));
        let c = p("[new]\nplanner = \"drafter\"\n").ok().flatten();
        assert_eq!(c.and_then(|c| c.planner_role), Some("drafter".to_string()));
        let c = p("[new]\nprovider = \"openai\"\nmodel = \"smollm2\"\nbase_url = \"http://127.0.0.1:1/v1\"\n").ok().flatten();
        assert_eq!(
            c.and_then(|c| c.model),
            Some(ConfiguredModel::Hosted { provider: Provider::Openai, id: "smollm2".into(), base_url: Some("http://127.0.0.1:1/v1".into()) })
        );
        let c = p("[new]\nprovider = \"local\"\nmodel = \"models/smol.gguf\"\n").ok().flatten();
        assert_eq!(c.and_then(|c| c.model), Some(ConfiguredModel::Local { gguf: PathBuf::from("/proj/models/smol.gguf") }));
    }

    #[test]
    fn mistakes_are_named() {
        let msg = |t: &str| p(t).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg("[new]\nprovider = \"openai\"\n").contains("[new] model"));
        assert!(msg("[new]\nprovider = \"cohere\"\nmodel = \"x\"\n").contains("unknown provider `cohere`"));
        assert!(msg("[new]\nplaner = \"x\"\n").contains("unknown key `planer`"));
        assert!(msg("[new]\nplanner = 3\n").contains("non-empty string"));
        assert!(msg("[new\n").contains("not valid TOML"));
        assert!(msg("[new]\nplanner = \"a\"\nprovider = \"openai\"\nmodel = \"m\"\n").contains("not both"));
    }
}
