//! Include and exclude tables by `schema.table` patterns, where `*` matches
//! any run of characters (dots included): `shop.*`, `*.audit_*`, `shop.orders`.
//!
//! A table is kept when it matches some include pattern (or there are none)
//! and no exclude pattern. Matching is case-sensitive, like table names on
//! Linux servers. The snapshot's own schema ([`SIGNAL_SCHEMA`]) is never kept.

/// binlog-cdc's own schema on the server (the snapshot's watermarks): its
/// writes are never change events.
pub const SIGNAL_SCHEMA: &str = "binlog_cdc";

#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    include: Vec<String>,
    exclude: Vec<String>,
    /// Keeps [`SIGNAL_SCHEMA`] too (only a snapshot's own reads, which look
    /// for their watermarks).
    keep_signal: bool,
}

impl TableFilter {
    pub fn new(include: Vec<String>, exclude: Vec<String>) -> Result<Self, String> {
        for p in include.iter().chain(&exclude) {
            if p.is_empty() {
                return Err(
                    "an empty table pattern matches nothing; use '*' for every table".into(),
                );
            }
        }
        Ok(Self {
            include,
            exclude,
            keep_signal: false,
        })
    }

    /// The same filter, keeping binlog-cdc's own schema when it matches.
    pub(crate) fn with_signal(mut self) -> Self {
        self.keep_signal = true;
        self
    }

    /// Whether `schema.table` passes the filter.
    pub fn keeps(&self, schema: &str, table: &str) -> bool {
        if schema == SIGNAL_SCHEMA && !self.keep_signal {
            return false;
        }
        let name = format!("{schema}.{table}");
        (self.include.is_empty() || self.include.iter().any(|p| glob(p, &name)))
            && !self.exclude.iter().any(|p| glob(p, &name))
    }

    /// Whether the filter keeps some table of `schema` (for statements about
    /// a whole schema, such as DROP DATABASE): an include pattern matches
    /// some `schema.name`. Exclude patterns are not consulted: they may
    /// leave other tables of the schema kept.
    pub fn keeps_some_table_of(&self, schema: &str) -> bool {
        if schema == SIGNAL_SCHEMA && !self.keep_signal {
            return false;
        }
        let prefix = format!("{schema}.");
        self.include.is_empty()
            || self
                .include
                .iter()
                .any(|p| matches_some_name_under(p, &prefix))
    }
}

/// Whether `pattern` matches some text that starts with `prefix`: a
/// prefix of the pattern matches `prefix` (any star in it may end past it).
pub(crate) fn matches_some_name_under(pattern: &str, prefix: &str) -> bool {
    (0..=pattern.len()).any(|k| pattern.is_char_boundary(k) && glob(&pattern[..k], prefix))
}

/// `*`-only glob matching, iterative with backtracking to the last star.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("shop.*", "shop.orders"));
        assert!(!glob("shop.*", "shopx.orders"));
        assert!(glob("*.audit_*", "a.audit_log"));
        assert!(glob("*", "a.b"));
        assert!(glob("s*p.o*s", "shop.orders"));
        assert!(!glob("shop.orders", "shop.orders2"));
    }

    #[test]
    fn include_then_exclude() {
        let f = TableFilter::new(vec!["shop.*".into()], vec!["shop.tmp_*".into()]).unwrap();
        assert!(f.keeps("shop", "orders"));
        assert!(!f.keeps("shop", "tmp_x"));
        assert!(!f.keeps("other", "orders"));
        assert!(TableFilter::default().keeps("a", "b"));
        assert!(!TableFilter::default().keeps(SIGNAL_SCHEMA, "snapshot_signal"));
        assert!(TableFilter::new(vec!["".into()], vec![]).is_err());
    }

    #[test]
    fn a_schema_is_kept_when_some_table_of_it_can_be() {
        let f = |p: &str| TableFilter::new(vec![p.into()], vec![]).unwrap();
        assert!(f("shop.orders").keeps_some_table_of("shop"));
        assert!(f("sho*").keeps_some_table_of("shop"));
        assert!(f("*.audit_*").keeps_some_table_of("crm"));
        assert!(!f("shopx.*").keeps_some_table_of("shop"));
        assert!(!f("shop").keeps_some_table_of("shop"));
        assert!(TableFilter::default().keeps_some_table_of("any"));
        assert!(!TableFilter::default().keeps_some_table_of(SIGNAL_SCHEMA));
    }
}
