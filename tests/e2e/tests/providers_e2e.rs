//! A pipeline mixing openai, anthropic and gemini models, run by `aosc run
//! --json` against loopback servers speaking each provider's wire format:
//! fallback (Anthropic 529s), `retry-after` (a Gemini 429), structured
//! output (OpenAI json_schema, Gemini responseJsonSchema), verification
//! (an Anthropic forced-tool verdict, low then high) and exact cost, all
//! visible in the run's JSON and in `aosc show RUN --json`; keys never
//! reach the output, the store or the audit log. Also `aosc models`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::fake_llm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fake_llm::{Act, Fake, Keys};
use serde_json::{json, Value};

const OPENAI_KEY: &str = "sk-e2e-openai-secret-777";
const ANTHROPIC_KEY: &str = "sk-ant-e2e-secret-777";
const GEMINI_KEY: &str = "AIza-e2e-secret-777";

const PIPELINE: &str = r#"
type Plan = { title: String, points: List<String> }

model fast   = openai("gpt-4o-mini")        { input: $0.15/M, output: $0.60/M, context: 128000 }
model claude = anthropic("claude-sonnet-4") { input: $3.00/M, output: $15.00/M, context: 200000 }
model flash  = gemini("gemini-2.5-flash")   { input: $0.30/M, output: $2.50/M, context: 1000000 }

role planner  = [claude, fast]
role executor = [flash]
role verifier = [claude]

workflow report(topic: String = "weekly sales") {
  budget: $1.00

  step plan: Plan = llm planner("Plan a short report on {topic}.") {
    max_tokens: 400
  }

  step draft: String = llm executor("Write the report titled {plan.title}.") {
    max_tokens: 600
    verify: verifier
    min_confidence: 0.7
  }

  step tags: List<String> = llm executor("Give tags for: {draft}") {
    max_tokens: 100
  }

  return {plan: plan, draft: draft, tags: tags}
}
"#;

fn aosc(home: &Path, fake: &Fake, args: &[&str]) -> Output {
    Command::new(aos_e2e::aosc())
        .args(args)
        .env("AOS_HOME", home)
        .env_remove("AOS_DATABASE_URL")
        .env_remove("AOS_LLM")
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        .env("GEMINI_API_KEY", GEMINI_KEY)
        .env("OPENAI_BASE_URL", fake.openai_base())
        .env("ANTHROPIC_BASE_URL", fake.base())
        .env("GEMINI_BASE_URL", fake.base())
        .env("AOS_LLM_BACKOFF_MS", "5")
        .env("AOS_LLM_TIMEOUT_MS", "5000")
        .output()
        .unwrap()
}

async fn aosc_async(home: PathBuf, fake: &Fake, args: &[&str]) -> Output {
    // The fake server runs on this runtime; the child blocks a pool thread.
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (openai, base) = (fake.openai_base(), fake.base());
    tokio::task::spawn_blocking(move || {
        Command::new(aos_e2e::aosc())
            .args(&args)
            .env("AOS_HOME", &home)
            .env_remove("AOS_DATABASE_URL")
            .env_remove("AOS_LLM")
            .env("OPENAI_API_KEY", OPENAI_KEY)
            .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
            .env("GEMINI_API_KEY", GEMINI_KEY)
            .env("OPENAI_BASE_URL", openai)
            .env("ANTHROPIC_BASE_URL", &base)
            .env("GEMINI_BASE_URL", &base)
            .env("AOS_LLM_BACKOFF_MS", "5")
            .env("AOS_LLM_TIMEOUT_MS", "5000")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {} stderr {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

fn keys() -> Keys {
    Keys { openai: OPENAI_KEY.into(), anthropic: ANTHROPIC_KEY.into(), gemini: GEMINI_KEY.into() }
}

fn step<'a>(show: &'a Value, name: &str) -> &'a Value {
    show["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no step {name}: {show}"))
}

fn routing<'a>(s: &'a Value, kind: &str) -> Vec<&'a Value> {
    s["routing"].as_array().map(|r| r.iter().filter(|d| d["kind"] == kind).collect()).unwrap_or_default()
}

