//! The database itself: its tables read, its rows' values the intent
//! names, a plan's queries explained. Through the runtime's own `sql.query`
//! tool (the same URLs, the same errors as a run).

use std::path::PathBuf;

use aos_runtime::tools::sql::{Query, SqlDb};
use aos_runtime::tools::{Tool, ToolCtx};
use serde_json::{Value, json};

use super::{Column, ColumnKind, Schema, Source, Table, mentions, plain_ident, plain_value};
use crate::new::lower::normalized;
use crate::new::plan::{Hints, Plan};

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
    use super::super::tests::sales;
    use super::*;

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
}
