//! `aosc explain CODE`: a diagnostic's entry in the catalog, as
//! `rustc --explain` prints one.

use aos_compiler::codes::{self, Code};

use super::exit;

/// Explain a diagnostic code: what it means, why, and an example.
#[derive(clap::Args)]
#[command(after_help = "Exit status: 0 explained, 2 unknown code.

Examples:
  aosc explain E0105          the unknown-attribute error
  aosc explain --list         every code with its title
  aosc explain --markdown     the whole catalog (docs/diagnostics.md)")]
pub struct ExplainArgs {
    /// The code, e.g. `E0105` (case does not matter).
    #[arg(value_name = "CODE", required_unless_present_any = ["list", "markdown"])]
    pub code: Option<String>,
    /// List every code with its title.
    #[arg(long, conflicts_with = "markdown")]
    pub list: bool,
    /// Print the whole catalog as Markdown.
    #[arg(long)]
    pub markdown: bool,
}

pub fn run(args: &ExplainArgs) -> u8 {
    if args.markdown {
        print!("{}", codes::markdown());
        return exit::OK;
    }
    if args.list {
        for c in Code::ALL {
            println!("{c}  {}", c.title());
        }
        return exit::OK;
    }
    let text = args.code.as_deref().unwrap_or_default();
    match Code::parse(text) {
        Some(code) => {
            print!("{}", codes::explain(code));
            exit::OK
        }
        None => {
            eprintln!("error: `{text}` is not a diagnostic code; `aosc explain --list` lists them");
            exit::USAGE
        }
    }
}
