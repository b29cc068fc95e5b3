//! Token counting by the checker's rule: a sound upper bound for any
//! tokenizer is the UTF-8 byte length (LANGUAGE.md §4, "Cost"). When the
//! checker exposes its own counter, this delegates to it.

/// Tokens of `text`, by the same rule the checker uses for cost bounds.
pub fn count(text: &str) -> u64 {
    text.len() as u64
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
