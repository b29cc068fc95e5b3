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

/// The `- name: description` lines of a doc section.
fn listed(section: &str) -> Vec<(String, String)> {
    section
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter_map(|l| l.split_once(':'))
        .map(|(n, d)| (n.trim().trim_end_matches("(optional)").trim().to_string(), d.trim().to_string()))
        .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .collect()
}

fn has_word(text: &str, word: &str) -> bool {
    text.to_ascii_lowercase().split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == word)
}

impl CatalogTool {
    /// The result fields with what the doc says of each.
    pub fn result_field_docs(&self) -> Vec<(String, String)> {
        self.doc.find("Returns").map(|at| listed(&self.doc[at..])).unwrap_or_default()
    }

    /// What the doc's `- name: …` line before `Returns` says of a parameter.
    pub fn param_doc(&self, param: &str) -> Option<String> {
        let params = self.doc.find("Returns").map_or(self.doc.as_str(), |at| &self.doc[..at]);
        listed(params).into_iter().find(|(n, _)| n == param).map(|(_, d)| d)
    }

    /// Whether a parameter takes an identifier an earlier result holds: its
    /// name says so (`room_id`, `ticker`) or its doc does ("ID of a search
    /// result").
    pub fn takes_id(&self, param: &str) -> bool {
        super::lower::is_id_like(param) || self.param_doc(param).is_some_and(|d| has_word(&d, "id") || has_word(&d, "identifier"))
    }

    /// How well a result field of `self` answers parameter `param` of
    /// `consumer`, with the field: shared words of the parameter's name and
    /// the field's name and description, two more when the parameter takes
    /// an id and the description speaks of ids. `None` when nothing fits.
    pub fn produces(&self, consumer: &CatalogTool, param: &str) -> Option<(String, usize)> {
        let wanted: Vec<String> = super::retrieve::words(&param.replace('_', " "));
        let id = consumer.takes_id(param);
        self.result_field_docs()
            .into_iter()
            .map(|(f, d)| {
                let have = super::retrieve::words(&format!("{} {d}", f.replace('_', " ")));
                let shared = wanted.iter().filter(|w| have.contains(w)).count();
                let ids = if id && (has_word(&d, "id") || has_word(&d, "ids") || has_word(&f, "id")) { 2 } else { 0 };
                (f, shared + ids)
            })
            .filter(|(_, score)| *score > 0)
            .max_by_key(|(_, score)| *score)
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

    fn tool(name: &str, doc: &str) -> CatalogTool {
        CatalogTool { name: name.into(), params: vec![], doc: doc.into(), std_module: None }
    }

    #[test]
    fn the_producer_of_an_id_is_the_result_that_speaks_of_ids() {
        let empty = tool("R.get_empty_room", "Free rooms.\n\nReturns a JSON object with:\n- rooms: list of available room ids");
        let status = tool("R.get_room_status", "Status.\n\nReturns a JSON object with:\n- rooms: list of rooms as well as its booking status");
        let reserve = tool("R.reserve", "Books.\n\nParameters:\n- room_id: the room you want to book\n\nReturns a JSON object with:\n- state: ok");
        let cite = tool("S.get_citation_format", "Cites.\n\nParameters:\n- q: ID of an individual search result\n\nReturns:\n- citation: text");
        assert_eq!(empty.produces(&reserve, "room_id"), Some(("rooms".into(), 3)));
        assert_eq!(status.produces(&reserve, "room_id"), Some(("rooms".into(), 1)));
        assert!(cite.takes_id("q") && !reserve.takes_id("state"));
        assert_eq!(reserve.param_doc("room_id").as_deref(), Some("the room you want to book"));
    }
}
