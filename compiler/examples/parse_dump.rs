#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Debug helper: `cargo run -p aos-compiler --example parse_dump FILE…`
//! prints the diagnostics of each file (and the tree with `--ast`).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ast = args.iter().any(|a| a == "--ast");
    for path in args.iter().filter(|a| !a.starts_with("--")) {
        let text = std::fs::read_to_string(path).unwrap();
        let mut sources = aos_compiler::Sources::new();
        let id = sources.add(path.clone(), text.clone());
        let (file, diags) = aos_compiler::parse(&text, id);
        if ast {
            println!("{file:#?}");
        }
        println!(
            "== {path}: {} items, {} diagnostics",
            file.items.len(),
            diags.len()
        );
        print!(
            "{}",
            aos_compiler::diagnostic::render_human(
                &diags,
                &sources,
                aos_compiler::diagnostic::Color::Never
            )
        );
    }
}
