//! Models: providers and attributes (E0403), lowered to [`ir::Model`].
//!
//! Prices and the context window feed the cost bound, so a model whose price
//! is missing is an error rather than a silent zero — except for the offline
//! `sim` provider, which costs nothing unless told otherwise.

use std::collections::BTreeMap;

use crate::ast::{self, ExprKind};
use crate::diagnostic::Diagnostic;
use crate::codes::Code;
use crate::ir;
use crate::source::FileId;

use super::env::{Decl, Env};

/// The context window of a `sim` model that does not declare one.
pub const SIM_DEFAULT_CONTEXT: u64 = 1_000_000;

/// The providers of §2, by name.
const PROVIDERS: &[(&str, ir::Provider)] = &[
    ("openai", ir::Provider::Openai),
    ("anthropic", ir::Provider::Anthropic),
    ("gemini", ir::Provider::Gemini),
    ("sim", ir::Provider::Sim),
];

/// Lowers every declared model, reporting E0403 for an unknown provider and
/// for attributes that are missing, malformed or unknown.
///
/// A model with an unknown provider is left out of the result (nothing can
/// run it). A model with a bad attribute is kept with a neutral value in its
/// place (price 0, the largest context), so that later passes do not report
/// the same mistake again.
pub fn lower_models(env: &Env, diags: &mut Vec<Diagnostic>) -> BTreeMap<String, ir::Model> {
    let mut out = BTreeMap::new();
    for (name, decl) in &env.models {
        if let Some(model) = lower_model(name, decl, diags) {
            out.insert(name.clone(), model);
        }
    }
    out
}

fn lower_model(name: &str, decl: &Decl<'_, ast::ModelDecl>, diags: &mut Vec<Diagnostic>) -> Option<ir::Model> {
    let m = decl.decl;
    let file = decl.file;
    let Some(provider) = provider(&m.provider.name) else {
        let mut d = Diagnostic::error(
            Code::E0403,
            file,
            m.provider.span,
            format!("unknown provider `{}` for model `{name}`", m.provider.name),
        )
        .with_primary_label("not a provider");
        let names: Vec<&str> = PROVIDERS.iter().map(|(n, _)| *n).collect();
        d = match did_you_mean(&m.provider.name, &names) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d.with_help(format!("the providers are {}", quoted_list(&names))),
        };
        diags.push(d);
        return None;
    };
    let sim = provider == ir::Provider::Sim;
    let mut lower = Lowering { file, diags, model: name };
    let mut model = ir::Model {
        name: name.to_string(),
        provider,
        model_id: m.model_id.clone(),
        input_per_m: 0.0,
        output_per_m: 0.0,
        context: SIM_DEFAULT_CONTEXT,
        base_url: None,
        structured: ir::Structured::default(),
        sim: ir::SimOptions::default(),
    };
    let entries = Env::entries(&m.attrs);
    let mut seen: Vec<&str> = Vec::new();
    for attr in entries {
        let key = attr.key.name.as_str();
        if seen.contains(&key) {
            // A duplicate key is the resolver's E0102; the first one counts.
            continue;
        }
        seen.push(key);
        match key {
            "input" => model.input_per_m = lower.price(attr).unwrap_or(0.0),
            "output" => model.output_per_m = lower.price(attr).unwrap_or(0.0),
            "context" => model.context = lower.positive_int(attr, "a number of tokens, like `128000`").unwrap_or(u64::MAX),
            "base_url" => model.base_url = lower.string(attr),
            "structured" => model.structured = lower.structured(attr).unwrap_or_default(),
            "latency" => model.sim.latency_ms = lower.duration(attr).unwrap_or(0),
            "fail_first" => model.sim.fail_first = lower.count(attr).unwrap_or(0),
            "malformed_first" => model.sim.malformed_first = lower.count(attr).unwrap_or(0),
            "seed" => model.sim.seed = lower.seed(attr).unwrap_or(0),
            "tool_calls" => model.sim.tool_calls = lower.count(attr),
            "confidence" => model.sim.confidence = lower.confidence(attr),
            // An unknown key is the attribute pass's E0105.
            _ => {}
        }
    }
    if !sim {
        let missing: Vec<&str> = ["input", "output", "context"].into_iter().filter(|k| !seen.contains(k)).collect();
        if !missing.is_empty() {
            let what = quoted_and(&missing);
            let primary = m.attrs.as_ref().map_or(m.name.span, |a| a.span);
            let d = Diagnostic::error(
                Code::E0403,
                file,
                primary,
                format!("model `{name}` has no {what}: the cost bound needs its prices and context window"),
            )
            .with_primary_label(format!("missing {what}"))
            .with_label(file, m.name.span, "model declared here")
            .with_help(format!(
                "add {} (prices are US dollars per million tokens)",
                missing.iter().map(|k| example(k)).collect::<Vec<_>>().join(", ")
            ));
            lower.diags.push(d);
        }
        if !seen.contains(&"context") {
            model.context = u64::MAX;
        }
    }
    Some(model)
}

fn example(key: &str) -> &'static str {
    match key {
        "input" => "`input: $2.50/M`",
        "output" => "`output: $10.00/M`",
        _ => "`context: 128000`",
    }
}

