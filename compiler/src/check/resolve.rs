//! Loading the program (the checked file, the files it `use`s, the stdlib
//! modules) and building the [`Env`] of every declaration in it.
//!
//! Reports E0104 (a `use` that cannot be resolved) and E0102 (a name defined
//! twice in the same scope: items of each kind across the program,
//! parameters, steps of a workflow, record fields, enum variants).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Component, Path, PathBuf};

use super::FileLoader;
use super::env::{Decl, Env};
use crate::ast;
use crate::diagnostic::Diagnostic;
use crate::codes::Code;
use crate::source::{FileId, Sources};
use crate::span::Span;
use crate::stdlib;

/// Every file of a program, parsed once each.
pub struct Loaded {
    /// The syntax trees, the checked file first, then in the order the
    /// `use`s were found.
    pub files: Vec<(FileId, ast::File)>,
    /// The files that are stdlib modules, with the module name.
    pub std_files: BTreeMap<FileId, String>,
}

/// Parses `main` (already in `sources`) and everything it uses,
/// transitively. A file used twice (or in a cycle of `use`s) is parsed once.
pub fn load(main: FileId, sources: &mut Sources, loader: &dyn FileLoader, diags: &mut Vec<Diagnostic>) -> Loaded {
    let mut files = Vec::new();
    let mut std_files = BTreeMap::new();
    let mut by_path: HashMap<String, FileId> = HashMap::new();
    by_path.insert(normalize(Path::new(sources.path(main))), main);
    let mut std_ids: HashMap<String, FileId> = HashMap::new();
    let mut queue = VecDeque::from([main]);
    // For every file read because of a `use`: where that `use` is.
    let mut used_at: HashMap<FileId, (FileId, Span, String)> = HashMap::new();
    while let Some(id) = queue.pop_front() {
        let text = sources.text(id).to_string();
        let (file, parse_diags) = crate::parser::parse(&text, id);
        if let Some((site, span, rel)) = used_at.get(&id)
            && parse_diags.iter().any(Diagnostic::is_error)
        {
            // A used file that is not .aos is never quoted: it may be any
            // file of the project (a key, a config), and diagnostics end up
            // in CI logs. Its own check shows the details.
            diags.push(not_aos(*site, *span, rel, sources, id, &parse_diags));
            continue;
        }
        diags.extend(parse_diags);
        let dir = Path::new(sources.path(id)).parent().map(Path::to_path_buf).unwrap_or_default();
        for item in &file.items {
            let ast::ItemKind::Use(u) = &item.kind else { continue };
            match u {
                ast::Use::Std(segments) => {
                    let name = segments.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(".");
                    let span = segments.iter().map(|s| s.span).reduce(Span::join).unwrap_or(item.span);
                    match stdlib::module(&name) {
                        Some(src) => {
                            if !std_ids.contains_key(&name) {
                                let sid = sources.add(stdlib::display_path(&name), src);
                                std_ids.insert(name.clone(), sid);
                                std_files.insert(sid, name);
                                queue.push_back(sid);
                            }
                        }
                        None => diags.push(unknown_std_module(id, span, &name)),
                    }
                }
                ast::Use::Path(rel, span) => {
                    let full = normalize(&dir.join(rel));
                    if by_path.contains_key(&full) {
                        continue;
                    }
                    match loader.load(Path::new(&full)) {
                        Ok(text) => {
                            let fid = sources.add(full.clone(), text);
                            by_path.insert(full, fid);
                            used_at.insert(fid, (id, *span, rel.clone()));
                            queue.push_back(fid);
                        }
                        Err(e) => diags.push(
                            Diagnostic::error(E0104, id, *span, format!("cannot find the file `{rel}`"))
                                .with_primary_label(format!("looked for `{full}`: {e}"))
                                .with_help("a `use` path is relative to the file that contains it"),
                        ),
                    }
                }
            }
        }
        files.push((id, file));
    }
    Loaded { files, std_files }
}

