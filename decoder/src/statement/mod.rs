//! Statements the binlog logs as text (Query events) that change tables:
//! which kind of change, and which tables.
//!
//! Even with `binlog_format=ROW`, servers log TRUNCATE, CREATE/ALTER/
//! RENAME/DROP TABLE, CREATE/DROP INDEX and DROP DATABASE as statements,
//! never as row events. [`classify`] reads a statement's head (the verb,
//! the table names, and for ALTER TABLE its top-level clauses) and says
//! what it did to tables. Everything else (users, grants, passwords, views,
//! routines, transaction control) is [`Classified::Skipped`]: its text must
//! never reach an output, a log line or an error, since MariaDB logs
//! `CREATE USER ... IDENTIFIED BY 'clear password'`.
//!
//! This is a tokenizer for statement heads, not an SQL parser: names may be
//! backquoted (with ``` `` ``` for a backquote) and qualified, comments are
//! skipped, and executable comments (`/*! ... */`, MariaDB's `/*M! ... */`)
//! are read as code, as the server reads them.

pub mod columns;
pub mod redact;
pub mod replay;
pub(crate) mod tokens;

use serde::Serialize;

use tokens::{tokenize, Tok, Token};

/// What a table statement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatementKind {
    /// CREATE TABLE (also `... LIKE`, `... SELECT`, `IF NOT EXISTS`): no rows
    /// yet, or its rows follow as row events in the same transaction.
    Create,
    /// MariaDB's CREATE OR REPLACE TABLE: the old table's rows are gone.
    Replace,
    /// ALTER TABLE, CREATE INDEX, DROP INDEX: the definition changed.
    Alter,
    /// RENAME TABLE, or an ALTER TABLE whose only clause is RENAME.
    Rename,
    /// DROP TABLE.
    Drop,
    /// TRUNCATE TABLE: every row is gone.
    Truncate,
    /// ALTER TABLE ... TRUNCATE PARTITION: the rows of some partitions are gone.
    TruncatePartition,
    /// ALTER TABLE ... DROP PARTITION: the rows of some partitions are gone.
    DropPartition,
    /// ALTER TABLE ... EXCHANGE PARTITION: rows moved between two tables.
    ExchangePartition,
    /// DROP DATABASE (or SCHEMA): every table of the schema is gone.
    DropDatabase,
    /// A statement about a table that we cannot read further.
    Other,
}

impl StatementKind {
    /// The name in the event's `kind` field.
    pub fn name(self) -> &'static str {
        match self {
            StatementKind::Create => "create",
            StatementKind::Replace => "replace",
            StatementKind::Alter => "alter",
            StatementKind::Rename => "rename",
            StatementKind::Drop => "drop",
            StatementKind::Truncate => "truncate",
            StatementKind::TruncatePartition => "truncate-partition",
            StatementKind::DropPartition => "drop-partition",
            StatementKind::ExchangePartition => "exchange-partition",
            StatementKind::DropDatabase => "drop-database",
            StatementKind::Other => "other",
        }
    }

    /// Whether the statement changed rows in a way the stream does not
    /// carry (which rows a partition held, what an exchange moved, what an
    /// ALTER did to existing rows): a consumer must read the table anew.
    pub fn needs_snapshot(self) -> bool {
        matches!(
            self,
            StatementKind::Alter
                | StatementKind::TruncatePartition
                | StatementKind::DropPartition
                | StatementKind::ExchangePartition
                | StatementKind::Other
        )
    }
}

/// A table a statement touched (`table` is `None` for DROP DATABASE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    pub schema: String,
    pub table: Option<String>,
    /// The new name, for renames (`ALTER TABLE ... RENAME` included).
    pub renamed_to: Option<(String, String)>,
}

/// A statement that changed tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStatement {
    pub kind: StatementKind,
    /// One entry per table, in the statement's order.
    pub tables: Vec<Touched>,
    /// CREATE TABLE ... LIKE: the table copied.
    pub like: Option<(String, String)>,
    /// Where the (first) table's name is in the text (`start..end`).
    pub name_span: Option<(usize, usize)>,
}

/// What a logged statement is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    Table(TableStatement),
    /// Not about a table's rows or definition (or transaction control):
    /// never written anywhere.
    Skipped,
}

