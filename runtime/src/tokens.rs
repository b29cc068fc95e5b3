//! Token counting by the checker's rules (LANGUAGE.md §4, "Cost"): the
//! model's real tokenizer where one is known, UTF-8 bytes otherwise.

use aos_compiler::ir::Model;

/// Tokens of `text` for no particular model: UTF-8 bytes, an upper bound
/// for every tokenizer (used to fit prompts and bound parameters).
pub fn count(text: &str) -> u64 {
    text.len() as u64
}

/// Tokens of `text` as `model` counts them, exactly as the checker does.
pub fn count_for(model: &Model, text: &str) -> u64 {
    aos_compiler::tokens::count(model, text)
}

/// The longest prefix of `text` (on a char boundary) that fits `max` tokens.
pub fn truncate(text: &str, max: u64) -> &str {
    if count(text) <= max {
        return text;
    }
    let mut end = usize::try_from(max).unwrap_or(usize::MAX).min(text.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}