const E0102: Code = Code::E0102;
const E0104: Code = Code::E0104;

/// E0104 at a `use` whose file does not parse: where the first error is,
/// never the file's text.
fn not_aos(site: FileId, span: Span, rel: &str, sources: &Sources, file: FileId, parse_diags: &[Diagnostic]) -> Diagnostic {
    let errors: Vec<&Diagnostic> = parse_diags.iter().filter(|d| d.is_error()).collect();
    let mut where_ = String::new();
    if let Some(first) = errors.first() {
        let text = sources.text(file);
        let at = (first.primary.start as usize).min(text.len());
        let before = text.get(..at).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        where_ = format!(": {} at line {line}, column {col}", first.code);
        if errors.len() > 1 {
            where_.push_str(&format!(", and {} more", errors.len() - 1));
        }
    }
    Diagnostic::error(E0104, site, span, format!("the file `{rel}` does not parse as .aos{where_}"))
        .with_primary_label("its syntax errors are not quoted here")
        .with_help(format!("run `aosc check` on `{}` to see them", sources.path(file)))
}

fn unknown_std_module(file: FileId, span: Span, name: &str) -> Diagnostic {
    let names: Vec<&str> = stdlib::MODULES.iter().map(|(n, _)| *n).collect();
    let list = names.iter().map(|n| format!("`std.{n}`")).collect::<Vec<_>>().join(", ");
    let mut help = format!("the standard modules are {list}");
    if let Some(near) = super::suggest::closest(name, names.iter().copied()) {
        help = format!("did you mean `std.{near}`? {help}");
    }
    Diagnostic::error(E0104, file, span, format!("there is no standard module `std.{name}`"))
        .with_primary_label("not a module of the standard library")
        .with_help(help)
}

/// `a/./b/../c.aos` → `a/c.aos`, without touching the file system (the
/// loader may serve files that are not on disk).
fn normalize(path: &Path) -> String {
    let mut out = PathBuf::new();
    let mut depth = 0usize;
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => {
                out.pop();
                depth -= 1;
            }
            Component::Normal(s) => {
                out.push(s);
                depth += 1;
            }
            other => out.push(other.as_os_str()),
        }
    }
    out.to_string_lossy().into_owned()
}

/// Builds the symbol tables of the program and reports duplicates. Stdlib
/// files are entered first, so that a user declaration that clashes with a
/// stdlib tool is the one reported.
pub fn build_env<'a>(loaded: &'a Loaded, diags: &mut Vec<Diagnostic>) -> Env<'a> {
    let mut env = Env::default();
    let std_first = loaded
        .files
        .iter()
        .filter(|(id, _)| loaded.std_files.contains_key(id))
        .chain(loaded.files.iter().filter(|(id, _)| !loaded.std_files.contains_key(id)));
    for (id, file) in std_first {
        let std = loaded.std_files.contains_key(id);
        for item in &file.items {
            add_item(&mut env, *id, item, std, diags);
        }
    }
    env.used_std = loaded.std_files.values().cloned().collect();
    for (module, tool) in std_tools() {
        if !env.used_std.contains(*module) {
            env.unused_std_tools.entry(tool.clone()).or_insert(*module);
        }
    }
    env
}

