//! `aosc show`: one run, its steps, attempts, outputs, usage and cost.

use super::exit;
use super::runtime as rtx;
use super::table;

/// Show a run: status, steps with their status, attempts, output, usage and cost.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  aosc show 01J9Z8Q6W5K3M2N1P0R9S8T7V6
  aosc show 01J9Z8Q6W5K3M2N1P0R9S8T7V6 --json")]
pub struct ShowArgs {
    pub run_id: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ShowArgs) -> u8 {
    rtx::with_runtime(|rt| async move {
        let v = match rt.show(&args.run_id).await {
            Ok(v) => v,
            Err(e) => {
                crate::output::error(&e);
                return exit::ERRORS;
            }
        };
        if args.json {
            outln!("{v}");
            return exit::OK;
        }
        let s = |k: &str| v.get(k).map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).unwrap_or_default();
        outln!("run      {}", s("run_id"));
        outln!("workflow {}", s("workflow"));
        outln!("status   {}", s("status"));
        outln!("started  {}", s("started_at"));
        outln!("cost     ${:.6}", v.get("cost_usd").and_then(serde_json::Value::as_f64).unwrap_or(0.0));
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            outln!("error    {e}");
        }
        outln!();
        out!("{}", steps_table(v.get("steps").and_then(|x| x.as_array()).map(Vec::as_slice).unwrap_or_default()));
        if let Some(out) = v.get("output").filter(|o| !o.is_null()) {
            outln!();
            outln!("output   {}", out.as_str().map(str::to_string).unwrap_or_else(|| out.to_string()));
        }
        exit::OK
    })
}

/// The STEP / STATUS / ATTEMPTS / IN TOK / OUT TOK / COST table of `aosc
/// show`: columns as wide as their widest cell, numbers right-aligned.
pub fn steps_table(steps: &[serde_json::Value]) -> String {
    use serde_json::Value;
    use table::Align::{Left, Right};
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_string(),
        Some(v) => v.to_string(),
    };
    // A CACHED column only when the response cache answered a step.
    let any_cached = steps.iter().any(|st| st.get("cache").is_some());
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|st| {
            let mut row = vec![
                text(st.get("name")),
                text(st.get("status")),
                text(st.get("attempts")),
                text(st.pointer("/usage/input_tokens")),
                text(st.pointer("/usage/output_tokens")),
                format!("${:.6}", st.get("cost_usd").and_then(Value::as_f64).unwrap_or(0.0)),
            ];
            if any_cached {
                row.push(cached_cell(st));
            }
            row
        })
        .collect();
    let mut columns = vec![("STEP", Left), ("STATUS", Left), ("ATTEMPTS", Right), ("IN TOK", Right), ("OUT TOK", Right), ("COST", Right)];
    if any_cached {
        columns.push(("CACHED", Left));
    }
    table::render(&columns, &rows)
}

/// `hit, saved $0.000123` for a step answered from the cache; `2 hits, …`
/// for a fan-out; `-` otherwise.
fn cached_cell(st: &serde_json::Value) -> String {
    let Some(c) = st.get("cache") else { return "-".to_string() };
    let hits = c.get("hits").and_then(serde_json::Value::as_u64).unwrap_or(0);
    let saved = c.get("saved_usd").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    let what = if hits == 1 { "hit".to_string() } else { format!("{hits} hits") };
    format!("{what}, saved ${saved:.6}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_steps_table_is_aligned() {
        let steps = [
            json!({"name": "rows", "status": "succeeded", "attempts": 1, "usage": null, "cost_usd": 0.0}),
            json!({"name": "summary_of_the_week", "status": "succeeded", "attempts": 2,
                   "usage": {"input_tokens": 12345, "output_tokens": 600}, "cost_usd": 0.012_345}),
            json!({"name": "sent", "status": "waiting approval", "attempts": 0, "cost_usd": 0.0}),
        ];
        insta::assert_snapshot!(steps_table(&steps));
    }

    #[test]
    fn a_cached_step_is_marked_in_its_own_column() {
        let steps = [
            json!({"name": "summary", "status": "succeeded", "attempts": 1, "usage": {"input_tokens": 0, "output_tokens": 0},
                   "cost_usd": 0.0, "cached": true, "cache": {"hits": 1, "saved_usd": 0.000_42}}),
            json!({"name": "sent", "status": "succeeded", "attempts": 1, "cost_usd": 0.0}),
        ];
        let table = steps_table(&steps);
        assert!(table.lines().next().is_some_and(|l| l.contains("CACHED")), "{table}");
        assert!(table.contains("hit, saved $0.000420"), "{table}");
        assert!(table.lines().nth(2).is_some_and(|l| l.trim_end().ends_with('-')), "{table}");
    }
}
