//! Token counts that are sound upper bounds of a model's tokenizer.
//!
//! The cost bound of §4 is only a bound if no prompt can hold more tokens
//! than we counted. For OpenAI models whose tokenizer is public we count with
//! the real BPE (tiktoken); for every other model we count UTF-8 bytes, which
//! is never smaller than the number of tokens of a byte-level BPE (every
//! token covers at least one byte).

use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

use crate::ir;

/// How the text of a model is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tokenizer {
    /// `o200k_base`: gpt-4o, gpt-4.1, gpt-5, the o-series.
    O200k,
    /// `cl100k_base`: gpt-4, gpt-3.5-turbo.
    Cl100k,
    /// The UTF-8 byte length: any model whose tokenizer we do not know.
    Bytes,
}

impl Tokenizer {
    /// A short name for tables and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Tokenizer::O200k => "o200k_base",
            Tokenizer::Cl100k => "cl100k_base",
            Tokenizer::Bytes => "UTF-8 bytes",
        }
    }
}

/// The tokenizer that bounds `model`'s token counts.
///
/// Only the `openai` provider talking to OpenAI's own models gets a BPE:
/// an OpenAI-compatible local server (`llama3.1` behind `base_url`) has its
/// own tokenizer, so its ids fall through to bytes.
pub fn tokenizer(model: &ir::Model) -> Tokenizer {
    if model.provider != ir::Provider::Openai {
        return Tokenizer::Bytes;
    }
    tokenizer_for_openai_id(&model.model_id)
}

/// The tokenizer of an OpenAI model id (`gpt-4o-mini`, `o3`, `gpt-4-turbo`).
pub fn tokenizer_for_openai_id(id: &str) -> Tokenizer {
    let id = id.trim().to_ascii_lowercase();
    // Fine-tuned models are `ft:BASE:org::id`.
    let id = id.strip_prefix("ft:").unwrap_or(&id);
    let o200k = ["gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "chatgpt-4o", "o1", "o3", "o4"];
    if o200k.iter().any(|p| id.starts_with(p)) {
        return Tokenizer::O200k;
    }
    let cl100k = ["gpt-4", "gpt-3.5", "gpt-35", "text-embedding-3", "text-embedding-ada-002"];
    if cl100k.iter().any(|p| id.starts_with(p)) {
        return Tokenizer::Cl100k;
    }
    Tokenizer::Bytes
}

/// A sound upper bound of the number of tokens `model` sees for `text`.
pub fn count(model: &ir::Model, text: &str) -> u64 {
    count_with(tokenizer(model), text)
}

/// [`count`] for a tokenizer already chosen.
pub fn count_with(tokenizer: Tokenizer, text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    let bpe = match tokenizer {
        Tokenizer::O200k => o200k(),
        Tokenizer::Cl100k => cl100k(),
        Tokenizer::Bytes => None,
    };
    match bpe {
        // A BPE that failed to load (it is embedded, so this should not
        // happen) falls back to bytes, which is still an upper bound.
        // Prompts are sent as plain text: special-token markers in them are
        // ordinary characters, which never encode to fewer tokens.
        Some(bpe) => u64::try_from(bpe.count_ordinary(text)).unwrap_or(u64::MAX),
        None => bytes(text),
    }
}

/// The number of tokens of pieces of text counted one by one and then put
/// side by side: a BPE may merge across a boundary or split differently
/// there, so each boundary may cost one more token than the parts did.
pub fn count_pieces(tokenizer: Tokenizer, pieces: &[&str]) -> u64 {
    let sum: u64 = pieces.iter().map(|p| count_with(tokenizer, p)).fold(0, u64::saturating_add);
    sum.saturating_add(boundaries(pieces.len()))
}

/// The allowance for `parts` separately counted parts of one text.
pub fn boundaries(parts: usize) -> u64 {
    u64::try_from(parts.saturating_sub(1)).unwrap_or(u64::MAX)
}

fn bytes(text: &str) -> u64 {
    u64::try_from(text.len()).unwrap_or(u64::MAX)
}

fn o200k() -> Option<&'static CoreBPE> {
    static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().ok()).as_ref()
}

fn cl100k() -> Option<&'static CoreBPE> {
    static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().ok()).as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(provider: ir::Provider, id: &str) -> ir::Model {
        ir::Model {
            name: "m".into(),
            provider,
            model_id: id.into(),
            input_per_m: 0.0,
            output_per_m: 0.0,
            context: 1000,
            base_url: None,
            structured: ir::Structured::default(),
            sim: ir::SimOptions::default(),
        }
    }

    #[test]
    fn openai_ids_map_to_their_bpe() {
        assert_eq!(tokenizer_for_openai_id("gpt-4o"), Tokenizer::O200k);
        assert_eq!(tokenizer_for_openai_id("gpt-4o-mini"), Tokenizer::O200k);
        assert_eq!(tokenizer_for_openai_id("o3-mini"), Tokenizer::O200k);
        assert_eq!(tokenizer_for_openai_id("gpt-5"), Tokenizer::O200k);
        assert_eq!(tokenizer_for_openai_id("gpt-4-turbo"), Tokenizer::Cl100k);
        assert_eq!(tokenizer_for_openai_id("gpt-3.5-turbo"), Tokenizer::Cl100k);
        assert_eq!(tokenizer_for_openai_id("llama3.1"), Tokenizer::Bytes);
        assert_eq!(tokenizer(&model(ir::Provider::Anthropic, "gpt-4o")), Tokenizer::Bytes);
    }

    #[test]
    fn bpe_counts_are_below_bytes() {
        let text = "Summarize these weekly sales for EMEA in five bullet points.";
        let o = count(&model(ir::Provider::Openai, "gpt-4o"), text);
        let c = count(&model(ir::Provider::Openai, "gpt-4"), text);
        let b = count(&model(ir::Provider::Sim, "echo"), text);
        assert_eq!(b, text.len() as u64);
        assert!(o > 5 && o < 20, "o200k count {o}");
        assert!(c > 5 && c < 20, "cl100k count {c}");
    }

    #[test]
    fn pieces_add_one_per_boundary() {
        assert_eq!(count_pieces(Tokenizer::Bytes, &["ab", "cde", ""]), 2 + 3 + 2);
        assert_eq!(count_with(Tokenizer::O200k, ""), 0);
    }

    #[test]
    fn special_token_text_is_counted() {
        let n = count_with(Tokenizer::Cl100k, "<|endoftext|>");
        assert!(n >= 1);
    }
}