/// The provider named `name`.
pub fn provider(name: &str) -> Option<ir::Provider> {
    PROVIDERS.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// Reads attribute values, reporting a malformed one as E0403.
struct Lowering<'d, 'n> {
    file: FileId,
    diags: &'d mut Vec<Diagnostic>,
    model: &'n str,
}

impl Lowering<'_, '_> {
    fn malformed(&mut self, attr: &ast::Attr, expected: &str) {
        if matches!(attr.value.kind, ExprKind::Error) {
            return; // already a syntax error
        }
        let key = &attr.key.name;
        self.diags.push(
            Diagnostic::error(
                Code::E0403,
                self.file,
                attr.value.span,
                format!("malformed `{key}` of model `{}`: expected {expected}", self.model),
            )
            .with_primary_label(format!("expected {expected}")),
        );
    }

    fn price(&mut self, attr: &ast::Attr) -> Option<f64> {
        match &attr.value.kind {
            ExprKind::Price(m) => Some(m.dollars()),
            ExprKind::Money(m) => {
                let key = &attr.key.name;
                self.diags.push(
                    Diagnostic::error(
                        Code::E0403,
                        self.file,
                        attr.value.span,
                        format!("`{key}` of model `{}` must be a price per million tokens", self.model),
                    )
                    .with_primary_label("an amount, not a price per million tokens")
                    .with_help(format!("write `{key}: ${}/M`", m.text)),
                );
                None
            }
            _ => {
                self.malformed(attr, "a price per million tokens, like `$2.50/M`");
                None
            }
        }
    }

    fn int(attr: &ast::Attr) -> Option<i64> {
        match attr.value.kind {
            ExprKind::Int(n) => Some(n),
            _ => None,
        }
    }

    fn positive_int(&mut self, attr: &ast::Attr, expected: &str) -> Option<u64> {
        match Self::int(attr).and_then(|n| u64::try_from(n).ok()).filter(|n| *n > 0) {
            Some(n) => Some(n),
            None => {
                self.malformed(attr, &format!("a positive whole number, {expected}"));
                None
            }
        }
    }

    fn count(&mut self, attr: &ast::Attr) -> Option<u32> {
        match Self::int(attr).and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                self.malformed(attr, "a whole number of attempts, like `2`");
                None
            }
        }
    }

    fn seed(&mut self, attr: &ast::Attr) -> Option<u64> {
        match Self::int(attr).and_then(|n| u64::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                self.malformed(attr, "a whole number that is not negative, like `42`");
                None
            }
        }
    }

    /// `structured: "json_schema" | "json_object" | "prompt"`.
    fn structured(&mut self, attr: &ast::Attr) -> Option<ir::Structured> {
        if let ExprKind::Str(s) = &attr.value.kind
            && let [ast::StrPart::Text(t)] = s.parts.as_slice()
            && let Some(mode) = ir::Structured::parse(t)
        {
            return Some(mode);
        }
        self.malformed(attr, "one of `\"json_schema\"`, `\"json_object\"` (the schema in the prompt) or `\"prompt\"`");
        None
    }

    fn string(&mut self, attr: &ast::Attr) -> Option<String> {
        if let ExprKind::Str(s) = &attr.value.kind {
            let mut text = String::new();
            let mut plain = true;
            for part in &s.parts {
                match part {
                    ast::StrPart::Text(t) => text.push_str(t),
                    ast::StrPart::Interp(_) => plain = false,
                }
            }
            if plain {
                return Some(text);
            }
        }
        self.malformed(attr, "a URL string without interpolation, like `\"http://127.0.0.1:11434/v1\"`");
        None
    }

    fn duration(&mut self, attr: &ast::Attr) -> Option<u64> {
        match &attr.value.kind {
            ExprKind::Duration(d) => Some(d.as_millis()),
            _ => {
                self.malformed(attr, "a duration, like `250ms`");
                None
            }
        }
    }

    fn confidence(&mut self, attr: &ast::Attr) -> Option<f64> {
        let v = match attr.value.kind {
            ExprKind::Float(f) => Some(f),
            ExprKind::Int(n @ (0 | 1)) => Some(n as f64),
            _ => None,
        };
        match v.filter(|f| (0.0..=1.0).contains(f)) {
            Some(f) => Some(f),
            None => {
                self.malformed(attr, "a number from 0 to 1, like `0.9`");
                None
            }
        }
    }
}

/// The candidate closest to `name`, if it is close enough to be a typo
/// (the one did-you-mean of the compiler, [`super::suggest::closest`]).
pub(crate) fn did_you_mean<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
    super::suggest::closest(name, candidates.iter().copied())
}

fn quoted_list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

fn quoted_and(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [init @ .., last] => format!("{} and `{last}`", quoted_list(init)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_a_suggestion() {
        let names: Vec<&str> = PROVIDERS.iter().map(|(n, _)| *n).collect();
        assert_eq!(did_you_mean("openia", &names), Some("openai"));
        assert_eq!(did_you_mean("antropic", &names), Some("anthropic"));
        assert_eq!(did_you_mean("mistral", &names), None);
    }

    #[test]
    fn lists_read_like_english() {
        assert_eq!(quoted_and(&["input"]), "`input`");
        assert_eq!(quoted_and(&["input", "output", "context"]), "`input`, `output` and `context`");
    }
}
