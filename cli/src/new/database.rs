//! The database a plan's `sql` arguments run against: its tables and
//! columns, the pattern that holds the embedded model's SQL to them, and the
//! check of a plan's SQL against the database itself.
//!
//! A 135M model writes whatever SQL-looking text comes to it (a tool doc's
//! `AOS_SMTP_URL`, an invented table); the program checks, and the run fails
//! at the query. So the SQL is constrained from what is known, best first:
//!
//! 1. the database `AOS_SQL_URL` names, when it is set while `aosc new`
//!    runs: its tables, columns and column types ([`Live::connect`]); the
//!    embedded model's `sql` value is held to `select … from TABLE [where
//!    COLUMN = VALUE] [limit N]` over them ([`Schema::sql_pattern`]), and
//!    every planner's SQL is then tried with `EXPLAIN` ([`Live::explain`]):
//!    what the database rejects goes back to the model like a diagnostic;
//! 2. else the tables the intent names ("the sales table"), columns unknown:
//!    `select * from TABLE [limit N]`;
//! 3. else any table name.

use std::path::PathBuf;

use aos_runtime::tools::sql::{Query, SqlDb};
use aos_runtime::tools::{Tool, ToolCtx};
use serde_json::{Value, json};

use super::lower::normalized;
use super::plan::{Hints, Plan};
use super::retrieve::words;

/// How many tables the model is shown at most.
pub const MAX_TABLES: usize = 6;

/// What a column holds, as far as a `where` literal cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// Compared with a quoted string.
    Text,
    /// Compared with digits.
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
fn plain_value(v: &str) -> bool {
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
fn plain_ident(s: &str) -> bool {
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

/// Why the database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("AOS_SQL_URL: {0}")]
    Tool(String),
}

/// The database `AOS_SQL_URL` names, reached through the runtime's own
/// `sql.query` tool (the same URLs, the same errors as a run).
pub struct Live {
    query: Query,
    runtime: tokio::runtime::Runtime,
    postgres: bool,
    pub shown: String,
}

fn ctx() -> ToolCtx {
    ToolCtx { workspace: PathBuf::from("."), idempotency_key: None, run_id: "aosc-new".into(), step: "schema".into(), ..Default::default() }
}

impl Live {
    /// `Ok(None)` when `AOS_SQL_URL` is not set.
    pub fn from_env() -> Result<Option<Live>, DatabaseError> {
        match std::env::var("AOS_SQL_URL").ok().filter(|v| !v.trim().is_empty()) {
            Some(url) => Live::new(url).map(Some),
            None => Ok(None),
        }
    }

    /// The database at `url` (`postgres://…` or `sqlite:…`); connected on
    /// first use.
    pub fn new(url: String) -> Result<Live, DatabaseError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(DatabaseError::Runtime)?;
        let postgres = url.starts_with("postgres");
        let shown = match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}…{}", &url[..s + 3], &url[at..]),
            _ => url.clone(),
        };
        Ok(Live { query: Query(std::sync::Arc::new(SqlDb::new(Some(url)))), runtime, postgres, shown })
    }

    fn rows(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Value>, String> {
        let ctx = ctx();
        let out = self.runtime.block_on(self.query.call(json!({"sql": sql, "params": params}), &ctx)).map_err(|e| e.message().to_string())?;
        Ok(out.as_array().cloned().unwrap_or_default())
    }

    /// The tables and columns of the database, in order.
    pub fn tables(&self) -> Result<Vec<Table>, DatabaseError> {
        let sql = if self.postgres {
            "select table_name::text as t, column_name::text as c, data_type::text as ty from information_schema.columns \
             where table_schema = any(current_schemas(false)) order by table_name, ordinal_position"
        } else {
            "select m.name as t, p.name as c, p.type as ty from sqlite_master m join pragma_table_info(m.name) p \
             where m.type in ('table', 'view') and m.name not like 'sqlite_%' order by m.name, p.cid"
        };
        let rows = self.rows(sql, Vec::new()).map_err(DatabaseError::Tool)?;
        let mut tables: Vec<Table> = Vec::new();
        for r in rows {
            let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let (t, c, ty) = (field("t"), field("c"), field("ty"));
            if tables.last().is_none_or(|last| last.name != t) {
                tables.push(Table { name: t, columns: Vec::new() });
            }
            if let Some(last) = tables.last_mut() {
                last.columns.push(Column::new(&c, ColumnKind::of(&ty)));
            }
        }
        Ok(tables)
    }

    /// Fills in, for the text columns of `schema`, the values the intent
    /// names (at most the first 200 distinct values of a column are read).
    /// Only values the intent already holds reach the model.
    pub fn find_mentioned_values(&self, schema: &mut Schema, intent: &str) -> Result<(), DatabaseError> {
        for t in &mut schema.tables {
            for c in t.columns.iter_mut().filter(|c| c.kind == ColumnKind::Text && plain_ident(&c.name)) {
                let sql = format!("select distinct {} as v from {} limit 200", c.name, t.name);
                let rows = self.rows(&sql, Vec::new()).map_err(DatabaseError::Tool)?;
                c.values = rows
                    .iter()
                    .filter_map(|r| r.get("v").and_then(Value::as_str))
                    .filter(|v| plain_value(v) && mentions(intent, v))
                    .map(str::to_string)
                    .collect();
            }
        }
        Ok(())
    }

    /// `Err` with the database's own words when it would not run `sql`
    /// (a read query): an unknown table or column, a syntax error. Nothing
    /// is executed: the statement is only explained.
    pub fn explain(&self, sql: &str, params: Vec<Value>) -> Result<(), String> {
        let trimmed = sql.trim().trim_end_matches(';');
        let head = trimmed.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        if head != "select" && head != "with" {
            return Err("`sql.query` runs one read query: write a SELECT".into());
        }
        if trimmed.contains(';') {
            return Err("`sql.query` runs one statement: remove the `;`".into());
        }
        let explain = if self.postgres { format!("explain {trimmed}") } else { format!("explain query plan {trimmed}") };
        self.rows(&explain, params).map(|_| ())
    }
}

