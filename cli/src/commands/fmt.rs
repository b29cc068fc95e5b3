//! `aosc fmt`: rewrite files in the canonical layout.

use aos_compiler::diagnostic::render_human;
use aos_compiler::Sources;

use super::exit;

/// Format `.aos` files in the canonical layout (comments are kept).
#[derive(clap::Args)]
#[command(after_help = "Exit status: 0 done (or, with --check, already formatted), 1 a file needs formatting
or does not parse, 2 usage or I/O error.

Examples:
  aosc fmt pipeline.aos               rewrite in place
  aosc fmt --check examples/*.aos     only report files that would change")]
pub struct FmtArgs {
    /// The files to format.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Do not write; exit 1 if any file is not already formatted.
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: &FmtArgs) -> u8 {
    let mut status = exit::OK;
    for path in &args.files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read `{path}`: {e}");
                return exit::USAGE;
            }
        };
        match aos_compiler::format(&text) {
            Ok(formatted) if formatted == text => {}
            Ok(formatted) => {
                if args.check {
                    eprintln!("{path}: not formatted");
                    status = exit::ERRORS;
                } else if let Err(e) = std::fs::write(path, formatted) {
                    eprintln!("error: cannot write `{path}`: {e}");
                    return exit::USAGE;
                }
            }
            Err(diags) => {
                let mut sources = Sources::new();
                sources.add(path.as_str(), text);
                eprint!("{}", render_human(&diags, &sources, super::stderr_color()));
                eprintln!("{path}: not formatted: it does not parse");
                status = exit::ERRORS;
            }
        }
    }
    status
}
