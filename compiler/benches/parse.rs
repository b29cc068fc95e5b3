//! Lex + parse throughput on generated pipelines of 1k, 10k and 100k steps.
//!
//! `cargo bench -p aos-compiler --bench parse`; the figures are recorded in
//! docs/benchmarks.md. Throughput is reported in bytes; the sizes in lines
//! are printed first so that lines/s can be derived.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use aos_compiler::testkit::testgen::pipeline;
use aos_compiler::{FileId, parse};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("lex+parse");
    group.sample_size(10);
    for steps in [1_000usize, 10_000, 100_000] {
        let text = pipeline(steps);
        let (file, diags) = parse(&text, FileId(0));
        assert!(diags.is_empty(), "{diags:?}");
        // use, use, type, model, role, role, workflow.
        assert_eq!(file.items.len(), 7);
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
