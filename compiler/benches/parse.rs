//! Lex + parse throughput on generated pipelines of 1k, 10k and 100k steps.
//!
//! `cargo bench -p aos-compiler --bench parse`; the figures are recorded in
//! docs/benchmarks.md. Throughput is reported in bytes; the sizes in lines
//! are printed first so that lines/s can be derived.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::hint::black_box;

use aos_compiler::{FileId, parse};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// A pipeline with the usual items and one workflow of `steps` steps that
/// mix LLM steps with interpolated prompts, tool calls, attributes and
/// comments, each step using the previous one.
pub fn pipeline(steps: usize) -> String {
    let mut s = String::from(
        "use std.email\nuse std.sql\n\n/// One row.\ntype Row = { region: String, total: Float, week: String }\n\
         model gpt = openai(\"gpt-4o\") { input: $2.50/M, output: $10.00/M, context: 128000 }\n\
         role executor = [gpt]\nrole verifier = [gpt]\n\n\
         workflow big(region: String = \"EMEA\", limit: Int = 10) -> String {\n  intent: \"A generated pipeline\"\n  budget: $1000.00\n  risk: medium\n\n",
    );
    for i in 0..steps {
        let prev = if i == 0 { "region".to_string() } else { format!("s{}", i - 1) };
        match i % 3 {
            0 => {
                let _ = write!(
                    s,
                    "  // step {i}\n  step s{i}: String = llm executor(\"Summarize {{{prev}}} for {{region}} in {{limit}} bullets\") {{\n    max_tokens: 300\n    retry: 2\n    timeout: 30s\n  }}\n"
                );
            }
            1 => {
                let _ = write!(
                    s,
                    "  step s{i}: List<Row> = sql.query(sql: \"select * from t where r = $1\", params: [{prev}, region]) {{ max_output_tokens: 4000, when: limit > 0 and {prev} != null }}\n"
                );
            }
            _ => {
                let _ = write!(
                    s,
                    "  step s{i} = email.send(to: \"a@example.com\", subject: \"Report {{region}}\", body: \"{{{prev}}}\") {{ approval: \"leads\" }}\n"
                );
            }
        }
    }
    let _ = write!(s, "  return s{}\n}}\n", steps.saturating_sub(1));
    s
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("lex+parse");
    group.sample_size(10);
    for steps in [1_000usize, 10_000, 100_000] {
        let text = pipeline(steps);
        let (file, diags) = parse(&text, FileId(0));
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(file.items.len(), 8);
        eprintln!("pipeline of {steps} steps: {} bytes, {} lines", text.len(), text.lines().count());
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(steps), &text, |b, text| {
            b.iter(|| parse(black_box(text), FileId(0)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
