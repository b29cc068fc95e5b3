//! The cost of the text a tool embeds (`embeds: [key, value]`, as
//! `memory.remember` and `memory.recall` declare): the runtime embeds it with
//! the program's `embedding` role, one successful call per tool call.

use super::*;

/// The role whose models embed memory text (the runtime's `fabric::embed`).
pub const EMBEDDING_ROLE: &str = "embedding";

/// What one call of a tool costs in embeddings.
pub(super) struct EmbedCost {
    /// The cost of one call; `None` when the embedded text has no bound.
    pub usd: Option<Usd>,
    /// How the figure was reached (empty when the tool embeds nothing).
    pub line: Option<String>,
}

impl<'a> Analyzer<'_, 'a> {
    /// The embedding cost of one call of `tool` with `args`. The runtime
    /// embeds the declared parameters joined by one space (`"{key} {value}"`,
    /// a non-string value as JSON); a call that fails on one model of the
    /// role and falls back is billed only where it succeeds, so the bound is
    /// the text's tokens at the dearest `input:` price of the role.
    pub(super) fn embed_cost(&mut self, scope: &Scope<'a>, var: Var<'_>, tool: &'a ast::ToolDecl, args: &'a [ast::Arg]) -> EmbedCost {
        let names = Block(Env::entries(&tool.attrs)).names("embeds");
        if names.is_empty() {
            return EmbedCost { usd: Some(Usd::ZERO), line: None };
        }
        let chain = self.chain(EMBEDDING_ROLE);
        let listed = names.iter().map(|n| format!("`{}`", n.name)).collect::<Vec<_>>().join(", ");
        let Some(model) = chain.iter().copied().max_by(|a, b| a.input_per_m.total_cmp(&b.input_per_m)) else {
            return EmbedCost {
                usd: Some(Usd::ZERO),
                line: Some(format!("embeds {listed}: no `{EMBEDDING_ROLE}` role, the built-in embedding costs nothing")),
            };
        };
        // One separator between the embedded texts.
        let mut total = Some(u64::try_from(names.len()).unwrap_or(u64::MAX).saturating_sub(1));
        for name in &names {
            let n = match argument(args, &name.name) {
                Some(e) => self.value(scope, var, e).tokens,
                None => Some(0),
            };
            total = total.zip(n).map(|(a, b)| a.saturating_add(b));
        }
        let dearest = if chain.len() > 1 { format!(" (the dearest of `{EMBEDDING_ROLE}`)") } else { String::new() };
        match total {
            Some(t) => {
                let usd = Usd::of_tokens(t, model.input_per_m);
                EmbedCost {
                    usd: Some(usd),
                    line: Some(format!(
                        "embeds {listed}: ≤ {t} tokens (UTF-8 bytes) × {} on `{}`{dearest} = {usd} per call",
                        fmt_price(model.input_per_m),
                        model.name
                    )),
                }
            }
            None => EmbedCost { usd: None, line: Some(format!("embeds {listed}: the text has no size bound")) },
        }
    }
}

/// The argument a call passes for parameter `name` (a tool's arguments are
/// named, E0202).
fn argument<'a>(args: &'a [ast::Arg], name: &str) -> Option<&'a ast::Expr> {
    args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == name)).map(|a| &a.value)
}
