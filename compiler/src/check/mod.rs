//! The checker: resolution, types, the step graph, roles, risk and policy,
//! secrets, cost — and lowering to the IR.

pub(crate) mod agent;
pub(crate) mod attrs;
pub(crate) mod blocks;
pub(crate) mod cache;
pub mod cost;
pub(crate) mod cycles;
pub mod env;
pub(crate) mod fsload;
pub(crate) mod graph;
pub(crate) mod incremental;
pub(crate) mod lower;
pub mod models;
pub mod policy;
pub mod resolve;
pub(crate) mod risk;
pub(crate) mod route;
pub mod roles;
pub(crate) mod suggest;
pub mod testblocks;
pub mod tokens;
pub(crate) mod ty;
pub(crate) mod types;

use std::path::Path;

use crate::ast;
use crate::diagnostic::Diagnostic;
use crate::ir;
use crate::source::{FileId, Sources};

/// Reads the files a program `use`s. The CLI reads the file system; the
/// language server reads its open documents first.
pub trait FileLoader {
    fn load(&self, path: &Path) -> std::io::Result<String>;
}

/// Reads from the file system: regular files of bounded size, anywhere.
/// Programs from disk are checked with [`ProjectLoader`], which also
/// confines `use` to the project.
pub struct FsLoader;

impl FileLoader for FsLoader {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        fsload::read_regular(path, fsload::MAX_USE_BYTES)
    }
}

pub use fsload::ProjectLoader;

/// Everything the checker learned about a program.
pub struct Analysis {
    pub sources: Sources,
    /// The file that was checked.
    pub main: FileId,
    /// The syntax tree of every file parsed (the main file, used files and
    /// stdlib modules).
    pub files: Vec<(FileId, ast::File)>,
    /// Every finding, in file and source order.
    pub diagnostics: Vec<Diagnostic>,
    /// The checked program, when there are no errors (and it was asked
    /// for: [`Options::program`]).
    pub program: Option<ir::Program>,
    /// The worst-case cost of every workflow (`aosc check --cost`), also
    /// when there are errors.
    pub cost: cost::CostReport,
    /// The checked file's test blocks (`aosc test`), when the program
    /// checks; a block with an error is left out (and reported).
    pub tests: Vec<crate::testplan::TestCase>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks the file at `path` whose text is `text`.
///
/// The passes run in order, each skipping what an earlier one already
/// reported (one mistake, one diagnostic): parse every file, resolve `use`s
/// and declarations, then names and types, the step graph, models and roles,
/// cost, risk and policy; the IR is built only when there is no error.
pub fn check(path: &str, text: &str, loader: &dyn FileLoader) -> Analysis {
    check_with(path, text, loader, Options::default())
}

/// What [`check_with`] computes besides the diagnostics.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Lower the program to the IR (when there is no error) and count the
    /// cost with each model's own tokenizer. Without it (`aosc check` with
    /// neither `--cost` nor `--emit-ir`), `program` is `None` and the cost
    /// figures may be UTF-8 byte bounds ([`cost::CostReport::exact`]); the
    /// diagnostics are the same either way.
    pub program: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { program: true }
    }
}

