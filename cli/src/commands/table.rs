//! Plain-text tables for the terminal: each column as wide as its widest
//! cell (counted in characters), two spaces between columns, numbers
//! right-aligned. Used by `aosc show` and `aosc models`.

/// How a column's cells are aligned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Renders `header` and `rows` (each as long as `header`); trailing spaces
/// are trimmed from every line.
pub fn render(header: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let width = |i: usize| {
        let head = header.get(i).map_or(0, |h| h.0.chars().count());
        rows.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0).max(head)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let heads: Vec<String> = header.iter().map(|h| h.0.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&heads).chain(rows) {
        let mut line = String::new();
        for (i, (w, (_, align))) in widths.iter().zip(header).enumerate() {
            let cell = row.get(i).map_or("", String::as_str);
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            if i > 0 {
                line.push_str("  ");
            }
            match align {
                Align::Left => {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell_in_characters() {
        let t = render(
            &[("NAME", Align::Left), ("N", Align::Right)],
            &[vec!["café".into(), "1".into()], vec!["a-much-longer-name".into(), "12345".into()]],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "NAME                    N");
        assert_eq!(lines[1], "café                    1");
        assert_eq!(lines[2], "a-much-longer-name  12345");
    }
}