fn cost(input_per_m: f64, output_per_m: f64) -> f64 {
    // Every fake reply reports 120 input and 30 output tokens.
    (120.0 * input_per_m + 30.0 * output_per_m) / 1e6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_across_three_providers_runs_end_to_end() {
    let fake = Fake::start(keys()).await;
    // The planner's first model is overloaded: three 529s, then fallback.
    fake.script(
        "claude-sonnet-4",
        vec![
            Act::overloaded(),
            Act::overloaded(),
            Act::overloaded(),
            // Then, as the verifier: low confidence with a problem, then high.
            Act::text(r#"{"agreement": false, "confidence": 0.35, "problems": ["the draft misses the totals"]}"#),
            Act::text(r#"{"agreement": true, "confidence": 0.92, "problems": []}"#),
        ],
    );
    fake.script("gpt-4o-mini", vec![Act::text(r#"{"title": "Sales, week 47", "points": ["EMEA up", "APAC flat"]}"#)]);
    // The executor is rate limited once, then drafts twice (re-asked after the verdict).
    fake.script("gemini-2.5-flash", vec![Act::rate_limited("gemini", 300), Act::text("Draft without totals."), Act::text("Draft with totals: 1.2M.")]);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.aos");
    std::fs::write(&file, PIPELINE).unwrap();
    let home = dir.path().join("home");
    let file_s = file.to_string_lossy().into_owned();

    let out = aosc_async(home.clone(), &fake, &["run", &file_s, "--json"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}\nstdout: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!stderr.contains("simulator"), "{stderr}");
    // The progress view shows the fallback (stderr is not a terminal here:
    // one line per event).
    assert!(stderr.contains("step plan: fallback from `claude` to `fast` (role `planner`): anthropic: HTTP 529"), "{stderr}");
    let run = json_of(&out);
    assert_eq!(run["status"], "succeeded");
    assert_eq!(
        run["output"],
        json!({"plan": {"title": "Sales, week 47", "points": ["EMEA up", "APAC flat"]}, "draft": "Draft with totals: 1.2M.", "tags": ["fine"]})
    );
    let expected = cost(0.15, 0.60) // plan: gpt-4o-mini after claude's unbilled 529s
        + 2.0 * cost(0.30, 2.50)      // draft: asked twice
        + 2.0 * cost(3.00, 15.00)     // two verdicts
        + cost(0.30, 2.50); // tags
    let got = run["cost_usd"].as_f64().unwrap();
    assert!((got - expected).abs() < 1e-12, "cost {got} != {expected}");

    // What the servers received.
    let claude = fake.seen_for("claude-sonnet-4");
    assert_eq!(claude.len(), 5);
    assert!(claude.iter().all(|r| r.headers["x-api-key"] == ANTHROPIC_KEY && r.headers["anthropic-version"] == "2023-06-01"));
    assert!(claude.iter().all(|r| r.body["max_tokens"].is_u64()));
    assert_eq!(claude[0].body["tool_choice"]["name"], "answer", "the plan is asked for as a forced tool");
    assert_eq!(claude[3].body["tools"][0]["input_schema"]["properties"]["confidence"]["type"], "number");
    let fast = fake.seen_for("gpt-4o-mini");
    assert_eq!(fast[0].headers["authorization"], format!("Bearer {OPENAI_KEY}"));
    assert_eq!(fast[0].body["response_format"]["type"], "json_schema");
    let schema = &fast[0].body["response_format"]["json_schema"]["schema"];
    assert_eq!(schema["properties"]["points"]["type"], "array", "{schema}");
    let flash = fake.seen_for("gemini-2.5-flash");
    assert_eq!(flash.len(), 4, "429, draft, re-asked draft, tags");
    assert_eq!(flash[0].status, 429);
    assert!(flash[2].body["contents"][0]["parts"][0]["text"].as_str().unwrap().contains("- the draft misses the totals"));
    assert_eq!(flash[3].body["generationConfig"]["responseJsonSchema"], json!({"type": "array", "items": {"type": "string"}}));

    // The run as `aosc show` tells it.
    let id = run["run_id"].as_str().unwrap();
    let show_out = aosc_async(home.clone(), &fake, &["show", id, "--json"]).await;
    assert_eq!(show_out.status.code(), Some(0));
    let show = json_of(&show_out);
    assert!((show["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-12);

    let plan = step(&show, "plan");
    assert_eq!(plan["status"], "succeeded");
    let retries = routing(plan, "transport_retry");
    assert_eq!(retries.len(), 2);
    assert!(retries[0]["error"].as_str().unwrap().contains("HTTP 529 overloaded_error"), "{}", retries[0]);
    let fb = routing(plan, "fallback");
    assert_eq!(fb.len(), 1);
    assert_eq!((fb[0]["from"].as_str(), fb[0]["to"].as_str()), (Some("claude"), Some("fast")));
    let chosen = routing(plan, "model");
    assert_eq!(chosen[0]["answered_by"], "openai");
    assert!((plan["cost_usd"].as_f64().unwrap() - cost(0.15, 0.60)).abs() < 1e-15);
    assert_eq!(plan["usage"]["cached_input_tokens"], 20);
    assert_eq!(plan["usage"]["reasoning_tokens"], 10);

    let draft = step(&show, "draft");
    let r = routing(draft, "transport_retry");
    assert_eq!(r[0]["retry_after_ms"], 300);
    assert_eq!(r[0]["wait_ms"], 300);
    let verdicts = routing(draft, "verify");
    assert_eq!(verdicts.len(), 2);
    assert_eq!(verdicts[0]["accepted"], false);
    assert_eq!(verdicts[0]["problems"], json!(["the draft misses the totals"]));
    assert_eq!(verdicts[1]["accepted"], true);
    assert_eq!(verdicts[1]["confidence"], 0.92);
    assert_eq!(routing(draft, "repair").len(), 1);
    assert!((draft["cost_usd"].as_f64().unwrap() - 2.0 * (cost(0.30, 2.50) + cost(3.0, 15.0))).abs() < 1e-15);
    assert_eq!(draft["usage"]["input_tokens"], 480);

    // Keys appear nowhere: output, the store's files, the audit log.
    let audit = aosc_async(home.clone(), &fake, &["audit", "verify", id]).await;
    assert_eq!(audit.status.code(), Some(0), "{}", String::from_utf8_lossy(&audit.stderr));
    let mut everything = format!("{stderr}{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&show_out.stdout));
    for entry in walk(&home) {
        everything.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap()));
    }
    assert!(everything.contains("overloaded_error"), "the store holds the router's records");
    for k in [OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY] {
        assert!(!everything.contains(k), "key {k} leaked");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_lists_prices_context_and_credentials() {
    let fake = Fake::start(keys()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.aos");
    std::fs::write(&file, PIPELINE).unwrap();
    let file_s = file.to_string_lossy().into_owned();
    let home = dir.path().join("home");

    let out = aosc(&home, &fake, &["models", &file_s, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let list = json_of(&out);
    let claude = list.as_array().unwrap().iter().find(|m| m["name"] == "claude").unwrap();
    assert_eq!(claude["provider"], "anthropic");
    assert_eq!(claude["model_id"], "claude-sonnet-4");
    assert_eq!(claude["input_per_m"], 3.0);
    assert_eq!(claude["output_per_m"], 15.0);
    assert_eq!(claude["context"], 200000);
    assert_eq!(claude["roles"], json!(["planner", "verifier"]));
    assert_eq!(claude["credentials"], json!({"variable": "ANTHROPIC_API_KEY", "present": true}));
    assert_eq!(claude["endpoint"], fake.base());
    assert_eq!(claude["runs_on"], "anthropic");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(ANTHROPIC_KEY));

    // Without keys: the simulator, and the table says why.
    let out = Command::new(aos_e2e::aosc())
        .args(["models", &file_s])
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("GEMINI_BASE_URL")
        .env_remove("AOS_LLM")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("flash") && table.contains("$0.30") && table.contains("1000000") && table.contains("GEMINI_API_KEY missing"), "{table}");
    assert!(table.contains("https://generativelanguage.googleapis.com"), "{table}");
    // Every row as wide as the header: no cell overflows its column.
    let header = table.lines().next().unwrap();
    let endpoint_col = header.find("ENDPOINT").unwrap();
    for line in table.lines().skip(1) {
        assert_eq!(line.chars().nth(endpoint_col - 1), Some(' '), "{table}");
        assert!(line.get(endpoint_col..).unwrap().starts_with("https://"), "{table}");
    }
    insta::assert_snapshot!("models_table_without_keys", table);

    // With keys, RUNS ON names the provider.
    let out = aosc(&home, &fake, &["models", &file_s]);
    let table = String::from_utf8_lossy(&out.stdout);
    let flash = table.lines().find(|l| l.starts_with("flash")).unwrap();
    assert!(flash.contains("GEMINI_API_KEY set") && flash.contains(" gemini "), "{table}");
}

/// `memory.*` with an OpenAI embedding model, through `aosc run` with the
/// provider's key and base URL from the environment: the entry is
/// embedded by `POST /v1/embeddings`, recall ranks with the same model, and
/// `aosc show` lists the step's `embedding` record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_embeds_through_the_provider_named_by_the_embedding_role() {
    let fake = Fake::start(keys()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("memory.aos");
    std::fs::write(
        &file,
        r#"
use std.memory

model small = openai("text-embedding-3-small") { input: $0.02/M, output: $0/M, context: 8191 }
role embedding = [small]

workflow remember(key: String, value: String) -> Bool {
  step saved = memory.remember(key: key, value: value)
  return saved
}

workflow recall(query: String) -> List<Json> {
  step hits = memory.recall(query: query, k: 2)
  return hits
}
"#,
    )
    .unwrap();
    let home = dir.path().join("home");
    let file_s = file.to_string_lossy().into_owned();
    for (k, v) in [("emea", "EMEA sales grew 13% in week 47"), ("pager", "Ada is on call this week")] {
        let (ka, va) = (format!("key={k}"), format!("value={v}"));
        let out = aosc_async(home.clone(), &fake, &["run", &file_s, "--workflow", "remember", "--input", &ka, "--input", &va, "--json"]).await;
        assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        let run = json_of(&out);
        assert!(run["cost_usd"].as_f64().unwrap() > 0.0, "{run}");
        let show = json_of(&aosc_async(home.clone(), &fake, &["show", run["run_id"].as_str().unwrap(), "--json"]).await);
        let rec = routing(step(&show, "saved"), "embedding");
        assert_eq!(rec.len(), 1, "{show}");
        assert_eq!((&rec[0]["embedding"], &rec[0]["dims"]), (&json!("openai/text-embedding-3-small"), &json!(1536)), "{}", rec[0]);
    }
    let out = aosc_async(home.clone(), &fake, &["run", &file_s, "--workflow", "recall", "--input", "query=how were EMEA sales", "--json"]).await;
    let run = json_of(&out);
    assert_eq!((&run["output"][0]["key"], &run["output"][0]["embedding"]), (&json!("emea"), &json!("openai/text-embedding-3-small")), "{run}");
    let seen = fake.seen_for("text-embedding-3-small");
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.path == "/v1/embeddings" && s.headers["authorization"] == format!("Bearer {OPENAI_KEY}")));
}
