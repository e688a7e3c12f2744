//! The SQL that replays a logged table statement on a temporary table, so
//! that the server itself says what the table's definition became (see
//! `crate::definition`).
//!
//! The statement is rewritten to name the temporary table instead of the
//! real one, and what a temporary table cannot take, or that does not change
//! columns and keys, is left out: foreign keys (InnoDB refuses them on
//! temporary tables), partitioning (refused too), `ALGORITHM=`/`LOCK=`
//! clauses, tablespace clauses, a RENAME clause (the tracker renames), and
//! MySQL's `START TRANSACTION` after a `CREATE TABLE ... SELECT`.

use super::tokens::{tokenize, Tok, Token};
use super::{clauses, is_table_rename, StatementKind, TableStatement};

/// What replaying a statement takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplaySql {
    /// The definition stays as it was (TRUNCATE, a partition statement, an
    /// ALTER of partitions or foreign keys only).
    Unchanged,
    /// Run this on the temporary table.
    Run(String),
    /// The statement cannot be replayed; why.
    Cannot(&'static str),
}

/// The replay of `sql` (classified as `st`) on the table named `tmp` (a
/// quoted, qualified name).
pub(crate) fn replay_sql(sql: &[u8], st: &TableStatement, tmp: &str) -> ReplaySql {
    let Some((name_start, name_end)) = st.name_span else {
        return ReplaySql::Cannot("the statement's table name was not found");
    };
    let toks = tokenize(sql);
    let first_word = |w: &str| matches!(toks.first().map(|t| &t.tok), Some(Tok::Word { upper, .. }) if upper == w);
    match st.kind {
        StatementKind::Create | StatementKind::Replace if st.like.is_none() => {
            create_sql(sql, &toks, name_end, tmp)
        }
        // CREATE INDEX ... ON t, DROP INDEX ... ON t: the name swapped.
        StatementKind::Alter if !first_word("ALTER") => {
            let mut out = String::from_utf8_lossy(&sql[..name_start]).into_owned();
            out.push_str(tmp);
            out.push_str(&String::from_utf8_lossy(&sql[name_end..]));
            ReplaySql::Run(out)
        }
        StatementKind::Alter => alter_sql(sql, &toks, name_end, tmp),
        StatementKind::Other => ReplaySql::Cannot("a statement binlog-cdc cannot read"),
        // CREATE TABLE ... LIKE takes its source's definition (the tracker
        // has it); renames, drops and truncations change no column.
        _ => ReplaySql::Unchanged,
    }
}

/// `CREATE TEMPORARY TABLE tmp (columns and keys) options`.
fn create_sql(sql: &[u8], toks: &[Token], name_end: usize, tmp: &str) -> ReplaySql {
    let Some(open) = toks.iter().position(|t| t.start >= name_end) else {
        return ReplaySql::Cannot("CREATE TABLE without a column list");
    };
    if toks[open].tok != Tok::Punct(b'(') {
        return ReplaySql::Cannot("CREATE TABLE without a column list");
    }
    let Some(close) = matching_paren(toks, open) else {
        return ReplaySql::Cannot("CREATE TABLE with unbalanced parentheses");
    };
    let elements: Vec<String> = clauses(&toks[open + 1..close])
        .into_iter()
        .filter(|e| !is_foreign_key(e))
        .map(|e| text(sql, e))
        .collect();
    let rest = &toks[close + 1..];
    let mut cut = sql.len();
    for (i, t) in rest.iter().enumerate() {
        let Tok::Word { upper, .. } = &t.tok else {
            continue;
        };
        match upper.as_str() {
            "PARTITION" | "START" => {
                cut = t.comment.unwrap_or(t.start);
                break;
            }
            "SELECT" | "AS" | "IGNORE" | "REPLACE" if depth_at(rest, i) == 0 => {
                return ReplaySql::Cannot("CREATE TABLE ... SELECT logged as a statement");
            }
            _ => {}
        }
    }
    let options = String::from_utf8_lossy(&sql[toks[close].end..cut]);
    ReplaySql::Run(format!(
        "CREATE TEMPORARY TABLE {tmp} ({}){}",
        elements.join(", "),
        options.trim_end()
    ))
}

