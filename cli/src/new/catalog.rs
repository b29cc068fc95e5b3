//! The tools `aosc new` may call, and the retrieval step that picks the few
//! relevant to an intent (by the words of their names, signatures and doc
//! comments), before any model is asked.

use std::collections::{BTreeMap, HashMap, HashSet};

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

/// Words too common to tell tools apart.
const STOP: &[&str] = &[
    "a", "an", "the", "of", "to", "and", "or", "in", "on", "for", "with", "is", "it", "its", "be", "by", "as", "at",
    "from", "this", "that", "these", "those", "i", "me", "my", "you", "your", "can", "could", "would", "please",
    "then", "also", "any", "all", "some", "what", "which", "will", "get", "given", "must", "format", "id", "ids",
    "function", "retrieves", "returns", "json", "object", "parameters", "optional", "we", "us", "our", "want", "like",
    "need", "let", "know", "tell", "do", "does", "are", "was", "were", "have", "has", "into", "about", "if", "so",
];

/// Everyday words for what tool docs say more formally: each pair adds the
/// second word to an intent that has the first. Kept small and generic.
const ALIASES: &[(&str, &str)] = &[
    ("where", "coordinates"),
    ("position", "coordinates"),
    ("location", "coordinates"),
    ("table", "sql"),
    ("database", "sql"),
    ("row", "sql"),
    ("far", "distance"),
    ("ground", "distance"),
    ("mail", "email"),
    ("inbox", "email"),
    ("slide", "ppt"),
    ("presentation", "ppt"),
    ("powerpoint", "ppt"),
    ("day", "weekday"),
    ("clock", "time"),
    ("stock", "ticker"),
    ("paper", "arxiv"),
    ("article", "arxiv"),
    ("film", "movie"),
    ("book", "reserve"),
    ("room", "meeting"),
];

fn stem(w: &str) -> String {
    for suffix in ["ing", "ies", "es", "s", "ed"] {
        if let Some(base) = w.strip_suffix(suffix)
            && base.len() >= 3
        {
            return base.to_string();
        }
    }
    w.to_string()
}

/// Lowercased, stemmed words, camelCase and snake_case split.
pub fn words(text: &str) -> Vec<String> {
    let mut spaced = String::with_capacity(text.len() + 8);
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_uppercase() && prev_lower {
            spaced.push(' ');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        spaced.push(c);
    }
    spaced
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && !STOP.contains(w))
        .map(stem)
        .collect()
}

/// A tool and how well it matches an intent.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub tool: usize,
    pub score: f64,
}

/// Ranks tools against an intent: idf-weighted word overlap, where a word
/// of the tool's name weighs most, then its doc's first paragraph, then the
/// rest of its doc (parameters and result fields).
pub struct Retriever {
    names: Vec<HashSet<String>>,
    summaries: Vec<HashSet<String>>,
    docs: Vec<HashSet<String>>,
    idf: HashMap<String, f64>,
}

impl Retriever {
    pub fn new(tools: &[CatalogTool]) -> Retriever {
        let mut names = Vec::new();
        let mut summaries = Vec::new();
        let mut docs = Vec::new();
        let mut df: BTreeMap<String, usize> = BTreeMap::new();
        for t in tools {
            let n: HashSet<String> = words(&t.name.replace('.', " ")).into_iter().collect();
            let s: HashSet<String> = words(&t.summary()).into_iter().collect();
            let d: HashSet<String> = words(&t.doc).into_iter().chain(t.params.iter().flat_map(|p| words(&p.name))).collect();
            for w in n.iter().chain(&s).chain(&d).collect::<HashSet<_>>() {
                *df.entry(w.clone()).or_default() += 1;
            }
            names.push(n);
            summaries.push(s);
            docs.push(d);
        }
        let total = tools.len() as f64;
        let idf = df.into_iter().map(|(w, n)| (w, ((total + 1.0) / (n as f64 + 0.5)).ln())).collect();
        Retriever { names, summaries, docs, idf }
    }

    fn intent_words(intent: &str) -> HashSet<String> {
        let mut set: HashSet<String> = words(intent).into_iter().collect();
        for (from, to) in ALIASES {
            if set.contains(&stem(from)) {
                set.insert(stem(to));
            }
        }
        set
    }

    /// Every tool with a positive score, best first (ties by catalog order).
    pub fn rank(&self, intent: &str) -> Vec<Scored> {
        let it = Self::intent_words(intent);
        let idf = |w: &String| self.idf.get(w).copied().unwrap_or(0.0);
        let mut out: Vec<Scored> = (0..self.names.len())
            .map(|i| {
                let hit = |set: &HashSet<String>, weight: f64| -> f64 {
                    set.iter().filter(|w| it.contains(*w)).map(|w| weight * idf(w)).sum()
                };
                let score = hit(&self.names[i], 2.0) + hit(&self.summaries[i], 1.0) + hit(&self.docs[i], 0.3);
                Scored { tool: i, score }
            })
            .filter(|s| s.score > 0.0)
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.tool.cmp(&b.tool)));
        out
    }

    /// The shortlist shown to the model: the tools scoring at least
    /// `min_share` of the best one, at most `max`. Empty when nothing in the
    /// catalog shares a meaningful word with the intent.
    pub fn shortlist(&self, intent: &str, min_share: f64, max: usize) -> Vec<Scored> {
        let ranked = self.rank(intent);
        let Some(best) = ranked.first().map(|s| s.score) else { return Vec::new() };
        if best < MIN_SCORE {
            return Vec::new();
        }
        ranked.into_iter().filter(|s| s.score >= min_share * best).take(max).collect()
    }
}

/// Below this, the best match is a coincidence of one common word.
pub const MIN_SCORE: f64 = 3.0;

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, doc: &str) -> CatalogTool {
        CatalogTool { name: name.into(), params: vec![], doc: doc.into(), std_module: None }
    }

    #[test]
    fn words_split_case_and_stem() {
        assert_eq!(words("getCurrentWeather of Rooms"), vec!["current", "weather", "room"]);
    }

    #[test]
    fn the_tool_named_by_the_intent_ranks_first() {
        let tools = vec![
            tool("Weather.get_weather_today", "Today's weather of a city."),
            tool("Email.send", "Sends an email to a recipient."),
            tool("Email.show", "Shows the emails in the inbox."),
        ];
        let r = Retriever::new(&tools);
        let ranked = r.rank("Please send an email to Bob about the weather");
        assert_eq!(ranked[0].tool, 1);
        assert!(r.shortlist("Bake me a cake", 0.5, 5).is_empty());
    }

    #[test]
    fn result_fields_come_from_the_doc() {
        let t = tool("A.b", "Does.\n\nReturns a JSON object with:\n- rooms: free rooms\n- count: how many");
        assert_eq!(t.result_fields(), vec!["rooms", "count"]);
    }
}
