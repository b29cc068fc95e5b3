//! The cost proof bounds the embedding calls of tools that declare
//! `embeds:` (`memory.remember`, `memory.recall`), against figures computed
//! by hand: (tokens of the embedded text, bounded in UTF-8 bytes) × the
//! dearest `input:` price of the `embedding` role, × tries × fan-out items.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use aos_compiler::check::{Analysis, FileLoader, check};

struct NoFiles;

impl FileLoader for NoFiles {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string()))
    }
}

fn analyze(src: &str) -> Analysis {
    let a = check("t.aos", src, &NoFiles);
    let errors: Vec<_> = a.diagnostics.iter().filter(|d| d.code.as_str().starts_with('E')).map(|d| d.code.as_str()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    a
}

fn step(a: &Analysis, wf: &str, step: &str) -> aos_compiler::ir::CostBound {
    a.cost.workflows[wf].steps[step].clone()
}

/// Equal up to floating-point noise.
fn close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-12, "expected {expected}, got {actual}");
}

fn program(embedding: &str, body: &str) -> String {
    format!(
        r#"use std.memory
model local = sim("local") {{ input: $0/M, output: $0/M, context: 100000 }}
model small = openai("text-embedding-3-small") {{ input: $0.02/M, output: $0/M, context: 8191 }}
model large = openai("text-embedding-3-large") {{ input: $0.13/M, output: $0/M, context: 8191 }}
model fake = sim("fake-embed") {{ input: $0/M, output: $0/M, context: 8191 }}
role executor = [local]
{embedding}
workflow w(topic: String) -> Bool {{
  budget: $1
  max_param_tokens: 1000
{body}
}}"#
    )
}

const REMEMBER: &str = r#"  step notes = llm executor("Notes on {topic}") { max_tokens: 100 }
  step keep = memory.remember(key: "notes", value: notes)
  return keep"#;

#[test]
fn remember_costs_key_space_value_at_the_dearest_price() {
    let a = analyze(&program("role embedding = [small, large]", REMEMBER));
    // "notes" (5) + 1 space + the reply (100 × 4 bytes) = 406 tokens × $0.13/M.
    let keep = step(&a, "w", "keep");
    close(keep.usd, 406.0 * 0.13 / 1e6);
    assert!(keep.explanation.contains("embeds `key`, `value`: ≤ 406 tokens"), "{}", keep.explanation);
    assert!(keep.explanation.contains("`large` (the dearest of `embedding`)"), "{}", keep.explanation);
    close(a.cost.workflows["w"].total_usd.unwrap(), 406.0 * 0.13 / 1e6);
}

#[test]
fn no_embedding_role_or_a_sim_model_costs_nothing() {
    for role in ["", "role embedding = [fake]"] {
        let a = analyze(&program(role, REMEMBER));
        close(step(&a, "w", "keep").usd, 0.0);
        close(a.cost.workflows["w"].total_usd.unwrap(), 0.0);
    }
}

#[test]
fn retries_and_fan_out_multiply_the_embedding() {
    let body = r#"  step found = for t in [topic, "x"] => memory.recall(query: t) { retry: 2 }
  step keep = memory.remember(key: topic, value: found)
  return keep"#;
    let a = analyze(&program("role embedding = [small]", body));
    // One query ≤ 1000 bytes (a parameter); 2 items × 3 tries.
    let found = step(&a, "w", "found");
    close(found.usd, 1000.0 * 0.02 / 1e6 * 3.0 * 2.0);
    // key ≤ 1000 + 1 space + what `found` returns: 2 × (4096 + item overhead) + 2.
    let keep = step(&a, "w", "keep");
    assert!(keep.usd > 1001.0 * 0.02 / 1e6 + 2.0 * 4096.0 * 0.02 / 1e6, "{}", keep.explanation);
}

#[test]
fn tools_without_embeds_stay_free() {
    let src = r#"use std.http
model large = openai("text-embedding-3-large") { input: $0.13/M, output: $0/M, context: 8191 }
role embedding = [large]
workflow w(url: String) -> String {
  budget: $1
  step page = http.get(url: url)
  return page
}"#;
    let a = analyze(src);
    close(step(&a, "w", "page").usd, 0.0);
    assert!(step(&a, "w", "page").explanation.contains("no model cost"));
}