/// [`check`] with [`Options`]: `Options { program: false }` gives the same
/// diagnostics without lowering, and without loading a BPE unless a finding
/// quotes a cost figure.
pub fn check_with(path: &str, text: &str, loader: &dyn FileLoader, options: Options) -> Analysis {
    let mut sources = Sources::new();
    let main = sources.add(path, text);
    let mut diagnostics = Vec::new();
    let loaded = resolve::load(main, &mut sources, loader, &mut diagnostics);
    // Test blocks are checked against the IR: a file that has some is
    // lowered whatever the options say (and the IR dropped after), so that
    // the diagnostics are the same in both modes.
    let decls: Vec<&ast::TestDecl> = loaded
        .files
        .iter()
        .find(|(id, _)| *id == main)
        .map(|(_, file)| {
            file.items
                .iter()
                .filter_map(|i| match &i.kind {
                    ast::ItemKind::Test(t) => Some(t),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let lower = Options { program: options.program || !decls.is_empty() };
    // Fan-out blocks are checked as the workflows they run as.
    let lifted = blocks::lift(&loaded);
    let (mut program, cost) = run_passes(lifted.as_ref().unwrap_or(&loaded), &mut diagnostics, lower);
    let mut tests = Vec::new();
    if let Some(p) = &program
        && !decls.is_empty()
    {
        tests = testblocks::check(main, &decls, p, text, &mut diagnostics);
        if diagnostics.iter().any(Diagnostic::is_error) {
            program = None;
        }
    }
    if !options.program {
        program = None;
    }
    sort_diagnostics(&mut diagnostics);
    Analysis { sources, main, files: loaded.files, diagnostics, program, cost, tests }
}

/// Every pass after parsing; returns the IR when nothing is wrong, and the
/// cost report in any case.
fn run_passes(loaded: &resolve::Loaded, diags: &mut Vec<Diagnostic>, options: Options) -> (Option<ir::Program>, cost::CostReport) {
    let env = resolve::build_env(loaded, diags);
    let counting = if options.program { Counting::Exact } else { Counting::BytesUnlessFinding };
    let facts = passes(&env, diags, counting);
    if !options.program || diags.iter().any(Diagnostic::is_error) {
        return (None, facts.cost);
    }
    let inputs = lower::Inputs {
        types: &facts.types,
        graphs: &facts.graphs,
        models: &facts.models,
        roles: &facts.roles,
        cost: &facts.cost,
        policy: &facts.policy,
    };
    let program = lower::program(&env, &inputs);
    (Some(program), facts.cost)
}

/// How the cost pass counts the tokens of prompts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counting {
    /// With each model's own tokenizer ([`cost::analyze`]).
    Exact,
    /// In UTF-8 bytes, a bound of every tokenizer, and exactly only when a
    /// finding quotes a figure ([`cost::analyze_for_diagnostics`]).
    BytesUnlessFinding,
    /// In UTF-8 bytes whatever the findings (the incremental re-check,
    /// which decides about exact counting itself).
    Bytes,
}

/// What the passes after resolution computed (the IR is lowered from it).
pub(crate) struct Facts {
    pub types: types::TypeInfo,
    pub graphs: std::collections::BTreeMap<String, graph::StepGraph>,
    pub models: std::collections::BTreeMap<String, ir::Model>,
    pub roles: std::collections::BTreeMap<String, Vec<String>>,
    pub cost: cost::CostReport,
    pub policy: policy::PolicyReport,
}

/// The checks after resolution, in order. The whole check and the
/// incremental re-check ([`incremental`]) both run exactly this.
pub(crate) fn passes(env: &env::Env<'_>, diags: &mut Vec<Diagnostic>, counting: Counting) -> Facts {
    attrs::check(env, diags);
    agent::check(env, diags);
    cache::check(env, diags);
    route::check(env, diags);
    cycles::check_types(env, diags);
    cycles::check_workflows(env, diags);
    let types = types::check(env, diags);
    let graphs = graph::check(env, diags);
    let models = models::lower_models(env, diags);
    let roles = roles::check(env, diags);
    let cost = match counting {
        Counting::Exact => cost::analyze(env, &models, diags),
        Counting::BytesUnlessFinding => cost::analyze_for_diagnostics(env, &models, diags),
        Counting::Bytes => cost::analyze_bytes(env, &models, diags),
    };
    let policy = policy::analyze(env, diags);
    Facts { types, graphs, models, roles, cost, policy }
}

/// File order (the checked file first), then position, then code, so that
/// output is stable whatever order the passes ran in.
pub(crate) fn sort_diagnostics(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (a.file, a.primary.start, a.primary.end, a.code).cmp(&(b.file, b.primary.start, b.primary.end, b.code))
    });
}
