//! "Did you mean …?": the nearest known name to a misspelt one.

/// The edit distance between two names, counted in characters: insertions,
/// deletions, substitutions and swaps of two neighbours (`hihg` → `high`)
/// each cost one.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    let at = |i: usize, j: usize| i * w + j;
    for i in 0..=a.len() {
        if let Some(c) = d.get_mut(at(i, 0)) {
            *c = i;
        }
    }
    for j in 0..=b.len() {
        if let Some(c) = d.get_mut(at(0, j)) {
            *c = j;
        }
    }
    let get = |d: &Vec<usize>, i: usize, j: usize| d.get(at(i, j)).copied().unwrap_or(usize::MAX / 2);
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let (ca, cb) = (a.get(i - 1), b.get(j - 1));
            let cost = usize::from(ca != cb);
            let mut v = (get(&d, i - 1, j) + 1).min(get(&d, i, j - 1) + 1).min(get(&d, i - 1, j - 1) + cost);
            if i > 1 && j > 1 && ca == b.get(j - 2) && a.get(i - 2) == cb {
                v = v.min(get(&d, i - 2, j - 2) + 1);
            }
            if let Some(c) = d.get_mut(at(i, j)) {
                *c = v;
            }
        }
    }
    get(&d, a.len(), b.len())
}

/// The candidate closest to `name`, if it is close enough to be a typo:
/// at most one edit for short names, a third of the length for longer ones.
/// Ties go to the first candidate, so callers pass candidates in a stable
/// order.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        if c == name {
            continue;
        }
        let d = edit_distance(&name.to_lowercase(), &c.to_lowercase());
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// "did you mean `x`?" for the closest candidate, if any.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("topic", "topc"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("hihg", "high"), 1);
        assert_eq!(edit_distance("Flaot", "Float"), 1);
    }

    #[test]
    fn suggests_only_near_misses() {
        assert_eq!(closest("topc", ["name", "topic"]), Some("topic"));
        assert_eq!(closest("sendd", ["send", "sent"]), Some("send"));
        assert_eq!(closest("x", ["planner", "executor"]), None);
        assert_eq!(closest("critic", ["executor", "verifier"]), None);
    }
}
