//! Plan → `.aos` text: pure and deterministic. The same plan, catalog and
//! gates always give the same program (the caller formats it with the
//! compiler's formatter and checks it).
//!
//! What the model does not say is filled from the catalog: a required
//! argument the plan leaves out takes an earlier step's result when one
//! fits (an id-like parameter from the step before it of the same toolkit, a
//! text parameter from an LLM step that writes it from the earlier results),
//! else it becomes a parameter of the workflow. Gates (`approval:`,
//! `verify:`, `idempotency_key:`) and the budget come from [`Gates`], which
//! the caller derives from the checker's diagnostics and cost report.

use std::collections::{BTreeMap, BTreeSet};

use super::catalog::{CatalogTool, Ty};
use super::plan::Plan;

/// Everything the checker demanded of the previous lowering.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gates {
    /// Step name → approver group.
    pub approval: BTreeMap<String, String>,
    /// Step name → verifier role.
    pub verify: BTreeMap<String, String>,
    /// Steps that need an idempotency key.
    pub idempotency: BTreeSet<String>,
    /// LLM step name → `max_input_tokens` (the window the checker named).
    pub max_input: BTreeMap<String, u64>,
    /// The workflow's budget in USD (None: a placeholder the caller
    /// replaces with the checker's worst case).
    pub budget_usd: Option<f64>,
}

/// The context the program is written in.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting<'a> {
    pub intent: &'a str,
    /// `use` paths of the `--with` files, relative to the output file.
    pub uses: &'a [String],
    /// The role LLM steps use; `None` declares an offline `sim` model and a
    /// role `executor` for them.
    pub writer_role: Option<&'a str>,
    pub catalog: &'a [CatalogTool],
}

/// A lowered step, for the summary on stderr.
#[derive(Clone, Debug, PartialEq)]
pub struct LoweredStep {
    pub name: String,
    /// The tool's dotted name, or `llm ROLE`.
    pub does: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Lowered {
    /// Unformatted source.
    pub text: String,
    pub workflow: String,
    pub steps: Vec<LoweredStep>,
    /// Inputs the workflow takes (values the plan did not give).
    pub inputs: Vec<String>,
}

/// Budget placed before the checker has computed the worst case.
pub const PLACEHOLDER_BUDGET: f64 = 100.0;

const KEYWORDS: &[&str] = &[
    "use", "workflow", "step", "tool", "model", "role", "type", "enum", "policy", "return", "for", "in", "llm", "true",
    "false", "null", "and", "or", "not", "require", "deny", "when",
];

const TEXT_PARAMS: &[&str] =
    &["body", "content", "text", "message", "summary", "description", "contents", "prompt", "bulletitems", "bullets"];

/// A parameter for text composed from earlier results (an LLM step writes it).
pub fn is_text_param(param: &str) -> bool {
    TEXT_PARAMS.contains(&normalized(param).as_str())
}

/// A string literal with the language's escapes (`{` starts interpolation).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '{' => out.push_str("\\{"),
            '}' => out.push_str("\\}"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A valid identifier from free text: lowercase words joined by `_`.
pub fn ident(text: &str, fallback: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() {
        return fallback.to_string();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) || KEYWORDS.contains(&out.as_str()) {
        return format!("{fallback}_{out}");
    }
    out
}

/// The workflow's name: the first few content words of the intent.
fn workflow_name(intent: &str) -> String {
    const SKIP: &[&str] = &["i", "a", "an", "the", "please", "can", "could", "you", "would", "like", "to", "me", "my", "want", "need", "i'm", "im"];
    let words: Vec<String> = intent
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_ascii_lowercase)
        .filter(|w| !w.is_empty() && !SKIP.contains(&w.as_str()) && !w.starts_with(|c: char| c.is_ascii_digit()))
        .take(4)
        .collect();
    ident(&words.join("_"), "pipeline")
}

/// Lowercase letters and digits only: how parameter names compare.
pub fn normalized(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// A parameter an earlier step's result fills (an id, a ticker, a URL).
pub fn is_id_like(param: &str) -> bool {
    let n = normalized(param);
    n.ends_with("id") || n.ends_with("ids") || n == "ticker" || n == "symbol" || n == "url"
}

/// A plan value that names an earlier step: `stepN` with an optional path.
fn reference(value: &str, earlier: &[String]) -> Option<String> {
    let v = value.trim();
    let rest = v.strip_prefix("step")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let n: usize = digits.parse().ok()?;
    let path = &rest[digits.len()..];
    let valid_path = path.is_empty()
        || (path.starts_with(['.', '['])
            && path.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '[' || c == ']'));
    let target = earlier.get(n.checked_sub(1)?)?;
    valid_path.then(|| format!("{target}{path}"))
}

/// A literal of type `ty` from the model's text; when the text does not
/// fit, it stays a string, and the checker says so (the repair loop sends
/// that back).
fn literal(value: &str, ty: &Ty) -> String {
    let v = value.trim();
    match ty {
        Ty::Optional(inner) => literal(value, inner),
        Ty::Int => v.parse::<i64>().map(|n| n.to_string()).unwrap_or_else(|_| quote(value)),
        Ty::Float => match v.parse::<f64>() {
            Ok(f) if f.is_finite() => {
                let s = f.to_string();
                if s.contains('.') { s } else { format!("{s}.0") }
            }
            _ => quote(value),
        },
        Ty::Bool => match v.to_ascii_lowercase().as_str() {
            "true" | "yes" => "true".into(),
            "false" | "no" => "false".into(),
            _ => quote(value),
        },
        Ty::Json => match serde_json::from_str::<serde_json::Value>(v) {
            Ok(serde_json::Value::Number(n)) => n.to_string(),
            Ok(serde_json::Value::Bool(b)) => b.to_string(),
            _ => quote(value),
        },
        Ty::List(inner) => match serde_json::from_str::<Vec<serde_json::Value>>(v) {
            Ok(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        serde_json::Value::String(s) => literal(s, inner),
                        other => literal(&other.to_string(), inner),
                    })
                    .collect();
                format!("[{}]", parts.join(", "))
            }
            Err(_) => format!("[{}]", literal(value, inner)),
        },
        Ty::Str | Ty::Other(_) => quote(value),
    }
}

