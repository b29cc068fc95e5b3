//! Streamed answers on stderr (`aosc run --stream`, or a run on a
//! terminal): the text of each LLM answer as it arrives. Deltas are never
//! journaled: the journal, `aosc show` and the §6a report keep the final
//! reply only.

use std::io::Write;

use aos_runtime::fabric::stream::Delta;

/// The run and the step of a call key (`RUN/STEP[/ITEM]`).
pub fn run_and_step(call_key: &str) -> (&str, &str) {
    let mut parts = call_key.split('/');
    (parts.next().unwrap_or(""), parts.next().unwrap_or(""))
}

/// The last `n` characters of `text`, on one line.
pub fn tail(text: &str, n: usize) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let count = flat.chars().count();
    if count <= n {
        return flat;
    }
    format!("…{}", flat.chars().skip(count - n).collect::<String>())
}

/// Prints a delta as plain text; a header line starts each call's text.
/// `current` is the call being printed (a newline ends it).
pub fn print_delta(current: &mut Option<String>, d: &Delta) {
    let mut err = std::io::stderr().lock();
    if current.as_deref() != Some(d.call_key.as_str()) {
        if current.is_some() {
            let _ = writeln!(err);
        }
        let (_, step) = run_and_step(&d.call_key);
        let item = d.call_key.splitn(3, '/').nth(2).map(|i| format!(" item {i}")).unwrap_or_default();
        let _ = write!(err, "[{step}{item} · {}] ", d.model);
        *current = Some(d.call_key.clone());
    }
    let _ = err.write_all(d.text.as_bytes());
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_tails() {
        assert_eq!(run_and_step("01RUN/summary/3"), ("01RUN", "summary"));
        assert_eq!(run_and_step("01RUN.sub/s"), ("01RUN.sub", "s"));
        assert_eq!(tail("short\nline", 40), "short line");
        assert_eq!(tail("abcdefghij", 4), "…ghij");
    }
}
