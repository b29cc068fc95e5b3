//! `aosc fmt` as a user runs it: rewriting in place, `--check`, and refusing
//! files that do not parse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

/// A fresh scratch file holding `text`.
fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aosc-fmt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn aosc(args: &[&str], file: &PathBuf) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aosc")).args(args).arg(file).output().unwrap();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const MESSY: &str = "model m=sim(\"echo\"){input:$0.10/M}   // price\nrole executor=[m]\n";
const TIDY: &str = "model m = sim(\"echo\") { input: $0.10/M } // price\n\nrole executor = [m]\n";

#[test]
fn rewrites_in_place() {
    let file = scratch("rewrite.aos", MESSY);
    let (code, _) = aosc(&["fmt"], &file);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), TIDY);
}

#[test]
fn check_reports_without_writing() {
    let messy = scratch("check_messy.aos", MESSY);
    let (code, stderr) = aosc(&["fmt", "--check"], &messy);
    assert_eq!(code, 1);
    assert!(stderr.contains("not formatted"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), MESSY);

    let tidy = scratch("check_tidy.aos", TIDY);
    assert_eq!(aosc(&["fmt", "--check"], &tidy).0, 0);
}

#[test]
fn broken_files_are_reported_and_left_alone() {
    let broken = "workflow w( {\n";
    let file = scratch("broken.aos", broken);
    let (code, stderr) = aosc(&["fmt"], &file);
    assert_eq!(code, 1);
    assert!(stderr.contains("E0001"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), broken);
}