/// The database side of `aosc new`: what is known of the tables, and the
/// database itself when `AOS_SQL_URL` names one.
pub struct Database {
    pub schema: Schema,
    pub live: Option<Live>,
}

impl Database {
    /// Reads the tables of `AOS_SQL_URL` when it is set. A database that
    /// cannot be read leaves the tables the intent names, and the reason
    /// (the caller says it).
    pub fn open(intent: &str) -> (Database, Option<DatabaseError>) {
        let from_intent = |live: Option<Live>| Database { schema: Schema::from_intent(intent), live };
        match Live::from_env() {
            Ok(None) => (from_intent(None), None),
            Err(e) => (from_intent(None), Some(e)),
            Ok(Some(live)) => match live.tables() {
                Ok(tables) if !tables.is_empty() => {
                    let mut schema = Schema::relevant(tables, intent, Source::Database(live.shown.clone()));
                    let problem = live.find_mentioned_values(&mut schema, intent).err();
                    (Database { schema, live: Some(live) }, problem)
                }
                Ok(_) => (from_intent(Some(live)), None),
                Err(e) => (from_intent(None), Some(e)),
            },
        }
    }

    /// What the planner is told and held to.
    pub fn hints(&self) -> Hints {
        Hints { sql_pattern: Some(self.schema.sql_pattern()), notes: vec![self.schema.prompt_line()] }
    }

