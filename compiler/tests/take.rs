//! `take(xs, n)`: typed `List<T> -> List<T>`, and a fan-out over it is
//! bounded by `n` in the cost proof (min with `max_items` and with a
//! literal list's length).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aos_compiler::check::FsLoader;

const HEAD: &str = r#"use std.sql
model m = anthropic("claude-haiku-3.5") { input: $0.80/M, output: $4.00/M, context: 200000 }
role executor = [m]
"#;

fn bound(body: &str) -> (f64, Vec<String>) {
    let src = format!("{HEAD}workflow w() -> Json {{\n  budget: $10\n{body}\n}}\n");
    let a = aos_compiler::check("take.aos", &src, &FsLoader);
    let codes = a.diagnostics.iter().filter(|d| d.is_error()).map(|d| format!("{}: {}", d.code.as_str(), d.message)).collect();
    let usd = a.cost.workflows.get("w").and_then(|c| c.total_usd).unwrap_or(-1.0);
    (usd, codes)
}

const ROWS: &str = r#"  step rows = sql.query(sql: "select 1") { max_output_tokens: 500 }"#;

#[test]
fn a_fan_out_over_take_needs_no_max_items_and_costs_n_items() {
    let (take3, errors) =
        bound(&format!("{ROWS}\n  step s = for r in take(rows, 3) => llm executor(\"{{r}}\") {{ max_tokens: 10 }}\n  return s"));
    assert!(errors.is_empty(), "{errors:?}");
    let (max3, errors) =
        bound(&format!("{ROWS}\n  step s = for r in rows => llm executor(\"{{r}}\") {{ max_tokens: 10, max_items: 3 }}\n  return s"));
    assert!(errors.is_empty(), "{errors:?}");
    assert!(take3 > 0.0);
    assert_eq!(take3, max3, "take(rows, 3) bounds the fan-out as max_items: 3 does");
    // The smaller of `take`'s count and `max_items` counts.
    let (both, _) = bound(&format!(
        "{ROWS}\n  step s = for r in take(rows, 5) => llm executor(\"{{r}}\") {{ max_tokens: 10, max_items: 3 }}\n  return s"
    ));
    assert_eq!(both, max3);
    // Without `take` or `max_items` the fan-out is unbounded (E0502).
    let (_, errors) = bound(&format!("{ROWS}\n  step s = for r in rows => llm executor(\"{{r}}\") {{ max_tokens: 10 }}\n  return s"));
    assert!(errors.iter().any(|e| e.starts_with("E0502")), "{errors:?}");
}

#[test]
fn take_keeps_the_list_type_and_refuses_other_values() {
    let (_, errors) = bound(&format!("{ROWS}\n  step s: List<Json> = llm executor(\"{{take(rows, 2)}}\") {{ max_tokens: 10 }}\n  return take(s, 1)"));
    assert!(errors.is_empty(), "{errors:?}");
    let (_, errors) = bound("  step s = llm executor(\"{take(\"abc\", 2)}\") { max_tokens: 10 }\n  return s");
    assert!(errors.iter().any(|e| e.starts_with("E0201") && e.contains("`take` expects a list")), "{errors:?}");
    let (_, errors) = bound(&format!("{ROWS}\n  step s = llm executor(\"{{take(rows, \"2\")}}\") {{ max_tokens: 10 }}\n  return s"));
    assert!(errors.iter().any(|e| e.starts_with("E0201")), "{errors:?}");
}