/// The type of a workflow input standing for a missing argument.
fn input_type(ty: &Ty) -> String {
    match ty {
        Ty::Optional(inner) => input_type(inner),
        Ty::Other(_) => "Json".into(),
        Ty::List(inner) => format!("List<{}>", input_type(inner)),
        t => t.render(),
    }
}

struct Builder<'a> {
    setting: &'a Setting<'a>,
    body: Vec<String>,
    /// Tool steps so far: (name, tool).
    tool_steps: Vec<(String, &'a CatalogTool)>,
    /// Every step name, in plan order of the plan's steps (for `stepN`).
    plan_names: Vec<String>,
    used_names: BTreeSet<String>,
    referenced: BTreeSet<String>,
    inputs: Vec<(String, String)>,
    steps: Vec<LoweredStep>,
    writer: String,
}

impl<'a> Builder<'a> {
    fn fresh(&mut self, base: &str) -> String {
        let base = ident(base, "s");
        let mut name = base.clone();
        let mut n = 2;
        while self.used_names.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.used_names.insert(name.clone());
        name
    }

    fn input(&mut self, param: &str, ty: &Ty) -> String {
        let ty = input_type(ty);
        if let Some((name, _)) = self.inputs.iter().find(|(n, t)| n == &ident(param, "in") && *t == ty) {
            return name.clone();
        }
        let name = self.fresh(param);
        self.inputs.push((name.clone(), ty));
        name
    }

    /// The latest earlier result field named like `param` (`coords.latitude`).
    fn result_field(&self, param: &str) -> Option<String> {
        let np = normalized(param);
        self.tool_steps
            .iter()
            .rev()
            .find_map(|(name, t)| t.result_fields().into_iter().find(|f| normalized(f) == np).map(|f| format!("{name}.{f}")))
    }

