//! A column rule: what happens to a column's values (see the table in
//! [`crate::column_rules`]), parsed from and printed as its text.

/// What happens to a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Exclude,
    Hash,
    /// `None`: as many `*` as the value has characters.
    Mask(Option<usize>),
    Truncate(usize),
}

impl std::str::FromStr for Rule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let arg = |name: &str| -> Option<Result<usize, String>> {
            let inner = s.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')?;
            Some(
                inner
                    .trim()
                    .parse()
                    .map_err(|_| format!("{s:?}: {name}(N) takes a number of characters")),
            )
        };
        match s {
            "exclude" => Ok(Rule::Exclude),
            "hash" => Ok(Rule::Hash),
            "mask" => Ok(Rule::Mask(None)),
            _ => match (arg("mask"), arg("truncate")) {
                (Some(n), _) => Ok(Rule::Mask(Some(n?))),
                (_, Some(n)) => Ok(Rule::Truncate(n?)),
                _ => Err(format!(
                    "unknown column rule {s:?}: expected exclude, hash, mask, mask(N) or truncate(N)"
                )),
            },
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Exclude => f.write_str("exclude"),
            Rule::Hash => f.write_str("hash"),
            Rule::Mask(None) => f.write_str("mask"),
            Rule::Mask(Some(n)) => write!(f, "mask({n})"),
            Rule::Truncate(n) => write!(f, "truncate({n})"),
        }
    }
}
