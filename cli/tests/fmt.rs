//! `aosc fmt` as a user runs it: rewriting in place, `--check`, and refusing
//! files that do not parse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

/// A fresh scratch file holding `text`, in a directory removed when the
/// returned guard drops.
fn scratch(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn aosc(args: &[&str], file: &PathBuf) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aosc")).args(args).arg(file).output().unwrap();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const MESSY: &str = "model m=sim(\"echo\"){input:$0.10/M}   // price\nrole executor=[m]\n";
const TIDY: &str = "model m = sim(\"echo\") { input: $0.10/M } // price\n\nrole executor = [m]\n";

#[test]
fn rewrites_in_place() {
    let (_dir, file) = scratch("rewrite.aos", MESSY);
    let (code, _) = aosc(&["fmt"], &file);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), TIDY);
}

#[test]
fn check_reports_without_writing() {
    let (_dir, messy) = scratch("check_messy.aos", MESSY);
    let (code, stderr) = aosc(&["fmt", "--check"], &messy);
    assert_eq!(code, 1);
    assert!(stderr.contains("not formatted"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), MESSY);

    let (_dir, tidy) = scratch("check_tidy.aos", TIDY);
    assert_eq!(aosc(&["fmt", "--check"], &tidy).0, 0);
}

#[test]
fn broken_files_are_reported_and_left_alone() {
    let broken = "workflow w( {\n";
    let (_dir, file) = scratch("broken.aos", broken);
    let (code, stderr) = aosc(&["fmt"], &file);
    assert_eq!(code, 1);
    assert!(stderr.contains("E0001"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), broken);
}
