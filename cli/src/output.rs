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
