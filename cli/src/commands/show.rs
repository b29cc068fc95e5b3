//! `aosc show`: one run, its steps, attempts, outputs, usage and cost.

use super::exit;
use super::runtime as rtx;

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
                eprintln!("error: {e}");
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
        outln!("{:<24} {:<17} {:>8} {:>10} {:>10} {:>10}", "STEP", "STATUS", "ATTEMPTS", "IN TOK", "OUT TOK", "COST");
        for st in v.get("steps").and_then(|x| x.as_array()).cloned().unwrap_or_default() {
            let g = |k: &str| st.get(k).cloned().unwrap_or_default();
            outln!(
                "{:<24} {:<17} {:>8} {:>10} {:>10} {:>10}",
                g("name").as_str().unwrap_or(""),
                g("status").as_str().unwrap_or(""),
                g("attempts"),
                st.pointer("/usage/input_tokens").cloned().unwrap_or_default(),
                st.pointer("/usage/output_tokens").cloned().unwrap_or_default(),
                format!("${:.6}", g("cost_usd").as_f64().unwrap_or(0.0)),
            );
        }
        if let Some(out) = v.get("output").filter(|o| !o.is_null()) {
            outln!();
            outln!("output   {}", out.as_str().map(str::to_string).unwrap_or_else(|| out.to_string()));
        }
        exit::OK
    })
}