/// `ALTER TABLE tmp` with the clauses that change columns and keys.
fn alter_sql(sql: &[u8], toks: &[Token], name_end: usize, tmp: &str) -> ReplaySql {
    let start = toks
        .iter()
        .position(|t| t.start >= name_end)
        .unwrap_or(toks.len());
    let kept: Vec<String> = clauses(&toks[start..])
        .into_iter()
        .filter(|c| !is_table_rename(c) && !leaves_columns_alone(c))
        .map(|c| text(sql, c))
        .collect();
    if kept.is_empty() {
        return ReplaySql::Unchanged;
    }
    ReplaySql::Run(format!("ALTER TABLE {tmp} {}", kept.join(", ")))
}

/// ALTER clauses left out of a replay: partitioning, foreign keys, how the
/// server runs it, tablespaces.
fn leaves_columns_alone(c: &[Token]) -> bool {
    let w = |i: usize| word(c, i);
    let partition = matches!(w(1), "PARTITION" | "PARTITIONS" | "PARTITIONING");
    matches!(w(0), "ALGORITHM" | "LOCK" | "PARTITION")
        || (partition
            && matches!(
                w(0),
                "ADD"
                    | "DROP"
                    | "TRUNCATE"
                    | "COALESCE"
                    | "REORGANIZE"
                    | "EXCHANGE"
                    | "ANALYZE"
                    | "CHECK"
                    | "OPTIMIZE"
                    | "REBUILD"
                    | "REPAIR"
                    | "DISCARD"
                    | "IMPORT"
                    | "REMOVE"
            ))
        || (matches!(w(0), "DISCARD" | "IMPORT") && w(1) == "TABLESPACE")
        || (w(0) == "DROP" && w(1) == "FOREIGN")
        || (w(0) == "ADD" && is_foreign_key(&c[1..]))
}

/// `[CONSTRAINT [name]] FOREIGN KEY ...`.
fn is_foreign_key(e: &[Token]) -> bool {
    word(e, 0) == "FOREIGN"
        || (word(e, 0) == "CONSTRAINT" && (word(e, 1) == "FOREIGN" || word(e, 2) == "FOREIGN"))
}

fn word(c: &[Token], i: usize) -> &str {
    match c.get(i).map(|t| &t.tok) {
        Some(Tok::Word { upper, .. }) => upper,
        _ => "",
    }
}

/// The text of `toks`, whole executable comments included.
fn text(sql: &[u8], toks: &[Token]) -> String {
    let (Some(first), Some(last)) = (toks.first(), toks.last()) else {
        return String::new();
    };
    let start = first.comment.unwrap_or(first.start);
    let mut end = last.end;
    if last.comment.is_some() {
        end = sql[end..]
            .windows(2)
            .position(|w| w == b"*/")
            .map_or(sql.len(), |p| end + p + 2);
    }
    String::from_utf8_lossy(&sql[start..end]).into_owned()
}

