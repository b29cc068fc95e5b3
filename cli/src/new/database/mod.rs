//! The database a plan's `sql` arguments run against: its tables and
//! columns, the pattern that holds the embedded model's SQL to them, and the
//! check of a plan's SQL against the database itself.
//!
//! A 135M model writes whatever SQL-looking text comes to it (a tool doc's
//! `AOS_SMTP_URL`, an invented table); the program checks, and the run fails
//! at the query. So the SQL is constrained from what is known, best first:
//!
//! 1. the database `AOS_SQL_URL` names, when it is set while `aosc new`
//!    runs: its tables, columns and column types ([`live::Live::tables`]); the
//!    embedded model's `sql` value is held to `select … from TABLE [where
//!    COLUMN = VALUE] [limit N]` over them ([`Schema::sql_pattern`]), and
//!    every planner's SQL is then tried with `EXPLAIN` ([`live::Live::explain`]):
//!    what the database rejects goes back to the model like a diagnostic;
//! 2. else the tables the intent names ("the sales table"), columns unknown:
//!    `select * from TABLE [limit N]`;
//! 3. else any table name.

pub mod live;

pub use live::Database;

use super::retrieve::words;

/// How many tables the model is shown at most.
pub const MAX_TABLES: usize = 6;

/// What a column holds, as far as a `where` literal cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// Compared with a quoted string.
    Text,
    /// Not offered in a `where` (an intent rarely names a figure to
    /// compare with).
    Number,
    /// Dates, booleans, JSON…: not offered in a `where`.
    Other,
}

impl ColumnKind {
    /// From a SQL type name as PostgreSQL's `information_schema` or SQLite's
    /// `pragma table_info` spell it.
    pub fn of(sql_type: &str) -> ColumnKind {
        let t = sql_type.to_ascii_lowercase();
        let has = |w: &str| t.contains(w);
        if has("char") || has("text") || has("clob") || t == "name" || t == "citext" {
            ColumnKind::Text
        } else if has("int") || has("numeric") || has("decimal") || has("real") || has("double") || has("float") {
            ColumnKind::Number
        } else {
            ColumnKind::Other
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
    /// Values of this (text) column that the intent names ("EMEA"): what
    /// a `where` may compare it with.
    pub values: Vec<String>,
}

impl Column {
    pub fn new(name: &str, kind: ColumnKind) -> Column {
        Column { name: name.into(), kind, values: Vec::new() }
    }
}

/// A value the pattern can spell literally (no quote, no regex syntax but `.`).
pub(crate) fn plain_value(v: &str) -> bool {
    !v.is_empty() && v.len() <= 40 && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.'))
}

/// Whether `intent` names `value` as a word or words of its own.
pub fn mentions(intent: &str, value: &str) -> bool {
    let (hay, needle) = (intent.to_ascii_lowercase(), value.to_ascii_lowercase());
    if needle.trim().is_empty() {
        return false;
    }
    hay.match_indices(&needle).any(|(at, m)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + m.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    /// Empty when only the name is known (named by the intent).
    pub columns: Vec<Column>,
}

/// Where the tables came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Read from the database `AOS_SQL_URL` names (shown without password).
    Database(String),
    /// Named by the intent; their columns are unknown.
    Intent,
    /// Nothing known.
    Unknown,
}

/// The tables the plan's SQL may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    pub tables: Vec<Table>,
    pub source: Source,
}

/// A SQL identifier the pattern can spell as is (no quoting needed).
pub(crate) fn plain_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

const NOT_A_TABLE: &[&str] = &["the", "a", "an", "this", "that", "our", "my", "your", "their", "its", "of", "from", "in", "to", "for", "with", "at", "on", "by", "and", "or", "same", "whole", "each"];

/// The tables an intent names, in order, lowercased: the word before
/// "table" after a determiner ("the sales table"), else the word after it
/// ("read table orders"), else the word before.
pub fn tables_named_in(intent: &str) -> Vec<String> {
    let tokens: Vec<String> = intent
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let mut out: Vec<String> = Vec::new();
    for (i, w) in tokens.iter().enumerate() {
        if w != "table" && w != "tables" {
            continue;
        }
        let before = i.checked_sub(1).and_then(|j| tokens.get(j));
        let after = tokens.get(i + 1);
        // "the sales table" names it before; "read table orders" after.
        let determined = i.checked_sub(2).and_then(|j| tokens.get(j)).is_some_and(|d| NOT_A_TABLE.contains(&d.as_str()));
        let order = if determined { [before, after] } else { [after, before] };
        let pick = order.into_iter().flatten().find(|t| !NOT_A_TABLE.contains(&t.as_str()) && plain_ident(t));
        if let Some(t) = pick
            && !out.contains(t)
        {
            out.push(t.clone());
        }
    }
    out
}

impl Schema {
    /// What is known with no database: the tables the intent names.
    pub fn from_intent(intent: &str) -> Schema {
        let tables: Vec<Table> = tables_named_in(intent).into_iter().map(|name| Table { name, columns: Vec::new() }).collect();
        let source = if tables.is_empty() { Source::Unknown } else { Source::Intent };
        Schema { tables, source }
    }

    /// The tables of a database, narrowed to those the intent mentions
    /// (by a word of their name) when it mentions any, at most [`MAX_TABLES`].
    pub fn relevant(tables: Vec<Table>, intent: &str, source: Source) -> Schema {
        let intent_words: Vec<String> = words(intent);
        let mentioned = |t: &Table| words(&t.name.replace('_', " ")).iter().any(|w| intent_words.contains(w));
        let tables: Vec<Table> = tables.into_iter().filter(|t| plain_ident(&t.name)).collect();
        let mut chosen: Vec<Table> = tables.iter().filter(|t| mentioned(t)).cloned().collect();
        if chosen.is_empty() {
            chosen = tables;
        }
        chosen.truncate(MAX_TABLES);
        Schema { tables: chosen, source }
    }