/// Every stdlib tool, with its module, in module order (parsed once per
/// process: the modules are part of the binary).
fn std_tools() -> &'static [(&'static str, String)] {
    static TOOLS: std::sync::OnceLock<Vec<(&'static str, String)>> = std::sync::OnceLock::new();
    TOOLS.get_or_init(|| {
        let mut out = Vec::new();
        for (name, src) in stdlib::MODULES {
            let (file, _) = crate::parser::parse(src, FileId(u32::MAX));
            for item in &file.items {
                if let ast::ItemKind::Tool(t) = &item.kind {
                    out.push((*name, Env::tool_name(&t.path)));
                }
            }
        }
        out
    })
}

fn add_item<'a>(env: &mut Env<'a>, file: FileId, item: &'a ast::Item, std: bool, diags: &mut Vec<Diagnostic>) {
    let doc = item.doc.as_deref();
    let span = item.span;
    macro_rules! decl {
        ($d:expr) => {
            Decl { file, decl: $d, doc, span, std }
        };
    }
    match &item.kind {
        ast::ItemKind::Use(_) | ast::ItemKind::Test(_) | ast::ItemKind::Error => {}
        ast::ItemKind::Model(m) => insert(&mut env.models, "model", &m.name, decl!(m), diags),
        ast::ItemKind::Role(r) => insert(&mut env.roles, "role", &r.name, decl!(r), diags),
        ast::ItemKind::Policy(p) => insert(&mut env.policies, "policy", &p.name, decl!(p), diags),
        ast::ItemKind::Type(t) => {
            type_dups(&t.ty, file, diags);
            if let Some(e) = env.enums.get(&t.name.name) {
                diags.push(duplicate("type", &t.name, file, e.file, e.decl.name.span));
            } else {
                insert(&mut env.types, "type", &t.name, decl!(t), diags);
            }
        }
        ast::ItemKind::Enum(e) => {
            let mut seen: HashMap<&str, Span> = HashMap::new();
            for v in &e.variants {
                if let Some(first) = seen.get(v.name.as_str()) {
                    diags.push(
                        Diagnostic::error(E0102, file, v.span, format!("enum `{}` has two variants named `{}`", e.name.name, v.name))
                            .with_primary_label("defined again here")
                            .with_label(file, *first, "first defined here"),
                    );
                } else {
                    seen.insert(&v.name, v.span);
                }
            }
            if let Some(t) = env.types.get(&e.name.name) {
                diags.push(duplicate("type", &e.name, file, t.file, t.decl.name.span));
            } else {
                insert(&mut env.enums, "type", &e.name, decl!(e), diags);
            }
        }
        ast::ItemKind::Tool(t) => {
            let Some(last) = t.path.last() else { return };
            let name = Env::tool_name(&t.path);
            let ident = ast::Ident { name: name.clone(), span: t.path.iter().map(|i| i.span).fold(last.span, Span::join) };
            param_dups(&t.params, &format!("tool `{name}`"), file, diags);
            if let Some(ret) = &t.ret {
                type_dups(ret, file, diags);
            }
            if let Some(first) = env.tools.get(&name) {
                let first_span = first.decl.path.iter().map(|i| i.span).reduce(Span::join).unwrap_or(first.span);
                diags.push(duplicate("tool", &ident, file, first.file, first_span));
            } else {
                env.tools.insert(name, decl!(t));
            }
        }
        ast::ItemKind::Workflow(w) => {
            param_dups(&w.params, &format!("workflow `{}`", w.name.name), file, diags);
            if let Some(ret) = &w.ret {
                type_dups(ret, file, diags);
            }
            let mut steps: HashMap<&str, Span> = HashMap::new();
            let params: HashMap<&str, Span> = w.params.iter().map(|p| (p.name.name.as_str(), p.name.span)).collect();
            for s in &w.steps {
                if let Some(ty) = &s.ty {
                    type_dups(ty, file, diags);
                }
                if let Some(first) = steps.get(s.name.name.as_str()) {
                    diags.push(
                        Diagnostic::error(
                            E0102,
                            file,
                            s.name.span,
                            format!("step `{}` is defined twice in workflow `{}`", s.name.name, w.name.name),
                        )
                        .with_primary_label("defined again here")
                        .with_label(file, *first, "first defined here")
                        .with_help("give each step of a workflow its own name"),
                    );
                } else if let Some(first) = params.get(s.name.name.as_str()) {
                    diags.push(
                        Diagnostic::error(
                            E0102,
                            file,
                            s.name.span,
                            format!("step `{}` has the name of a parameter of workflow `{}`", s.name.name, w.name.name),
                        )
                        .with_primary_label("step defined here")
                        .with_label(file, *first, "parameter defined here")
                        .with_help("a step and a parameter cannot share a name; rename the step"),
                    );
                } else {
                    steps.insert(&s.name.name, s.name.span);
                }
            }
            insert(&mut env.workflows, "workflow", &w.name, decl!(w), diags);
        }
    }
}

