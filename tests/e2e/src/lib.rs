//! `aos-e2e`: the tests in `tests/` drive the real `aosc` binary (as a user
//! or an editor would), so they live in a crate of their own rather than in
//! the CLI's.
//!
//! Cargo hands a binary's path (`CARGO_BIN_EXE_aosc`) only to the tests of
//! the package that builds it, so [`aosc`] finds it in the target directory
//! instead. `cargo test --workspace` (and `.ci/run`) build it first; when
//! running these tests alone, build it first: `cargo build -p aosc && cargo
//! test -p aos-e2e`.

use std::path::PathBuf;

/// The path of the `aosc` binary under test: `AOSC_BIN` when set, else the
/// `aosc` of the profile directory these tests were built into
/// (`target/debug/aosc` beside `target/debug/deps/<test>`).
///
/// # Panics
/// When the binary is not there, with the command that builds it (a test
/// helper: a missing binary is a set-up mistake, reported loudly).
#[allow(clippy::panic)]
pub fn aosc() -> PathBuf {
    if let Some(bin) = std::env::var_os("AOSC_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test binary> → target/<profile>/aosc
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).map(PathBuf::from).unwrap_or_default();
    let bin = profile_dir.join(format!("aosc{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        panic!("the aosc binary is not at {}: build it first (cargo build -p aosc), or set AOSC_BIN", bin.display());
    }
    bin
}
