//! Generators of large, valid programs for the benchmarks (`benches/`).
//!
//! Not part of the compiler's interface: behind the `testkit` feature (the
//! compiler's own tests, benches and examples turn it on), free to change.
//! Kept in the library so that every bench uses the same pipelines instead
//! of a copy each.

use std::fmt::Write as _;

/// A pipeline with the usual items and one workflow of `steps` steps that
/// mix LLM steps with interpolated prompts, tool calls, attributes and
/// comments, each step using the previous one. Made for the parser: it is
/// syntactically valid, not necessarily well-typed.
pub fn pipeline(steps: usize) -> String {
    let mut s = String::from(
        "use std.email\nuse std.sql\n\n/// One row.\ntype Row = { region: String, total: Float, week: String }\n\
         model gpt = openai(\"gpt-4o\") { input: $2.50/M, output: $10.00/M, context: 128000 }\n\
         role executor = [gpt]\nrole verifier = [gpt]\n\n\
         workflow big(region: String = \"EMEA\", limit: Int = 10) -> String {\n  intent: \"A generated pipeline\"\n  budget: $1000.00\n  risk: medium\n\n",
    );
    for i in 0..steps {
        let prev = if i == 0 { "region".to_string() } else { format!("s{}", i - 1) };
        match i % 3 {
            0 => {
                let _ = write!(
                    s,
                    "  // step {i}\n  step s{i}: String = llm executor(\"Summarize {{{prev}}} for {{region}} in {{limit}} bullets\") {{\n    max_tokens: 300\n    retry: 2\n    timeout: 30s\n  }}\n"
                );
            }
            1 => {
                let _ = writeln!(
                    s,
                    "  step s{i}: List<Row> = sql.query(sql: \"select * from t where r = $1\", params: [{prev}, region]) {{ max_output_tokens: 4000, when: limit > 0 and {prev} != null }}"
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "  step s{i} = email.send(to: \"a@example.com\", subject: \"Report {{region}}\", body: \"{{{prev}}}\") {{ approval: \"leads\" }}"
                );
            }
        }
    }
    let _ = write!(s, "  return s{}\n}}\n", steps.saturating_sub(1));
    s
}

/// A well-typed program of one workflow of `steps` steps that
/// `aos_compiler::check` accepts without errors, exercising every pass:
/// `use std.*` tools, LLM steps whose prompts interpolate earlier steps
/// (the previous one and one further back), optional steps (`when:`), a
/// fan-out every 500 steps, `after:` edges, a budget and a policy with a
/// rule on the run's trust (left to the runtime) and one decided at check
/// time.
pub fn checked_pipeline(steps: usize) -> String {
    let mut s = String::from(
        "use std.sql\nuse std.http\n\n\
         /// One row.\ntype Row = { region: String, total: Float, week: String }\n\
         model gpt = openai(\"gpt-4o\") { input: $2.50/M, output: $10.00/M, context: 128000 }\n\
         model haiku = anthropic(\"claude-haiku-3.5\") { input: $0.80/M, output: $4.00/M, context: 200000 }\n\
         role executor = [haiku]\nrole planner = [gpt, haiku]\n\n\
         policy house_rules {\n  require approval when risk >= high\n  deny when tool == \"http.request\" and trust < trusted\n}\n\n\
         workflow big(region: String = \"EMEA\", limit: Int = 10, docs: List<String> = []) -> String {\n  \
         intent: \"A generated pipeline\"\n  budget: $1000000.00\n  risk: medium\n\n",
    );
    // Every step is a String (LLM) or a tool result; `last` is the latest
    // String step, which the next LLM prompt interpolates.
    let mut last = String::from("region");
    let mut far = String::from("region");
    for i in 0..steps {
        match i % 6 {
            0 | 3 => {
                let role = if i % 6 == 0 { "executor" } else { "planner" };
                let _ = write!(
                    s,
                    "  // step {i}\n  step s{i}: String = llm {role}(\"Summarize {{{last}}} and {{{far}}} for {{region}} in {{limit}} bullets\") {{\n    max_tokens: 300\n    retry: 2\n    timeout: 30s\n  }}\n"
                );
                far = std::mem::replace(&mut last, format!("s{i}"));
            }
            1 => {
                let _ = writeln!(
                    s,
                    "  step s{i}: List<Row> = sql.query(sql: \"select * from t where r = $1\", params: [{last}, region]) {{ max_output_tokens: 4000, when: limit > 0 }}"
                );
            }
            2 => {
                let _ = writeln!(
                    s,
                    "  step s{i} = llm executor(\"Rows: {{s{} ?? []}} after {{{last}}}\") {{ max_tokens: 200 }}",
                    i - 1
                );
                last = format!("s{i}");
            }
            4 => {
                let _ = writeln!(
                    s,
                    "  step s{i} = http.get(url: \"https://example.com/{{region}}/{i}\", headers: null) {{ after: [{last}] }}"
                );
            }
            _ => {
                if i % 500 == 5 {
                    let _ = write!(
                        s,
                        "  step s{i}: List<String> = for doc in docs => llm executor(\"Review {{doc}} against {{s{}}}\") {{\n    max_items: 20\n    concurrency: 4\n    max_tokens: 100\n  }}\n",
                        i - 1
                    );
                    far = format!("s{i}");
                } else {
                    let _ = writeln!(
                        s,
                        "  step s{i} = llm executor(\"Check {{s{}}} with {{{last}}}\") {{ max_tokens: 100 }}",
                        i - 1
                    );
                    last = format!("s{i}");
                }
            }
        }
    }
    let _ = write!(s, "  return {last}\n}}\n");
    s
}