    /// The regular expression (anchored) a `sql` argument is held to: a
    /// read of one table, its columns or `*`; when the intent names a value
    /// a text column holds ("EMEA" in `region`), the `where` that compares
    /// it (required: it is what the intent asks for); an optional `limit`.
    pub fn sql_pattern(&self) -> String {
        const LIMIT: &str = "( limit [1-9][0-9]{0,3})?";
        if self.tables.is_empty() {
            return format!("^select [*] from [a-z_][a-z0-9_]{{0,30}}{LIMIT}$");
        }
        let alternatives: Vec<String> = self
            .tables
            .iter()
            .map(|t| {
                let cols: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).filter(|c| plain_ident(c)).collect();
                let select = if cols.is_empty() {
                    "[*]".to_string()
                } else {
                    let one = format!("({})", cols.join("|"));
                    format!("([*]|{one}(, {one}){{0,{}}})", cols.len().saturating_sub(1).min(7))
                };
                let conds: Vec<String> = t
                    .columns
                    .iter()
                    .filter(|c| c.kind == ColumnKind::Text && plain_ident(&c.name))
                    .flat_map(|c| c.values.iter().filter(|v| plain_value(v)).map(move |v| format!("{} = '{}'", c.name, v.replace('.', "[.]"))))
                    .collect();
                let filter = if conds.is_empty() { String::new() } else { format!(" where ({})", conds.join("|")) };
                format!("select {select} from {}{filter}", t.name)
            })
            .collect();
        format!("^({}){LIMIT}$", alternatives.join("|"))
    }

    /// The line the planner's prompt gets about the database.
    pub fn prompt_line(&self) -> String {
        if self.tables.is_empty() {
            return "Database: write the sql value as: select * from TABLE".into();
        }
        let tables: Vec<String> = self
            .tables
            .iter()
            .map(|t| {
                if t.columns.is_empty() {
                    t.name.clone()
                } else {
                    let cols: Vec<String> = t
                        .columns
                        .iter()
                        .map(|c| match c.values.as_slice() {
                            [] => c.name.clone(),
                            vs => format!("{} (e.g. {})", c.name, vs.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")),
                        })
                        .collect();
                    format!("{}({})", t.name, cols.join(", "))
                }
            })
            .collect();
        format!("Database tables: {}", tables.join("; "))
    }

    /// For the summary on stderr.
    pub fn describe(&self) -> String {
        let where_from = match &self.source {
            Source::Database(url) => format!("read from AOS_SQL_URL ({url})"),
            Source::Intent => "named by the intent; set AOS_SQL_URL to give the planner their columns".into(),
            Source::Unknown => "none known; set AOS_SQL_URL to give the planner the tables".into(),
        };
        let names: Vec<&str> = self.tables.iter().map(|t| t.name.as_str()).collect();
        if names.is_empty() { format!("database tables: {where_from}") } else { format!("database tables: {} ({where_from})", names.join(", ")) }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    pub(super) fn sales() -> Table {
        Table {
            name: "sales".into(),
            columns: vec![
                Column::new("region", ColumnKind::Text),
                Column::new("total", ColumnKind::Number),
                Column::new("week", ColumnKind::Text),
            ],
        }
    }

    #[test]
    fn the_intent_names_its_tables() {
        assert_eq!(tables_named_in("summarize last week's EMEA sales from the sales table and email it"), vec!["sales"]);
        assert_eq!(tables_named_in("read table orders, then the customers table"), vec!["orders", "customers"]);
        assert!(tables_named_in("book a table for two").is_empty());
        assert!(tables_named_in("email Bob").is_empty());
        assert_eq!(tables_named_in("query sales table and mail it"), vec!["sales"]);
    }

    #[test]
    fn column_kinds_follow_the_type_names() {
        assert_eq!(ColumnKind::of("numeric"), ColumnKind::Number);
        assert_eq!(ColumnKind::of("character varying"), ColumnKind::Text);
        assert_eq!(ColumnKind::of("INTEGER"), ColumnKind::Number);
        assert_eq!(ColumnKind::of("timestamp with time zone"), ColumnKind::Other);
    }

    #[test]
    fn only_the_tables_the_intent_mentions_are_offered() {
        let other = Table { name: "audit_log".into(), columns: vec![] };
        let s = Schema::relevant(vec![other.clone(), sales()], "EMEA sales of last week", Source::Intent);
        assert_eq!(s.tables, vec![sales()]);
        let s = Schema::relevant(vec![other.clone(), sales()], "the numbers", Source::Intent);
        assert_eq!(s.tables.len(), 2);
    }

    #[test]
    fn the_pattern_without_columns_selects_everything_of_a_named_table() {
        let s = Schema::from_intent("email the rows of the sales table");
        assert_eq!(s.sql_pattern(), "^(select [*] from sales)( limit [1-9][0-9]{0,3})?$");
        assert_eq!(Schema::from_intent("email Bob").sql_pattern(), "^select [*] from [a-z_][a-z0-9_]{0,30}( limit [1-9][0-9]{0,3})?$");
    }

    #[test]
    fn the_prompt_line_lists_tables_and_columns() {
        let s = Schema { tables: vec![sales()], source: Source::Intent };
        assert_eq!(s.prompt_line(), "Database tables: sales(region, total, week)");
    }
}
