//! Writing to stdout without panicking when the reader has gone away
//! (`aosc runs --json | head -c1`): `println!` panics on a closed pipe;
//! these macros drop the write instead, so the command still finishes its
//! work (a run still commits) and exits with its own status.

/// `println!` that ignores a closed stdout.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// `print!` that ignores a closed stdout.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, $($t)*);
        let _ = stdout.flush();
    }};
}

static JSON_ERRORS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set when the command was asked for JSON (`--json`, `--format json`):
/// its errors are then also printed as a JSON object on stdout.
pub fn set_json_errors(args: &[String]) {
    let json = args.iter().enumerate().any(|(i, a)| {
        a == "--json" || a == "--format=json" || (a == "--format" && args.get(i + 1).is_some_and(|n| n == "json"))
    });
    JSON_ERRORS.store(json, std::sync::atomic::Ordering::Relaxed);
}

/// Reports an error that ends a command: `error: MSG` on stderr and, when
/// JSON was asked for, `{"error": MSG}` on stdout, so that a script reading
/// stdout never gets nothing (a full disk, a read-only database).
pub fn error(msg: impl std::fmt::Display) {
    let msg = msg.to_string();
    eprintln!("error: {msg}");
    if JSON_ERRORS.load(std::sync::atomic::Ordering::Relaxed) {
        outln!("{}", serde_json::json!({"error": msg}));
    }
}
