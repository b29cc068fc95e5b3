//! Streamed answers on stderr (`aosc run --stream`, or a run on a
//! terminal): the text of each LLM answer as it arrives, read from the
//! event bus. Deltas are never journaled: the journal, `aosc show` and the
//! §6a report keep the final reply only.

use std::io::Write;

use aos_runtime::fabric::stream::Delta;

/// The last `n` characters of `text`, on one line.
pub fn tail(text: &str, n: usize) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let count = flat.chars().count();
    if count <= n {
        return flat;
    }
    format!("…{}", flat.chars().skip(count - n).collect::<String>())
}

/// Prints a delta as plain text; a header line starts each call's text
/// (and a reply that starts again, at offset 0). `current` is the call
/// being printed (a newline ends it).
pub fn print_delta(current: &mut Option<String>, d: &Delta) {
    let mut err = std::io::stderr().lock();
    let key = d.call_key();
    if current.as_deref() != Some(key.as_str()) || d.offset == 0 {
        if current.is_some() {
            let _ = writeln!(err);
        }
        let item = d.item.map(|i| format!(" item {i}")).unwrap_or_default();
        let _ = write!(err, "[{}{item} · {}] ", d.step, d.model);
        *current = Some(key);
    }
    let _ = err.write_all(d.text.as_bytes());
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails() {
        assert_eq!(tail("short\nline", 40), "short line");
        assert_eq!(tail("abcdefghij", 4), "…ghij");
    }
}
