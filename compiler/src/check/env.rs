//! The program-wide symbol tables every pass reads.
//!
//! Names are visible file-wide and across `use`d files; stdlib tools are
//! visible once their module is `use`d. Built by [`super::resolve`], which
//! also reports duplicates (E0102) and unresolvable `use`s (E0104). Later
//! passes look names up here and silently skip what is absent: the resolver
//! already reported it, and one mistake gives one diagnostic.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast;
use crate::source::FileId;

/// A declaration and where it is.
#[derive(Debug)]
pub struct Decl<'a, T> {
    pub file: FileId,
    pub decl: &'a T,
    /// The `///` doc of the item.
    pub doc: Option<&'a str>,
    /// The span of the whole item.
    pub span: crate::span::Span,
    /// True for declarations that come from the standard library.
    pub std: bool,
}

// Manual impls: `T` itself need not be `Clone`/`Copy`.
impl<T> Clone for Decl<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Decl<'_, T> {}

/// Every declaration visible to the checked program, by name (tools by
/// dotted name). When a name is declared twice, the first declaration is
/// kept (the second is E0102).
#[derive(Debug, Default)]
pub struct Env<'a> {
    pub models: BTreeMap<String, Decl<'a, ast::ModelDecl>>,
    pub roles: BTreeMap<String, Decl<'a, ast::RoleDecl>>,
    pub tools: BTreeMap<String, Decl<'a, ast::ToolDecl>>,
    pub types: BTreeMap<String, Decl<'a, ast::TypeDecl>>,
    pub enums: BTreeMap<String, Decl<'a, ast::EnumDecl>>,
    pub policies: BTreeMap<String, Decl<'a, ast::PolicyDecl>>,
    pub workflows: BTreeMap<String, Decl<'a, ast::Workflow>>,
    /// Stdlib tools that exist but whose module is not `use`d (for the
    /// help of E0103: "add `use std.file`").
    pub unused_std_tools: BTreeMap<String, &'static str>,
    /// The stdlib modules the program `use`s (`email`, `sql`, …).
    pub used_std: BTreeSet<String>,
}

/// The built-in roles: they exist without a declaration, but an LLM step
/// that names one still needs a `role` binding it to models (E0401).
pub const BUILTIN_ROLES: &[&str] = &["planner", "executor", "verifier", "auditor", "synthesizer"];

/// The pure built-in functions usable in expressions.
pub const PURE_BUILTINS: &[&str] = &["len", "json", "join", "lower", "upper", "trim", "take"];

/// What a bare name inside a workflow refers to.
#[derive(Clone, Copy, Debug)]
pub enum Local<'a> {
    Param(&'a ast::Param),
    Step(&'a ast::Step),
}

impl<'a> Env<'a> {
    /// The dotted name of a tool path (`email.send`).
    pub fn tool_name(path: &[ast::Ident]) -> String {
        path.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(".")
    }

    /// The parameters and steps of a workflow, by name (first wins).
    pub fn locals(wf: &'a ast::Workflow) -> BTreeMap<&'a str, Local<'a>> {
        let mut map = BTreeMap::new();
        for p in &wf.params {
            map.entry(p.name.name.as_str()).or_insert(Local::Param(p));
        }
        for s in &wf.steps {
            map.entry(s.name.name.as_str()).or_insert(Local::Step(s));
        }
        map
    }

    /// The value of attribute `key` in a list of attributes (first wins).
    pub fn attr<'b>(attrs: &'b [ast::Attr], key: &str) -> Option<&'b ast::Attr> {
        attrs.iter().find(|a| a.key.name == key)
    }

    /// The attributes of an optional block, as a slice.
    pub fn entries(attrs: &Option<ast::Attrs>) -> &[ast::Attr] {
        attrs.as_ref().map_or(&[], |a| a.entries.as_slice())
    }
}
