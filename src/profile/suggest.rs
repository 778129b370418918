//! "Did you mean" hints: the known word closest to a misspelt one.
//!
//! Owns the edit-distance match and the one hint text every profile message
//! uses for a word it does not know (keys, device classes, step kinds,
//! statistics, requirements). It knows no schema and reads no TOML: callers
//! pass the candidates. It must not depend on any other `profile` module, so
//! that every one of them can use it.

/// The closest of `candidates` to `word` (edit distance at most 2 and less
/// than the word's length, case-insensitive), for "did you mean" hints.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let w = word.to_lowercase();
    if w.is_empty() || w.chars().count() > 64 {
        return None;
    }
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = levenshtein(&w, &c.to_lowercase());
        if d <= 2 && d < w.chars().count() && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `" (did you mean `x`?)"` for the closest candidate, or `""` when none is
/// close: the hint put right after the word a message quotes.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    suggest(word, candidates)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &["shots", "interval_ms", "stimulus", "stimulus_ms"];

    #[test]
    fn suggestions() {
        assert_eq!(suggest("shot", KEYS.iter().copied()), Some("shots"));
        assert_eq!(
            suggest("intervall_ms", KEYS.iter().copied()),
            Some("interval_ms")
        );
        assert_eq!(suggest("SHOTS", KEYS.iter().copied()), Some("shots"));
        assert_eq!(suggest("zzz", KEYS.iter().copied()), None);
        // Two edits from a two-letter word is not a suggestion.
        assert_eq!(suggest("ab", ["cd"]), None);
        assert_eq!(suggest("", KEYS.iter().copied()), None);
    }

    #[test]
    fn the_hint_text() {
        assert_eq!(
            did_you_mean("shot", KEYS.iter().copied()),
            " (did you mean `shots`?)"
        );
        assert_eq!(did_you_mean("zzz", KEYS.iter().copied()), "");
    }

    #[test]
    fn distances() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "ab"), 2);
        assert_eq!(levenshtein("µs", "us"), 1);
    }
}
