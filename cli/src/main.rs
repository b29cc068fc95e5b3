//! `aosc`: the one binary of AUTOOS.

#[macro_use]
mod output;
mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Write, check and run LLM automation pipelines (`.aos` files).
#[derive(Parser)]
#[command(name = "aosc", version, about, long_about = None, propagate_version = true)]
#[command(after_help = "Examples:
  aosc check examples/hello.aos           prove a pipeline safe to run
  aosc check --cost examples/weekly_sales_report.aos
                                          explain the worst-case cost of a run
  aosc fmt --check examples/*.aos         verify canonical formatting
  aosc run examples/hello.aos --input name=Ada
                                          run a workflow durably (sim when no API keys are set)
  aosc runs                               list runs; then `aosc show RUN_ID`, `aosc replay RUN_ID`
  aosc resume RUN_ID                      continue a paused or interrupted run
  aosc models examples/weekly_sales_report.aos
                                          the models a program declares, prices, credentials
  aosc lsp                                the language server (editors start it)

Run `aosc help COMMAND` for the options of one command.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Check(commands::check::CheckArgs),
    Fmt(commands::fmt::FmtArgs),
    Run(commands::run::RunArgs),
    Resume(commands::resume::ResumeArgs),
    Approve(commands::approve::DecideArgs),
    Deny(commands::approve::DenyArgs),
    Runs(commands::runs::RunsArgs),
    Show(commands::show::ShowArgs),
    Replay(commands::replay::ReplayArgs),
    Audit(commands::audit::AuditArgs),
    Models(commands::models::ModelsArgs),
    Lsp(commands::lsp::LspArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are not usage errors.
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    let code = match cli.command {
        Command::Check(args) => commands::check::run(&args),
        Command::Fmt(args) => commands::fmt::run(&args),
        Command::Run(args) => commands::run::run(&args),
        Command::Resume(args) => commands::resume::run(&args),
        Command::Approve(args) => commands::approve::run(&args, aos_runtime::Verdict::Approve),
        Command::Deny(args) => commands::approve::run(&args.inner, aos_runtime::Verdict::Deny),
        Command::Runs(args) => commands::runs::run(&args),
        Command::Show(args) => commands::show::run(&args),
        Command::Replay(args) => commands::replay::run(&args),
        Command::Audit(args) => commands::audit::run(&args),
        Command::Models(args) => commands::models::run(&args),
        Command::Lsp(args) => commands::lsp::run(&args),
    };
    ExitCode::from(code)
}
