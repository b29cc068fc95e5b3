//! `aosc`: the one binary of AUTOOS.

#[macro_use]
mod output;
mod commands;
mod new;

mod serve;

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
  aosc explain E0105                      what a diagnostic code means
  aosc test examples/                     run the `test` blocks (scripted models and tools, no network)
  aosc run examples/hello.aos --input name=Ada
                                          run a workflow durably (sim when no API keys are set)
  aosc runs                               list runs; then `aosc show RUN_ID`, `aosc replay RUN_ID`
  aosc resume RUN_ID                      continue a paused or interrupted run
  aosc events RUN_ID --follow             a run's events as they happen (Redis Streams with AOS_REDIS_URL)
  aosc models examples/weekly_sales_report.aos
                                          the models a program declares, prices, credentials
  aosc new 'email me the weather' -o weather.aos
                                          write a pipeline from an English intent

  aosc token create --name ci --trust trusted
                                          an API token for `aosc serve` (printed once)
  aosc serve --programs examples/         HTTP API, dashboard, metrics and triggers on 127.0.0.1:8080
  aosc secret set API_TOKEN < token.txt
                                          keep a secret encrypted under AOS_HOME (see `aosc secret --help`)
  aosc cancel RUN_ID                      stop a run (it ends `cancelled`)
  aosc run FILE --detach                  queue a run for `aosc worker`s (AOS_DATABASE_URL=postgres://…)
  aosc worker --concurrency 8             a fleet worker; `aosc wait RUN_ID` blocks until the run ends
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
    Test(commands::test::TestArgs),
    Explain(commands::explain::ExplainArgs),
    Run(commands::run::RunArgs),
    Resume(commands::resume::ResumeArgs),
    Approve(commands::approve::DecideArgs),
    Deny(commands::approve::DenyArgs),
    Runs(commands::runs::RunsArgs),
    Show(commands::show::ShowArgs),
    Replay(commands::replay::ReplayArgs),
    Events(commands::events::EventsArgs),
    Audit(commands::audit::AuditArgs),
    Models(commands::models::ModelsArgs),
    New(commands::new::NewArgs),
    Lsp(commands::lsp::LspArgs),
    Serve(serve::ServeArgs),
    Token(commands::token::TokenArgs),
    Secret(commands::secret::SecretArgs),
    Cancel(commands::control::CancelArgs),
    Pause(commands::control::PauseArgs),
    Worker(commands::worker::WorkerArgs),
    Wait(commands::wait::WaitArgs),
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
    output::set_json_errors(&std::env::args().collect::<Vec<_>>());
    let code = match cli.command {
        Command::Check(args) => commands::check::run(&args),
        Command::Fmt(args) => commands::fmt::run(&args),
        Command::Test(args) => commands::test::run(&args),
        Command::Explain(args) => commands::explain::run(&args),
        Command::Run(args) => commands::run::run(&args),
        Command::Resume(args) => commands::resume::run(&args),
        Command::Approve(args) => commands::approve::run(&args, aos_runtime::Verdict::Approve),
        Command::Deny(args) => commands::approve::run(&args.inner, aos_runtime::Verdict::Deny),
        Command::Runs(args) => commands::runs::run(&args),
        Command::Show(args) => commands::show::run(&args),
        Command::Replay(args) => commands::replay::run(&args),
        Command::Events(args) => commands::events::run(&args),
        Command::Audit(args) => commands::audit::run(&args),
        Command::Models(args) => commands::models::run(&args),
        Command::New(args) => commands::new::run(&args),
        Command::Lsp(args) => commands::lsp::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Token(args) => commands::token::run(&args),
        Command::Secret(args) => commands::secret::run(&args),
        Command::Cancel(args) => commands::control::cancel(&args),
        Command::Pause(args) => commands::control::pause(&args),
        Command::Worker(args) => commands::worker::run(&args),
        Command::Wait(args) => commands::wait::run(&args),
    };
    ExitCode::from(code)
}