/// Classifies `sql` (a Query event's text) run with `default_db` as the
/// current database.
pub fn classify(sql: &[u8], default_db: &str) -> Classified {
    let tokens = tokenize(sql);
    let mut p = Parser {
        t: &tokens,
        i: 0,
        db: default_db,
        name_span: None,
    };
    match p.statement() {
        Some(Some((kind, tables, like))) => Classified::Table(TableStatement {
            kind,
            tables,
            like,
            name_span: p.name_span,
        }),
        Some(None) => Classified::Skipped,
        // A table verb we could not follow: say which schema, at least.
        None if p.is_table_verb() => Classified::Table(TableStatement {
            kind: StatementKind::Other,
            tables: vec![Touched {
                schema: default_db.to_string(),
                table: None,
                renamed_to: None,
            }],
            like: None,
            name_span: None,
        }),
        None => Classified::Skipped,
    }
}

/// What a parse of a table statement found: the kind, the tables, and the
/// source of a CREATE TABLE ... LIKE. `Some(None)`: not a table statement.
type Parsed = Option<Option<(StatementKind, Vec<Touched>, Option<(String, String)>)>>;

fn parsed(kind: StatementKind, tables: Vec<Touched>) -> Parsed {
    Some(Some((kind, tables, None)))
}

const SKIPPED: Parsed = Some(None);

struct Parser<'a> {
    t: &'a [Token],
    i: usize,
    db: &'a str,
    /// The span of the first table name read.
    name_span: Option<(usize, usize)>,
}

