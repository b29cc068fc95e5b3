//! The tools `aosc new` may call: every `tool` of the standard library and
//! of the `--with` files, with its parameters and doc comment (the
//! retrieval step that picks the few relevant to an intent is
//! [`super::retrieve`]).

use aos_compiler::ast::{self, ItemKind, TypeExprKind};

/// A parameter type, as far as planning needs it.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    Str,
    Int,
    Float,
    Bool,
    Json,
    List(Box<Ty>),
    Optional(Box<Ty>),
    /// A declared type or a record: only data from another step fits it.
    Other(String),
}

impl Ty {
    pub fn render(&self) -> String {
        match self {
            Ty::Str => "String".into(),
            Ty::Int => "Int".into(),
            Ty::Float => "Float".into(),
            Ty::Bool => "Bool".into(),
            Ty::Json => "Json".into(),
            Ty::List(t) => format!("List<{}>", t.render()),
            Ty::Optional(t) => format!("{}?", t.render()),
            Ty::Other(s) => s.clone(),
        }
    }

    fn of(t: &ast::TypeExpr) -> Ty {
        match &t.kind {
            TypeExprKind::Named(id) => match id.name.as_str() {
                "String" => Ty::Str,
                "Int" => Ty::Int,
                "Float" => Ty::Float,
                "Bool" => Ty::Bool,
                "Json" => Ty::Json,
                other => Ty::Other(other.to_string()),
            },
            TypeExprKind::List(inner) => Ty::List(Box::new(Ty::of(inner))),
            TypeExprKind::Optional(inner) => Ty::Optional(Box::new(Ty::of(inner))),
            TypeExprKind::Record(_) | TypeExprKind::Error => Ty::Other("record".into()),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolParam {
    pub name: String,
    pub ty: Ty,
    pub has_default: bool,
}

impl ToolParam {
    /// A call may leave it out.
    pub fn optional(&self) -> bool {
        self.has_default || matches!(self.ty, Ty::Optional(_))
    }
}

/// One tool on offer.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogTool {
    /// The dotted name (`sql.query`, `Email.send`).
    pub name: String,
    pub params: Vec<ToolParam>,
    /// The doc comment, empty when there is none.
    pub doc: String,
    /// `Some("sql")` for a standard-library tool (`use std.sql`).
    pub std_module: Option<String>,
}

impl CatalogTool {
    /// `name(a: T, b: U?)`.
    pub fn signature(&self) -> String {
        let ps: Vec<String> = self.params.iter().map(|p| format!("{}: {}", p.name, p.ty.render())).collect();
        format!("{}({})", self.name, ps.join(", "))
    }

    /// The first paragraph of the doc comment, on one line.
    pub fn summary(&self) -> String {
        let first = self.doc.split("\n\n").next().unwrap_or("");
        first.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The fields the doc comment says the result has (`- name: …` lines
    /// after `Returns`), for wiring data between steps.
    pub fn result_fields(&self) -> Vec<String> {
        let Some(at) = self.doc.find("Returns") else { return Vec::new() };
        self.doc[at..]
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- "))
            .filter_map(|l| l.split(':').next())
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty() && f.chars().all(|c| c.is_alphanumeric() || c == '_'))
            .collect()
    }
}

/// The tools of the parsed files: every `tool` declaration, with its doc.
pub fn tools_of(files: &[(ast::File, Option<String>)]) -> Vec<CatalogTool> {
    let mut out: Vec<CatalogTool> = Vec::new();
    for (file, std_module) in files {
        for item in &file.items {
            let ItemKind::Tool(t) = &item.kind else { continue };
            let name = t.path.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(".");
            if out.iter().any(|o| o.name == name) {
                continue;
            }
            let params = t
                .params
                .iter()
                .map(|p| ToolParam { name: p.name.name.clone(), ty: Ty::of(&p.ty), has_default: p.default.is_some() })
                .collect();
            out.push(CatalogTool { name, params, doc: item.doc.clone().unwrap_or_default(), std_module: std_module.clone() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_fields_come_from_the_doc() {
        let t = CatalogTool {
            name: "A.b".into(),
            params: vec![],
            doc: "Does.\n\nReturns a JSON object with:\n- rooms: free rooms\n- count: how many".into(),
            std_module: None,
        };
        assert_eq!(t.result_fields(), vec!["rooms", "count"]);
    }
}