fn insert<'a, T>(
    map: &mut BTreeMap<String, Decl<'a, T>>,
    kind: &str,
    name: &ast::Ident,
    decl: Decl<'a, T>,
    diags: &mut Vec<Diagnostic>,
) where
    T: Named,
{
    if let Some(first) = map.get(&name.name) {
        diags.push(duplicate(kind, name, decl.file, first.file, first.decl.ident().span));
    } else {
        map.insert(name.name.clone(), decl);
    }
}

/// Declarations with one name (tools have a dotted path instead).
trait Named {
    fn ident(&self) -> &ast::Ident;
}
impl Named for ast::ModelDecl {
    fn ident(&self) -> &ast::Ident {
        &self.name
    }
}
impl Named for ast::RoleDecl {
    fn ident(&self) -> &ast::Ident {
        &self.name
    }
}
impl Named for ast::PolicyDecl {
    fn ident(&self) -> &ast::Ident {
        &self.name
    }
}
impl Named for ast::TypeDecl {
    fn ident(&self) -> &ast::Ident {
        &self.name
    }
}
impl Named for ast::EnumDecl {
    fn ident(&self) -> &ast::Ident {
        &self.name
    }
}
impl Named for ast::Workflow {
    fn ident(&self) -> &ast::Ident {
        &self.name
    }
}

fn duplicate(kind: &str, name: &ast::Ident, file: FileId, first_file: FileId, first: Span) -> Diagnostic {
    Diagnostic::error(E0102, file, name.span, format!("{kind} `{}` is defined twice", name.name))
        .with_primary_label("defined again here")
        .with_label(first_file, first, "first defined here")
        .with_help(format!("rename or remove one of the two definitions of `{}`", name.name))
}

fn param_dups(params: &[ast::Param], owner: &str, file: FileId, diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for p in params {
        type_dups(&p.ty, file, diags);
        if let Some(first) = seen.get(p.name.name.as_str()) {
            diags.push(
                Diagnostic::error(E0102, file, p.name.span, format!("{owner} has two parameters named `{}`", p.name.name))
                    .with_primary_label("defined again here")
                    .with_label(file, *first, "first defined here"),
            );
        } else {
            seen.insert(&p.name.name, p.name.span);
        }
    }
}

/// Duplicate fields of record types, at any depth.
fn type_dups(ty: &ast::TypeExpr, file: FileId, diags: &mut Vec<Diagnostic>) {
    match &ty.kind {
        ast::TypeExprKind::Named(_) | ast::TypeExprKind::Error => {}
        ast::TypeExprKind::List(inner) | ast::TypeExprKind::Optional(inner) => type_dups(inner, file, diags),
        ast::TypeExprKind::Record(fields) => {
            let mut seen: HashMap<&str, Span> = HashMap::new();
            for (name, fty) in fields {
                type_dups(fty, file, diags);
                if let Some(first) = seen.get(name.name.as_str()) {
                    diags.push(
                        Diagnostic::error(E0102, file, name.span, format!("the record type has two fields named `{}`", name.name))
                            .with_primary_label("defined again here")
                            .with_label(file, *first, "first defined here"),
                    );
                } else {
                    seen.insert(&name.name, name.span);
                }
            }
        }
    }
}

/// The names of the standard modules a program uses.
pub fn used_modules(loaded: &Loaded) -> BTreeSet<String> {
    loaded.std_files.values().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::normalize;
    use std::path::Path;

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize(Path::new("a/./b/../c.aos")), "a/c.aos");
        assert_eq!(normalize(Path::new("../x/./y.aos")), "../x/y.aos");
        assert_eq!(normalize(Path::new("./y.aos")), "y.aos");
    }
}
