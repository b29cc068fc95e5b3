//! Full check (parse, resolution, types, step graph, roles, policy, cost and
//! lowering to the IR) of generated pipelines of 1k, 10k and 100k steps.
//!
//! `cargo bench -p aos-compiler --bench check`; the figures are recorded in
//! docs/benchmarks.md. Throughput is reported in elements, one per step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;

use aos_compiler::check::FileLoader;
use aos_compiler::testkit::testgen::checked_pipeline;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// The generated pipelines only `use std.*`, which is embedded.
struct NoFiles;

impl FileLoader for NoFiles {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string()))
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    for steps in [1_000usize, 10_000, 100_000] {
        let text = checked_pipeline(steps);
        let analysis = aos_compiler::check("big.aos", &text, &NoFiles);
        assert!(analysis.diagnostics.is_empty(), "{:#?}", &analysis.diagnostics[..analysis.diagnostics.len().min(5)]);
        // No diagnostic, so `check` also lowered the program to the IR.
        eprintln!("pipeline of {steps} steps: {} bytes, {} lines", text.len(), text.lines().count());
        if steps >= 100_000 {
            group.sample_size(10);
        }
        group.throughput(Throughput::Elements(steps as u64));
        group.bench_with_input(BenchmarkId::from_parameter(steps), &text, |b, text| {
            b.iter(|| aos_compiler::check("big.aos", black_box(text), &NoFiles));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
