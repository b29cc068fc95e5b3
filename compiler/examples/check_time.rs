#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Benchmark helper, timed as a whole process (`/usr/bin/time`):
//!
//! - `check_time gen N FILE` writes `testgen::checked_pipeline(N)` to FILE;
//! - `check_time gen-parse N FILE` writes `testgen::pipeline(N)` (the
//!   parse bench's input);
//! - `check_time check FILE` checks FILE as `aosc check` does (std modules
//!   embedded, no other `use`) and prints the number of diagnostics, the
//!   time of the check and its size (`check-diag FILE`: the diagnostics
//!   alone, as `aosc check` without `--cost`/`--emit-ir`);
//! - `check_time parse FILE [REPEAT]` lexes and parses FILE REPEAT times and
//!   prints MB/s.
use std::path::Path;
use std::time::Instant;

struct NoFiles;

impl aos_compiler::FileLoader for NoFiles {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string()))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") => {
            let n: usize = args[1].parse().unwrap();
            std::fs::write(&args[2], aos_compiler::testkit::testgen::checked_pipeline(n)).unwrap();
        }
        Some("gen-parse") => {
            let n: usize = args[1].parse().unwrap();
            std::fs::write(&args[2], aos_compiler::testkit::testgen::pipeline(n)).unwrap();
        }
        Some(mode @ ("check" | "check-diag")) => {
            let text = std::fs::read_to_string(&args[1]).unwrap();
            let options = aos_compiler::CheckOptions { program: mode == "check" };
            let t = Instant::now();
            let analysis = aos_compiler::check_with(&args[1], &text, &NoFiles, options);
            let took = t.elapsed();
            println!(
                "{}: {} bytes, {} diagnostics, program: {}, check {:.1} ms",
                args[1],
                text.len(),
                analysis.diagnostics.len(),
                analysis.program.is_some(),
                took.as_secs_f64() * 1e3
            );
        }
        Some("parse") => {
            let text = std::fs::read_to_string(&args[1]).unwrap();
            let repeat: usize = args.get(2).map_or(10, |r| r.parse().unwrap());
            let mut sources = aos_compiler::Sources::new();
            let id = sources.add(args[1].clone(), text.clone());
            let t = Instant::now();
            for _ in 0..repeat {
                let (file, diags) = aos_compiler::parse(std::hint::black_box(&text), id);
                assert!(diags.is_empty());
                drop(std::hint::black_box(file));
            }
            let secs = t.elapsed().as_secs_f64() / repeat as f64;
            println!("{}: {} bytes, parse {:.2} ms, {:.1} MB/s", args[1], text.len(), secs * 1e3, text.len() as f64 / secs / 1e6);
        }
        _ => eprintln!("usage: check_time gen|gen-parse N FILE | check|check-diag FILE | parse FILE [REPEAT]"),
    }
}