fn matching_paren(toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn depth_at(toks: &[Token], at: usize) -> usize {
    toks[..at].iter().fold(0usize, |d, t| match t.tok {
        Tok::Punct(b'(') => d + 1,
        Tok::Punct(b')') => d.saturating_sub(1),
        _ => d,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::{classify, Classified};

    const TMP: &str = "`d`.`_tmp`";

    fn replay(sql: &str) -> ReplaySql {
        let Classified::Table(st) = classify(sql.as_bytes(), "d") else {
            panic!("{sql}: not a table statement");
        };
        replay_sql(sql.as_bytes(), &st, TMP)
    }

    fn run(sql: &str) -> String {
        match replay(sql) {
            ReplaySql::Run(s) => s,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn creates_become_temporary_without_foreign_keys_or_partitions() {
        assert_eq!(
            run("CREATE TABLE IF NOT EXISTS d.t (id INT PRIMARY KEY, p INT, CONSTRAINT fk FOREIGN KEY (p) REFERENCES q(id), v VARCHAR(20) DEFAULT 'a,b') ENGINE=InnoDB"),
            "CREATE TEMPORARY TABLE `d`.`_tmp` (id INT PRIMARY KEY, p INT, v VARCHAR(20) DEFAULT 'a,b') ENGINE=InnoDB"
        );
        assert_eq!(
            run("CREATE TABLE p (id INT PRIMARY KEY) PARTITION BY RANGE (id) (PARTITION p0 VALUES LESS THAN (10))"),
            "CREATE TEMPORARY TABLE `d`.`_tmp` (id INT PRIMARY KEY)"
        );
        // As SHOW CREATE TABLE prints a partitioned table and an invisible column.
        assert_eq!(
            run("CREATE TABLE `p` (\n  `id` int NOT NULL,\n  `c` int DEFAULT NULL /*!80023 INVISIBLE */,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4\n/*!50100 PARTITION BY RANGE (`id`)\n(PARTITION p0 VALUES LESS THAN (10) ENGINE = InnoDB) */"),
            "CREATE TEMPORARY TABLE `d`.`_tmp` (`id` int NOT NULL, `c` int DEFAULT NULL /*!80023 INVISIBLE */, PRIMARY KEY (`id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
        // MySQL's CREATE TABLE ... SELECT with GTIDs.
        assert_eq!(
            run("CREATE TABLE `y` (\n  `id` int NOT NULL\n) START TRANSACTION"),
            "CREATE TEMPORARY TABLE `d`.`_tmp` (`id` int NOT NULL)"
        );
        assert_eq!(
            replay("CREATE TABLE y SELECT 1 AS a"),
            ReplaySql::Cannot("CREATE TABLE without a column list")
        );
        assert_eq!(
            replay("CREATE TABLE y (a INT) SELECT 1 AS a"),
            ReplaySql::Cannot("CREATE TABLE ... SELECT logged as a statement")
        );
    }

    #[test]
    fn alters_keep_the_clauses_that_change_columns_and_keys() {
        assert_eq!(
            run(
                "ALTER TABLE d.t ADD COLUMN w INT NOT NULL DEFAULT 7, ALGORITHM=INSTANT, LOCK=NONE"
            ),
            "ALTER TABLE `d`.`_tmp` ADD COLUMN w INT NOT NULL DEFAULT 7"
        );
        assert_eq!(
            run("ALTER TABLE t ADD c INT, RENAME TO t2, ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES x(id), DROP FOREIGN KEY g"),
            "ALTER TABLE `d`.`_tmp` ADD c INT"
        );
        assert_eq!(
            run("ALTER TABLE t2 RENAME COLUMN vv TO v3, DROP COLUMN w"),
            "ALTER TABLE `d`.`_tmp` RENAME COLUMN vv TO v3, DROP COLUMN w"
        );
        assert_eq!(
            replay("ALTER TABLE p TRUNCATE PARTITION p0"),
            ReplaySql::Unchanged
        );
        assert_eq!(
            replay("ALTER TABLE p DROP PARTITION p1, p2"),
            ReplaySql::Unchanged
        );
        assert_eq!(replay("ALTER TABLE t RENAME TO t2"), ReplaySql::Unchanged);
        assert_eq!(replay("TRUNCATE t"), ReplaySql::Unchanged);
        assert_eq!(
            run("CREATE UNIQUE INDEX i ON t (v)"),
            "CREATE UNIQUE INDEX i ON `d`.`_tmp` (v)"
        );
        assert_eq!(
            run("DROP INDEX `PRIMARY` ON d.t"),
            "DROP INDEX `PRIMARY` ON `d`.`_tmp`"
        );
    }
}
