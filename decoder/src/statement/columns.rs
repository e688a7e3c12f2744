//! What an ALTER TABLE does to columns, when that is all it does: the
//! columns it adds and drops, by name. A consumer can then apply it to the
//! rows it holds (see `crate::definition::held_rows`) instead of reading
//! the table anew.

use super::tokens::{tokenize, Tok, Token};
use super::{clauses, StatementKind, TableStatement};

/// The columns an ALTER TABLE adds, drops and renames, in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ColumnEdits {
    pub added: Vec<String>,
    pub dropped: Vec<String>,
    /// `(old, new)`: RENAME COLUMN, CHANGE (and MODIFY, as `(c, c)`): the
    /// definitions then say whether anything but the name changed.
    pub renamed: Vec<(String, String)>,
}

/// `Some` when every clause of `sql` (an ALTER TABLE classified as `st`)
/// adds one column, drops one, renames, changes or modifies one, adds or
/// drops an index, or only says how the server runs it; `None` for
/// anything else (a key, a partition, a table rename, a column list in
/// parentheses).
pub(crate) fn column_edits(sql: &[u8], st: &TableStatement) -> Option<ColumnEdits> {
    let (_, name_end) = st.name_span?;
    if st.kind != StatementKind::Alter {
        return None;
    }
    let toks = tokenize(sql);
    if word(&toks, 0) != "ALTER" {
        return None; // CREATE/DROP INDEX: no column
    }
    let start = toks.iter().position(|t| t.start >= name_end)?;
    let mut edits = ColumnEdits::default();
    for c in clauses(&toks[start..]) {
        match word(c, 0) {
            "ALGORITHM" | "LOCK" => {}
            "ADD" => {
                if let Some(name) =
                    edit_target(c, &["INDEX", "KEY", "UNIQUE", "FULLTEXT", "SPATIAL"])?
                {
                    edits.added.push(name);
                }
            }
            "DROP" => {
                if let Some(name) = edit_target(c, &["INDEX", "KEY"])? {
                    edits.dropped.push(name);
                }
            }
            // RENAME COLUMN old TO new
            "RENAME" if word(c, 1) == "COLUMN" && word(c, 3) == "TO" => {
                edits.renamed.push((name(c, 2)?, name(c, 4)?));
            }
            // CHANGE [COLUMN] old new definition, MODIFY [COLUMN] c definition
            "CHANGE" | "MODIFY" => {
                let at = if word(c, 1) == "COLUMN" { 2 } else { 1 };
                let old = name(c, at)?;
                let new = if word(c, 0) == "CHANGE" {
                    name(c, at + 1)?
                } else {
                    old.clone()
                };
                edits.renamed.push((old, new));
            }
            _ => return None,
        }
    }
    Some(edits)
}

/// After ADD or DROP: `Some(Some(column))`, `Some(None)` for an index (one
/// of `indexes`), `None` for anything else.
fn edit_target(c: &[Token], indexes: &[&str]) -> Option<Option<String>> {
    let mut i = 1;
    if indexes.contains(&word(c, i)) {
        return Some(None);
    }
    let column = word(c, i) == "COLUMN";
    if column {
        i += 1;
    }
    // MariaDB's IF [NOT] EXISTS.
    if word(c, i) == "IF" {
        i += if word(c, i + 1) == "NOT" { 3 } else { 2 };
    }
    if !column
        && matches!(
            word(c, i),
            "PRIMARY" | "CONSTRAINT" | "FOREIGN" | "CHECK" | "PARTITION" | "PERIOD" | "SYSTEM"
        )
    {
        return None;
    }
    match c.get(i).map(|t| &t.tok) {
        Some(Tok::Word { raw, .. }) => Some(Some(raw.clone())),
        Some(Tok::Quoted(name)) => Some(Some(name.clone())),
        _ => None, // `ADD COLUMN (a INT, b INT)`, or nothing
    }
}

fn name(c: &[Token], i: usize) -> Option<String> {
    match c.get(i).map(|t| &t.tok)? {
        Tok::Word { raw, .. } => Some(raw.clone()),
        Tok::Quoted(name) => Some(name.clone()),
        _ => None,
    }
}

fn word(c: &[Token], i: usize) -> &str {
    match c.get(i).map(|t| &t.tok) {
        Some(Tok::Word { upper, .. }) => upper,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::{classify, Classified};

    fn edits(sql: &str) -> Option<ColumnEdits> {
        let Classified::Table(st) = classify(sql.as_bytes(), "d") else {
            panic!("{sql}");
        };
        column_edits(sql.as_bytes(), &st)
    }

    fn added_dropped(added: &[&str], dropped: &[&str]) -> Option<ColumnEdits> {
        Some(ColumnEdits {
            added: added.iter().map(|s| s.to_string()).collect(),
            dropped: dropped.iter().map(|s| s.to_string()).collect(),
            renamed: Vec::new(),
        })
    }

    #[test]
    fn adds_and_drops_of_columns_and_indexes_only() {
        assert_eq!(
            edits("ALTER TABLE t ADD COLUMN w INT NOT NULL DEFAULT 7, ADD `x y` TEXT, ALGORITHM=INSTANT"),
            added_dropped(&["w", "x y"], &[])
        );
        assert_eq!(
            edits("ALTER TABLE t DROP COLUMN a, DROP b, ADD INDEX i (c), DROP KEY k"),
            added_dropped(&[], &["a", "b"])
        );
        assert_eq!(
            edits("ALTER TABLE t ADD COLUMN IF NOT EXISTS c INT, DROP COLUMN IF EXISTS d"),
            added_dropped(&["c"], &["d"])
        );
        let renamed = |pairs: &[(&str, &str)]| {
            Some(ColumnEdits {
                renamed: pairs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                ..Default::default()
            })
        };
        assert_eq!(
            edits("ALTER TABLE t CHANGE v vv INT"),
            renamed(&[("v", "vv")])
        );
        assert_eq!(
            edits("ALTER TABLE t RENAME COLUMN a TO `b`, MODIFY COLUMN c BIGINT"),
            renamed(&[("a", "b"), ("c", "c")])
        );
        for sql in [
            "ALTER TABLE t ADD PRIMARY KEY (a)",
            "ALTER TABLE t DROP PRIMARY KEY",
            "ALTER TABLE t ADD COLUMN (a INT, b INT)",
            "ALTER TABLE t ADD c INT, RENAME TO u",
            "ALTER TABLE t DROP PARTITION p0",
            "CREATE INDEX i ON t (a)",
        ] {
            assert_eq!(edits(sql), None, "{sql}");
        }
    }
}