impl Parser<'_> {
    fn tok(&self) -> Option<&Tok> {
        self.t.get(self.i).map(|t| &t.tok)
    }

    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.tok(), Some(Tok::Word { upper, .. }) if upper == kw)
    }

    fn kw(&mut self, kw: &str) -> bool {
        let yes = self.peek_kw(kw);
        if yes {
            self.i += 1;
        }
        yes
    }

    fn kws(&mut self, kws: &[&str]) -> bool {
        let start = self.i;
        if kws.iter().all(|k| self.kw(k)) {
            return true;
        }
        self.i = start;
        false
    }

    fn punct(&mut self, c: u8) -> bool {
        let yes = self.tok() == Some(&Tok::Punct(c));
        if yes {
            self.i += 1;
        }
        yes
    }

    fn ident(&mut self) -> Option<String> {
        let name = match self.tok()? {
            Tok::Word { raw, .. } => raw.clone(),
            Tok::Quoted(name) => name.clone(),
            _ => return None,
        };
        self.i += 1;
        Some(name)
    }

    /// `name` or `schema.name`.
    fn table_name(&mut self) -> Option<(String, String)> {
        let start = self.t.get(self.i)?.start;
        let first = self.ident()?;
        let name = if self.punct(b'.') {
            (first, self.ident()?)
        } else {
            (self.db.to_string(), first)
        };
        let end = self.t[self.i - 1].end;
        self.name_span.get_or_insert((start, end));
        Some(name)
    }

    /// Whether the statement starts like a table statement (for `Other`).
    fn is_table_verb(&self) -> bool {
        let words: Vec<&str> = self
            .t
            .iter()
            .take(6)
            .filter_map(|t| match &t.tok {
                Tok::Word { upper, .. } => Some(upper.as_str()),
                _ => None,
            })
            .collect();
        matches!(
            words.first(),
            Some(&"ALTER" | &"CREATE" | &"DROP" | &"RENAME" | &"TRUNCATE")
        ) && words.contains(&"TABLE")
    }

    fn statement(&mut self) -> Parsed {
        if self.kw("CREATE") {
            self.create()
        } else if self.kw("ALTER") {
            self.kw("ONLINE");
            self.kw("IGNORE");
            if !self.kw("TABLE") {
                return SKIPPED;
            }
            self.alter()
        } else if self.kws(&["RENAME", "TABLE"]) || self.kws(&["RENAME", "TABLES"]) {
            self.rename()
        } else if self.kw("DROP") {
            self.drop()
        } else if self.kw("TRUNCATE") {
            self.kw("TABLE");
            let name = self.table_name()?;
            parsed(StatementKind::Truncate, vec![touched(name, None)])
        } else {
            SKIPPED
        }
    }

    fn create(&mut self) -> Parsed {
        let replace = self.kws(&["OR", "REPLACE"]);
        if self.kw("TEMPORARY") {
            // Not in a ROW-format binlog; never a table of the server's.
            return SKIPPED;
        }
        // CREATE [UNIQUE|FULLTEXT|SPATIAL] INDEX name [USING ..] ON table
        let at = self.i;
        self.kw("UNIQUE");
        self.kw("FULLTEXT");
        self.kw("SPATIAL");
        if self.kw("INDEX") {
            self.kws(&["IF", "NOT", "EXISTS"]);
            self.ident()?;
            while !self.kw("ON") {
                self.ident()?;
            }
            let name = self.table_name()?;
            return parsed(StatementKind::Alter, vec![touched(name, None)]);
        }
        self.i = at;
        if !self.kw("TABLE") {
            return SKIPPED; // databases, views, routines, users
        }
        self.kws(&["IF", "NOT", "EXISTS"]);
        let name = self.table_name()?;
        let kind = if replace {
            StatementKind::Replace
        } else {
            StatementKind::Create
        };
        // CREATE TABLE t LIKE s, or (LIKE s).
        let parens = self.punct(b'(');
        let like = if self.kw("LIKE") {
            let source = self.table_name()?;
            if parens && !self.punct(b')') {
                return None;
            }
            Some(source)
        } else {
            None
        };
        Some(Some((kind, vec![touched(name, None)], like)))
    }

    /// ALTER TABLE name clause, clause, ...: the clauses at the top level
    /// (outside parentheses) decide the kind.
    fn alter(&mut self) -> Parsed {
        let name = self.table_name()?;
        let mut kind = StatementKind::Alter;
        let mut renamed_to = None;
        let mut others = 0;
        for c in clauses(&self.t[self.i..]) {
            // An unqualified new name is in the current database (not the
            // table's), as the server resolves it.
            let mut p = Parser {
                t: c,
                i: 0,
                db: self.db,
                name_span: None,
            };
            if is_table_rename(c) {
                p.kw("RENAME");
                let _ = p.kw("TO") || p.kw("AS");
                renamed_to = Some(p.table_name()?);
                continue;
            }
            others += 1;
            if p.kws(&["TRUNCATE", "PARTITION"]) {
                kind = StatementKind::TruncatePartition;
            } else if p.kws(&["DROP", "PARTITION"]) {
                kind = StatementKind::DropPartition;
            } else if p.kws(&["EXCHANGE", "PARTITION"]) {
                p.ident()?;
                p.kw("WITH");
                p.kw("TABLE");
                let other = p.table_name()?;
                let tables = vec![touched(name, None), touched(other, None)];
                return parsed(StatementKind::ExchangePartition, tables);
            }
        }
        if renamed_to.is_some() && others == 0 {
            kind = StatementKind::Rename;
        }
        parsed(kind, vec![touched(name, renamed_to)])
    }

    fn rename(&mut self) -> Parsed {
        let mut tables = Vec::new();
        loop {
            let from = self.table_name()?;
            if !self.kw("TO") {
                return None;
            }
            let to = self.table_name()?;
            tables.push(touched(from, Some(to)));
            if !self.punct(b',') {
                break;
            }
        }
        parsed(StatementKind::Rename, tables)
    }

    fn drop(&mut self) -> Parsed {
        if self.kw("DATABASE") || self.kw("SCHEMA") {
            self.kws(&["IF", "EXISTS"]);
            let schema = self.ident()?;
            let every = Touched {
                schema,
                table: None,
                renamed_to: None,
            };
            return parsed(StatementKind::DropDatabase, vec![every]);
        }
        if self.kw("INDEX") {
            self.kws(&["IF", "EXISTS"]);
            self.ident()?;
            if !self.kw("ON") {
                return None;
            }
            let name = self.table_name()?;
            return parsed(StatementKind::Alter, vec![touched(name, None)]);
        }
        if self.kw("TEMPORARY") {
            return SKIPPED;
        }
        if !self.kw("TABLE") && !self.kw("TABLES") {
            return SKIPPED; // views, routines, users, ...
        }
        self.kws(&["IF", "EXISTS"]);
        let mut tables = Vec::new();
        loop {
            tables.push(touched(self.table_name()?, None));
            if !self.punct(b',') {
                break;
            }
        }
        parsed(StatementKind::Drop, tables)
    }
}

