//! Purpose: "did you mean": the candidate closest to a mistyped word, for errors in the config and in requests.

/// The candidate closest to `input`, if it is close enough to be a plausible typo.
pub(crate) fn suggest<'a>(
    input: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    if input.len() > 128 {
        return None;
    }
    let lowered = input.to_lowercase();
    let limit = match input.chars().count() {
        0..=2 => 1,
        3..=5 => 2,
        _ => 3,
    };
    let len = input.chars().count();
    candidates
        .filter(|c| *c != input && c.chars().count().abs_diff(len) <= limit)
        .map(|c| (strsim::damerau_levenshtein(&lowered, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
