//! `aosc lsp`: the language server, over stdin/stdout.

/// Run the language server over stdin/stdout (editors start it; logs go to
/// stderr).
#[derive(clap::Args)]
#[command(after_help = "The VS Code extension in editors/vscode starts this command.")]
pub struct LspArgs {
    /// How much to log on stderr.
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = ["error", "warn", "info", "debug"])]
    pub log: String,
    /// Accepted for clients that always pass it; stdio is the only transport.
    #[arg(long, hide = true)]
    pub stdio: bool,
}

pub fn run(args: &LspArgs) -> u8 {
    aos_lsp::server::set_log_level(&args.log);
    // "Generate steps from intent" runs this binary's `aosc new`.
    if let Ok(me) = std::env::current_exe() {
        aos_lsp::features::generate::set_generator(me);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aosc lsp: cannot start the async runtime: {e}");
            return super::exit::USAGE;
        }
    };
    let clean = runtime.block_on(aos_lsp::serve_stdio());
    // A check still reading a file must not keep the process alive.
    runtime.shutdown_background();
    if clean {
        super::exit::OK
    } else {
        eprintln!("aosc lsp: the session ended without `shutdown` (exit before shutdown, end of input or a malformed frame)");
        super::exit::ERRORS
    }
}