    /// What the database says of the plan's SQL, one line per rejected
    /// query, as the model is sent it; empty when every query would run (or
    /// no database is connected).
    pub fn check_plan(&self, plan: &Plan) -> Vec<String> {
        let Some(live) = &self.live else { return Vec::new() };
        let mut out = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            let Some(sql) = step.args.iter().find(|a| normalized(&a.name) == "sql").map(|a| a.value.trim()) else { continue };
            // A query passed from an earlier step is not known yet.
            if sql.strip_prefix("step").is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit())) {
                continue;
            }
            let params = step
                .args
                .iter()
                .find(|a| a.name == "params")
                .and_then(|a| serde_json::from_str::<Vec<Value>>(&a.value).ok())
                .unwrap_or_default();
            if let Err(why) = live.explain(sql, params) {
                out.push(format!("- error sql: step {} (`{}`): the database rejects the SQL {sql:?}: {why}", i + 1, step.tool));
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sales() -> Table {
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

    /// A SQLite database with the walkthrough's sales table and another.
    fn walkthrough_db(dir: &std::path::Path) -> Live {
        let live = Live::new(format!("sqlite:{}?mode=rwc", dir.join("sales.db").display())).unwrap();
        for sql in [
            "create table sales (region text, total numeric(12,2), week text)",
            "insert into sales values ('EMEA', 125000.50, '2026-W47'), ('EMEA', 98000.25, '2026-W46'), ('APAC', 77000, '2026-W47')",
            "create table audit_log (at timestamp, who varchar(40))",
        ] {
            live.rows(sql, Vec::new()).unwrap();
        }
        live
    }

    #[test]
    fn the_tables_and_columns_are_read_from_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let live = walkthrough_db(dir.path());
        let tables = live.tables().unwrap();
        assert_eq!(tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["audit_log", "sales"]);
        let s = Schema::relevant(tables, "summarize the EMEA sales", Source::Database(live.shown.clone()));
        assert_eq!(s.tables, vec![sales()]);
        assert!(live.explain("select region from sales where region = 'EMEA'", vec![]).is_ok());
        let err = live.explain("select regio from sales", vec![]).unwrap_err();
        assert!(err.contains("regio"), "{err}");
        assert!(live.explain("AOS_SMTP_URL", vec![]).is_err());
        assert!(live.explain("select 1; drop table sales", vec![]).is_err());
        // Explaining runs nothing.
        live.explain("select * from sales", vec![]).unwrap();
        assert_eq!(live.rows("select count(*) as n from sales", vec![]).unwrap()[0]["n"], 3);
    }

    /// The pattern for "last week's EMEA sales", the tables read from the
    /// walkthrough's database.
    fn read_schema() -> String {
        let dir = tempfile::tempdir().unwrap();
        let live = walkthrough_db(dir.path());
        let intent = "summarize last week's EMEA sales and the audit log";
        let mut s = Schema::relevant(live.tables().unwrap(), intent, Source::Intent);
        live.find_mentioned_values(&mut s, intent).unwrap();
        assert_eq!(s.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["audit_log", "sales"]);
        assert_eq!(s.tables[1].columns[0].values, ["EMEA"], "only the value the intent names");
        assert!(s.prompt_line().contains("sales(region (e.g. 'EMEA'), total, week)"), "{}", s.prompt_line());
        s.sql_pattern()
    }

    #[test]
    fn a_value_the_intent_names_is_the_filter() {
        let p = read_schema();
        assert!(p.contains("from sales where (region = 'EMEA')"), "{p}");
        assert!(mentions("Last week's EMEA sales", "emea") && !mentions("EMEAX", "EMEA") && !mentions("sales", ""));
    }

    fn unanchored(pattern: &str) -> String {
        pattern.trim_start_matches('^').trim_end_matches('$').to_string()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Every query the pattern lets a model write runs against the
        /// database whose tables made the pattern.
        #[test]
        fn every_query_the_pattern_allows_runs(seed in proptest::string::string_regex(&unanchored(&read_schema())).unwrap()) {
            let dir = tempfile::tempdir().unwrap();
            let live = walkthrough_db(dir.path());
            let rows = live.rows(&seed, vec![]);
            proptest::prop_assert!(rows.is_ok(), "{seed}: {rows:?}");
            // A filter on the value the intent names finds its rows.
            if seed.contains("from sales where") {
                let n = rows.map(|r| r.len()).unwrap_or(0);
                proptest::prop_assert!((1..=2).contains(&n) && (seed.contains(" limit ") || n == 2), "{}: {} rows", seed, n);
            }
        }
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