    /// The value of a required argument the plan left out.
    fn fill(&mut self, tool: &CatalogTool, param: &str, ty: &Ty, gates: &Gates) -> String {
        let same_kit = |t: &CatalogTool| t.name.rsplit_once('.').map(|p| p.0) == tool.name.rsplit_once('.').map(|p| p.0);
        let np = normalized(param);
        if let Some(v) = self.result_field(param) {
            return v;
        }
        if tool.takes_id(param) {
            // The earlier step of the toolkit whose result best answers it
            // (a field that lists ids: its first), else the latest one.
            let kin: Vec<&(String, &CatalogTool)> = self.tool_steps.iter().filter(|(_, t)| same_kit(t)).collect();
            // `max_by_key` keeps the last of equals: the latest step.
            let best = kin.iter().filter_map(|(name, t)| t.produces(tool, param).map(|(f, score)| (name, *t, f, score))).max_by_key(|c| c.3);
            if let Some((name, t, field, _)) = best {
                let listed = t.result_field_docs().iter().any(|(f, d)| *f == field && d.to_ascii_lowercase().starts_with("list"));
                return format!("{name}.{field}{}", if listed { "[0]" } else { "" });
            }
            if let Some((name, _)) = kin.last().copied().or(self.tool_steps.last()) {
                return name.clone();
            }
        }
        if TEXT_PARAMS.contains(&np.as_str()) && matches!(ty, Ty::Str | Ty::Json) && !self.tool_steps.is_empty() {
            let sources: Vec<String> = self.tool_steps.iter().map(|(n, _)| format!("{{{n}}}")).collect();
            let name = self.fresh(&format!("{param}_text"));
            let prompt = format!(
                "Write the {param} of `{}` for this request: {}\n\nUse these results:\n",
                tool.name, self.setting.intent
            );
            let writer = self.writer.clone();
            let mut attrs = vec!["max_tokens: 600".to_string()];
            if let Some(n) = gates.max_input.get(&name) {
                attrs.push(format!("max_input_tokens: {n}"));
            }
            if let Some(role) = gates.verify.get(&name) {
                attrs.push(format!("verify: {role}"));
            }
            let mut lit = quote(&prompt);
            lit.pop();
            lit.push_str(&sources.join("\\n"));
            lit.push('"');
            self.body.push(format!("step {name}: String = llm {writer}({lit}) {{ {} }}", attrs.join(", ")));
            self.steps.push(LoweredStep { name: name.clone(), does: format!("llm {writer}") });
            return name;
        }
        self.input(param, ty)
    }
}

fn kit_of(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(k, _)| k)
}

/// True when toolkit `kit` has `create…` and `save…` methods (slides,
/// documents: calls on one open file, whose order matters without data).
fn is_file_kit(catalog: &[CatalogTool], kit: &str) -> bool {
    let has = |prefix: &str| {
        catalog.iter().any(|t| t.name.rsplit_once('.').is_some_and(|(k, m)| k == kit && m.starts_with(prefix)))
    };
    has("create") && has("save")
}

