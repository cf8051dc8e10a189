//! Commands printed for the user to paste: each word quoted for a POSIX shell where it needs it.

/// `word` as a shell reads it back: as it is when it holds only safe characters, else in single
/// quotes (a quote inside written `'\''`).
pub fn quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn words_are_quoted_only_where_needed() {
        assert_eq!(super::quote("sweeps/r-loss"), "sweeps/r-loss");
        assert_eq!(super::quote("my sweep.toml"), "'my sweep.toml'");
        assert_eq!(super::quote("it's"), "'it'\\''s'");
        assert_eq!(super::quote(""), "''");
    }
}