/// `tokens` cut at top-level commas (outside parentheses).
pub(crate) fn clauses(tokens: &[Token]) -> Vec<&[Token]> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        match t.tok {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => depth = depth.saturating_sub(1),
            Tok::Punct(b',') if depth == 0 => {
                out.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&tokens[start..]);
    out.retain(|c| !c.is_empty());
    out
}

/// `RENAME [TO|AS] name`: the table's rename (not RENAME COLUMN/INDEX/KEY).
pub(crate) fn is_table_rename(clause: &[Token]) -> bool {
    let word = |i: usize| match clause.get(i).map(|t| &t.tok) {
        Some(Tok::Word { upper, .. }) => upper.as_str(),
        _ => "",
    };
    word(0) == "RENAME" && !matches!(word(1), "COLUMN" | "INDEX" | "KEY")
}

fn touched(name: (String, String), renamed_to: Option<(String, String)>) -> Touched {
    Touched {
        schema: name.0,
        table: Some(name.1),
        renamed_to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `schema`, `table`, and the new name of a rename.
    type Name<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>);

    fn table(kind: StatementKind, names: &[Name<'_>]) -> Classified {
        Classified::Table(TableStatement {
            kind,
            tables: names
                .iter()
                .map(|(s, t, r)| Touched {
                    schema: s.to_string(),
                    table: Some(t.to_string()),
                    renamed_to: r.map(|(a, b)| (a.to_string(), b.to_string())),
                })
                .collect(),
            like: None,
            name_span: None,
        })
    }

    /// The classification, without the name's span (checked on its own).
    fn c(sql: &str) -> Classified {
        match classify(sql.as_bytes(), "d") {
            Classified::Table(t) => Classified::Table(TableStatement {
                name_span: None,
                like: None,
                ..t
            }),
            skipped => skipped,
        }
    }

    #[test]
    fn statements_as_mariadb_and_mysql_log_them() {
        use StatementKind::*;
        let t = |k, s, n| table(k, &[(s, n, None)]);
        assert_eq!(
            c("CREATE TABLE d.t (id INT PRIMARY KEY)"),
            t(Create, "d", "t")
        );
        assert_eq!(
            c("create table if not exists `x y` like t"),
            t(Create, "d", "x y")
        );
        assert_eq!(
            c("CREATE TABLE `y` (\n  `id` int(11) NOT NULL\n) START TRANSACTION"),
            t(Create, "d", "y")
        );
        assert_eq!(
            c("CREATE OR REPLACE TABLE e.t (a INT)"),
            t(Replace, "e", "t")
        );
        assert_eq!(c("TRUNCATE TABLE d.t"), t(Truncate, "d", "t"));
        assert_eq!(c("truncate `s`.`t`"), t(Truncate, "s", "t"));
        assert_eq!(
            c("ALTER TABLE d.t ADD COLUMN w INT NOT NULL DEFAULT 7"),
            t(Alter, "d", "t")
        );
        assert_eq!(
            c("ALTER ONLINE IGNORE TABLE t MODIFY w BIGINT"),
            t(Alter, "d", "t")
        );
        assert_eq!(
            c("ALTER TABLE t2 RENAME COLUMN vv TO v3, DROP COLUMN w"),
            t(Alter, "d", "t2")
        );
        assert_eq!(c("ALTER TABLE t RENAME INDEX a TO b"), t(Alter, "d", "t"));
        assert_eq!(c("CREATE UNIQUE INDEX i1 ON t2 (v3)"), t(Alter, "d", "t2"));
        assert_eq!(c("DROP INDEX `PRIMARY` ON s.t2"), t(Alter, "s", "t2"));
        assert_eq!(
            c("ALTER TABLE p TRUNCATE PARTITION p0"),
            t(TruncatePartition, "d", "p")
        );
        assert_eq!(
            c("ALTER TABLE p DROP PARTITION p1, p2"),
            t(DropPartition, "d", "p")
        );
        assert_eq!(
            c("ALTER TABLE p EXCHANGE PARTITION p0 WITH TABLE e.q"),
            table(ExchangePartition, &[("d", "p", None), ("e", "q", None)])
        );
        assert_eq!(
            c("ALTER TABLE t RENAME TO t2"),
            table(Rename, &[("d", "t", Some(("d", "t2")))])
        );
        assert_eq!(
            c("ALTER TABLE t ADD c INT, RENAME AS e.t3"),
            table(Alter, &[("d", "t", Some(("e", "t3")))])
        );
        assert_eq!(
            c("ALTER TABLE q.k RENAME k2"),
            table(Rename, &[("q", "k", Some(("d", "k2")))])
        );
        assert_eq!(
            c("RENAME TABLE d.u TO d.u2"),
            table(Rename, &[("d", "u", Some(("d", "u2")))])
        );
        assert_eq!(
            c("RENAME TABLE x TO x1, `e`.y TO y1"),
            table(
                Rename,
                &[("d", "x", Some(("d", "x1"))), ("e", "y", Some(("d", "y1")))]
            )
        );
        assert_eq!(
            c("DROP TABLE `x1`,`y1` /* generated by server */"),
            table(Drop, &[("d", "x1", None), ("d", "y1", None)])
        );
        assert_eq!(
            c("DROP TABLE IF EXISTS `d`.`u2` /* generated by server */"),
            t(Drop, "d", "u2")
        );
        let every = |kind, schema: &str| {
            Classified::Table(TableStatement {
                kind,
                tables: vec![Touched {
                    schema: schema.into(),
                    table: None,
                    renamed_to: None,
                }],
                like: None,
                name_span: None,
            })
        };
        assert_eq!(c("DROP DATABASE e"), every(DropDatabase, "e"));
        // Comments, executable comments and a backquote inside a name.
        assert_eq!(
            c("/* app */ /*!40000 ALTER TABLE `a``b` ADD c INT */"),
            t(Alter, "d", "a`b")
        );
        assert_eq!(c("-- note\nTRUNCATE t"), t(Truncate, "d", "t"));
    }

    #[test]
    fn statements_about_anything_but_tables_are_skipped() {
        for sql in [
            "CREATE USER 'bob'@'%' IDENTIFIED BY 'Sekr1tPass'",
            "ALTER USER bob IDENTIFIED BY 'Other2Pass'",
            "SET PASSWORD FOR 'bob'@'%'='*E43F380D3FCAA847CF59F9D1BA91A6E4C527775C'",
            "GRANT SELECT ON d.* TO 'bob'@'%'",
            "DROP USER bob",
            "CREATE DATABASE d",
            "ALTER DATABASE d CHARACTER SET utf8mb4",
            "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `vw` AS SELECT * FROM t2",
            "DROP VIEW vw",
            "CREATE TEMPORARY TABLE tmp (a int)",
            "DROP TEMPORARY TABLE IF EXISTS tmp",
            "BEGIN",
            "COMMIT",
            "SAVEPOINT a",
            "OPTIMIZE TABLE t",
            "ANALYZE TABLE t",
            "FLUSH TABLES",
            "",
        ] {
            assert_eq!(c(sql), Classified::Skipped, "{sql}");
        }
    }

    #[test]
    fn names_and_like_sources_are_found() {
        let sql = "CREATE TABLE IF NOT EXISTS `d`.`x y` LIKE e.t";
        let Classified::Table(t) = classify(sql.as_bytes(), "d") else {
            panic!("a table statement");
        };
        let (start, end) = t.name_span.expect("a name");
        assert_eq!(&sql[start..end], "`d`.`x y`");
        assert_eq!(t.like, Some(("e".into(), "t".into())));
        let sql = "ALTER TABLE t ADD c INT";
        let Classified::Table(t) = classify(sql.as_bytes(), "d") else {
            panic!("a table statement");
        };
        assert_eq!(t.name_span, Some((12, 13)));
    }

    #[test]
    fn a_table_statement_we_cannot_follow_is_other_in_its_schema() {
        let other = Classified::Table(TableStatement {
            kind: StatementKind::Other,
            tables: vec![Touched {
                schema: "d".into(),
                table: None,
                renamed_to: None,
            }],
            like: None,
            name_span: None,
        });
        assert_eq!(c("RENAME TABLE a"), other);
        assert_eq!(c("DROP TABLE (x)"), other);
        assert_eq!(c("ALTER TABLE"), other);
    }
}
