//! One module per subcommand. Each `run` returns the process exit status.

pub mod approve;
pub mod audit;
pub mod check;
pub mod explain;

pub mod control;

pub mod events;
pub mod fmt;
pub mod lsp;
pub mod models;
pub mod models_stats;
pub mod new;
pub mod replay;
pub mod resume;
pub mod run;
pub mod runs;
pub mod runtime;
pub mod secret;
pub mod show;
pub mod stream;
pub mod test;
pub mod token;
pub mod wait;
pub mod worker;

pub mod table;

use std::io::IsTerminal;

use aos_compiler::diagnostic::Color;

/// Exit statuses shared by all commands (LANGUAGE.md §6, §6a).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERRORS: u8 = 1;
    pub const USAGE: u8 = 2;
    /// A run paused at an approval gate (§6a).
    pub const PAUSED: u8 = 3;
    /// `aosc approve`/`deny`: the gate was already decided (by another
    /// decision, possibly a concurrent one); this one was not recorded.
    pub const REFUSED: u8 = 4;
}

/// Colour when stderr is a terminal and `NO_COLOR` is not set.
pub fn stderr_color() -> Color {
    if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        Color::Always
    } else {
        Color::Never
    }
}
