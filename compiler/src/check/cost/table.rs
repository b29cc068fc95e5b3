//! Dollar figures as shown, and the table `aosc check --cost` prints.

use super::*;

pub(super) fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// US dollars rounded up to the micro-dollar (so the figure shown is still
/// an upper bound), with at least two decimals: `$0.063748`, `$2.50`.
pub fn fmt_usd(usd: f64) -> String {
    if usd <= 0.0 {
        return "$0".to_string();
    }
    // Subtract a little noise before rounding up: 0.3 must not become 0.300001.
    let micros = (usd * 1e6 - 1e-6).ceil().max(0.0);
    fmt_dollars(micros / 1e6)
}

/// A per-million price as written in source: `$2.50/M` (exact: prices
/// are whole micro-dollars).
pub fn fmt_price(per_m: f64) -> String {
    let micros = Usd::of_tokens(1_000_000, per_m).micros_ceil();
    format!("{}/M", crate::money::dollars(micros))
}

pub(super) fn fmt_dollars(x: f64) -> String {
    let mut s = format!("{x:.6}");
    while s.ends_with('0') && s.len() > s.find('.').map_or(0, |i| i + 3) {
        s.pop();
    }
    format!("${s}")
}

/// The table of `aosc check --cost`: for each workflow, each step's bound
/// and how it was reached, and the total against the budget.
pub fn render_table(report: &CostReport) -> String {
    let mut out = String::new();
    for (name, wf) in &report.workflows {
        let total = wf.total.map_or("no bound".to_string(), |t| t.to_string());
        let budget = match (wf.budget, wf.total) {
            (Some(b), Some(t)) => {
                let verdict = if t > b { "OVER budget" } else { "within budget" };
                match t.percent_of(b) {
                    Some(p) => format!("budget {b} ({p}% used, {verdict})"),
                    None => format!("budget {b} ({verdict})"),
                }
            }
            (Some(b), None) => format!("budget {b}"),
            (None, _) => "no budget".to_string(),
        };
        let _ = writeln!(out, "workflow {name}: worst case {total} per run; {budget}");
        let header = ["step", "kind", "model", "prompt tok", "output tok", "attempts", "items", "USD"];
        let mut rows: Vec<[String; 8]> = Vec::new();
        for (step, kind) in &wf.order {
            let Some(b) = wf.steps.get(step) else { continue };
            let llm = *kind == ir::StepKind::Llm;
            let usd = if wf.unbounded.contains(step) {
                "no bound".to_string()
            } else {
                wf.step_usd.get(step).map_or_else(|| fmt_usd(b.usd), Usd::to_string)
            };
            rows.push([
                step.clone(),
                kind_name(*kind).to_string(),
                b.model.clone().unwrap_or_else(|| "-".to_string()),
                if llm { b.prompt_tokens.to_string() } else { "-".to_string() },
                b.output_tokens.to_string(),
                b.attempts.to_string(),
                b.items.to_string(),
                usd,
            ]);
        }
        rows.push([
            "total".to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            total.clone(),
        ]);
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(widths.iter()).enumerate() {
                // Names left-aligned, figures right-aligned.
                if i < 3 {
                    let _ = write!(s, "  {c:<w$}");
                } else {
                    let _ = write!(s, "  {c:>w$}");
                }
            }
            s.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(&header.map(str::to_string)));
        let n = rows.len();
        for (i, r) in rows.iter().enumerate() {
            if i + 1 == n {
                let width: usize = widths.iter().sum::<usize>() + 2 * widths.len();
                let _ = writeln!(out, "  {}", "-".repeat(width.saturating_sub(2)));
            }
            let _ = writeln!(out, "{}", line(r));
        }
        for (step, _) in &wf.order {
            let Some(b) = wf.steps.get(step) else { continue };
            let _ = writeln!(out, "\n  {step}:");
            for l in b.explanation.lines() {
                let _ = writeln!(out, "    {l}");
            }
        }
        out.push('\n');
    }
    out
}

pub(super) fn kind_name(kind: ir::StepKind) -> &'static str {
    match kind {
        ir::StepKind::Tool => "tool",
        ir::StepKind::Llm => "llm",
        ir::StepKind::Workflow => "workflow",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn usd_is_rounded_up_to_the_micro() {
        assert_eq!(fmt_usd(0.0), "$0");
        assert_eq!(fmt_usd(0.5), "$0.50");
        assert_eq!(fmt_usd(0.3), "$0.30");
        assert_eq!(fmt_usd(0.000_000_1), "$0.000001");
        assert_eq!(fmt_usd(0.063_747_2), "$0.063748");
        assert_eq!(fmt_price(2.5), "$2.50/M");
        assert_eq!(fmt_price(0.15), "$0.15/M");
    }


}