/// Lowers a plan to `.aos` source.
pub fn lower(plan: &Plan, setting: &Setting<'_>, gates: &Gates) -> Lowered {
    let writer = setting.writer_role.unwrap_or("executor").to_string();
    let mut b = Builder {
        setting,
        body: Vec::new(),
        tool_steps: Vec::new(),
        plan_names: Vec::new(),
        used_names: BTreeSet::new(),
        referenced: BTreeSet::new(),
        inputs: Vec::new(),
        steps: Vec::new(),
        writer,
    };
    for step in &plan.steps {
        let tool = setting.catalog.iter().find(|t| t.name == step.tool);
        let base = step.tool.rsplit('.').next().unwrap_or("call").trim_start_matches("get_");
        let name = b.fresh(base);
        let mut args: Vec<String> = Vec::new();
        let mut given: BTreeSet<&str> = BTreeSet::new();
        for arg in &step.args {
            if !given.insert(arg.name.as_str()) {
                continue;
            }
            let ty = tool.and_then(|t| t.params.iter().find(|p| p.name == arg.name)).map(|p| p.ty.clone());
            let expr = match reference(&arg.value, &b.plan_names) {
                Some(r) => r,
                None => literal(&arg.value, ty.as_ref().unwrap_or(&Ty::Str)),
            };
            // An argument the tool does not have is kept: the checker names
            // it and the model corrects it.
            args.push(format!("{}: {expr}", arg.name));
        }
        if let Some(tool) = tool {
            for p in &tool.params {
                if given.contains(p.name.as_str()) {
                    continue;
                }
                if p.optional() {
                    // An earlier result that has the field is what it asks
                    // for (the coordinates a nearby search may take).
                    if let Some(v) = b.result_field(&p.name) {
                        args.push(format!("{}: {v}", p.name));
                    }
                    continue;
                }
                let v = b.fill(tool, &p.name, &p.ty, gates);
                args.push(format!("{}: {v}", p.name));
            }
        }
        for a in &args {
            if let Some((_, expr)) = a.split_once(": ") {
                let head: String = expr.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                b.referenced.insert(head);
            }
        }
        let mut attrs: Vec<String> = Vec::new();
        // A toolkit that works on one open file (it has `create…` and
        // `save…` methods) is called in plan order.
        if let Some(tool) = tool
            && let Some(prev) = b.tool_steps.iter().rev().find(|(_, t)| kit_of(&t.name) == kit_of(&tool.name)).map(|(n, _)| n.clone())
            && is_file_kit(setting.catalog, kit_of(&tool.name))
            && !args.iter().any(|a| a.split_once(": ").is_some_and(|(_, e)| e == prev || e.starts_with(&format!("{prev}."))))
        {
            attrs.push(format!("after: [{prev}]"));
        }
        if let Some(group) = gates.approval.get(&name) {
            attrs.push(format!("approval: {}", quote(group)));
        }
        if gates.idempotency.contains(&name) {
            let parts: Vec<String> = args
                .iter()
                .filter_map(|a| a.split_once(": ").map(|(_, e)| e))
                .filter(|e| !e.starts_with('"') && !e.starts_with('['))
                .map(|e| format!("{{{e}}}"))
                .collect();
            attrs.push(format!("idempotency_key: \"{}/{name}/{}\"", workflow_name(setting.intent), parts.join("/")));
        }
        let attr_text = if attrs.is_empty() { String::new() } else { format!(" {{ {} }}", attrs.join(", ")) };
        b.body.push(format!("step {name} = {}({}){attr_text}", step.tool, args.join(", ")));
        b.steps.push(LoweredStep { name: name.clone(), does: step.tool.clone() });
        b.plan_names.push(name.clone());
        if let Some(tool) = tool {
            b.tool_steps.push((name, tool));
        }
    }
    // Compose-step bodies reference tool steps too.
    for line in &b.body {
        for (n, _) in &b.tool_steps {
            if line.contains(&format!("{{{n}}}")) {
                b.referenced.insert(n.clone());
            }
        }
    }

    let wf = workflow_name(setting.intent);
    let mut out = String::new();
    out.push_str(&format!("// Generated by `aosc new` from: {}\n", setting.intent.replace('\n', " ")));
    for u in setting.uses {
        out.push_str(&format!("use {}\n", quote(u)));
    }
    let mut std_mods: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|s| setting.catalog.iter().find(|t| t.name == s.tool))
        .filter_map(|t| t.std_module.as_deref())
        .collect();
    std_mods.sort_unstable();
    std_mods.dedup();
    for m in std_mods {
        out.push_str(&format!("use std.{m}\n"));
    }
    let has_llm = b.steps.iter().any(|s| s.does.starts_with("llm "));
    if setting.writer_role.is_none() && has_llm {
        out.push_str("\nmodel aos_new_sim = sim(\"echo\") { input: $0.10/M, output: $0.40/M, context: 128000 }\n");
        out.push_str("role executor = [aos_new_sim]\n");
    }
    let params: Vec<String> = b.inputs.iter().map(|(n, t)| format!("{n}: {t}")).collect();
    out.push_str(&format!("\nworkflow {wf}({}) {{\n", params.join(", ")));
    out.push_str(&format!("  intent: {}\n", quote(setting.intent)));
    let budget = gates.budget_usd.unwrap_or(PLACEHOLDER_BUDGET);
    out.push_str(&format!("  budget: ${budget:.2}\n\n"));
    for line in &b.body {
        out.push_str(&format!("  {line}\n"));
    }
    let leaves: Vec<&LoweredStep> = b.steps.iter().filter(|s| !b.referenced.contains(&s.name)).collect();
    match leaves.as_slice() {
        [] => {}
        [one] => out.push_str(&format!("\n  return {}\n", one.name)),
        many => {
            let fields: Vec<String> = many.iter().map(|s| format!("{0}: {0}", s.name)).collect();
            out.push_str(&format!("\n  return {{ {} }}\n", fields.join(", ")));
        }
    }
    out.push_str("}\n");
    Lowered { text: out, workflow: wf, steps: b.steps, inputs: b.inputs.into_iter().map(|(n, _)| n).collect() }
}

#[cfg(test)]
mod tests;
