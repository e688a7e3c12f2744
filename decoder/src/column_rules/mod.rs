//! Column rules: sensitive columns never leave the database as they are.
//!
//! A rule is `pattern=rule`, the pattern `schema.table.column` with `*` as
//! in the table patterns ([`crate::filter`]); the first rule whose pattern
//! matches a column applies to it:
//!
//! | rule | what events carry |
//! |---|---|
//! | `exclude` | nothing: the column is absent from every image, key, delta and `columnsChanged` |
//! | `hash` | HMAC-SHA-256 of the value under the key, 64 hex digits (see [`HashKey`]) |
//! | `mask` | one `*` per character of the value |
//! | `mask(N)` | exactly N `*`, whatever the value |
//! | `truncate(N)` | the value's first N characters |
//!
//! NULL stays `null` under every rule. "The value" is what the event would
//! carry without the rule: a string's characters (text as UTF-8, bytes as
//! base64), or a number's or JSON document's text. Rules are applied where
//! events are written ([`crate::event`]), for binlog rows and snapshot rows
//! alike, so nothing downstream ever holds the clear value; `delta` and
//! `columnsChanged` compare the clear values and write the ruled ones. A
//! primary-key column may be hashed (the key stays a key: equal values hash
//! equal) but not excluded, masked or truncated (two rows would share a key).
//!
//! Table statements: a definition shows each ruled column's rule and never
//! its default (`default` null, no `DEFAULT` in `createTable`); a
//! statement's text on a table with rules has its literals replaced by
//! `'***'`; `columnsAdded` carries the ruled value of an added column (an
//! excluded one not at all).

use std::borrow::Cow;
use std::sync::Arc;

use crate::decode::{Columns, RowImage};
use crate::definition::{HeldRows, Known, TableDefinition};
use crate::filter::{glob, matches_some_name_under};
use crate::json;
use crate::schema::TableMeta;
use crate::statement::tokens::{tokenize, Tok};

use crate::table_rules::write_digest;
pub use crate::table_rules::{HashCache, HashKey, Rule, TableRules};

const NO_KEY: &str = "a hash column rule needs a key: set HASH_KEY_SECRET_ARN (the stack's HashKeySecret), or --hash-key-file";

/// The configured rules, in order, and the key for `hash`.
#[derive(Debug, Clone, Default)]
pub struct ColumnRules {
    rules: Arc<[(String, Rule)]>,
    key: Option<HashKey>,
}

impl ColumnRules {
    /// Rules from `pattern=rule` entries; `key` is required when one is
    /// `hash`.
    pub fn new(entries: &[String], key: Option<HashKey>) -> Result<Self, String> {
        let rules = Self::for_planning(entries)?;
        if key.is_none() && rules.hashes() {
            return Err(NO_KEY.into());
        }
        Ok(Self { key, ..rules })
    }

    fn hashes(&self) -> bool {
        self.rules.iter().any(|(_, r)| *r == Rule::Hash)
    }

    /// Rules for planning only (which tables' keys they cover): no key is
    /// needed, and [`ColumnRules::for_table`] refuses a `hash` rule.
    pub fn for_planning(entries: &[String]) -> Result<Self, String> {
        let rules = entries
            .iter()
            .map(|e| parse_entry(e))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            rules: rules.into(),
            key: None,
        })
    }

    /// Whether some rule may apply to a column of `schema.table`.
    pub fn covers(&self, schema: &str, table: &str) -> bool {
        let prefix = format!("{schema}.{table}.");
        self.rules
            .iter()
            .any(|(p, _)| matches_some_name_under(p, &prefix))
    }

    /// The rule for `schema.table.column`: the first that matches.
    pub fn rule(&self, schema: &str, table: &str, column: &str) -> Option<Rule> {
        let name = format!("{schema}.{table}.{column}");
        self.rules
            .iter()
            .find(|(p, _)| glob(p, &name))
            .map(|(_, r)| *r)
    }

    /// Whether a rule applies to a column of `t`'s primary key (whose
    /// values then must not leave the database, not even as a range's
    /// bounds).
    pub fn rules_key(&self, t: &TableMeta) -> bool {
        t.primary_key
            .iter()
            .any(|&k| self.rule(&t.schema, &t.table, &t.columns[k].name).is_some())
    }

    /// Each column's rule for `t`, or `None` when no rule applies to it.
    /// Fails when rules cover the table but its column names are unknown,
    /// or when a key column would lose its identity.
    pub(crate) fn for_table(&self, t: &TableMeta) -> Result<Option<Arc<TableRules>>, String> {
        if !self.covers(&t.schema, &t.table) {
            return Ok(None);
        }
        if !t.has_names {
            return Err(format!(
                "column rules cover {} but its column names are not known (binlog_row_metadata=MINIMAL, and no information_schema to ask): the rules could not be applied",
                t.full_name
            ));
        }
        let rules: Vec<Option<Rule>> = t
            .columns
            .iter()
            .map(|c| self.rule(&t.schema, &t.table, &c.name))
            .collect();
        for &k in &t.primary_key {
            if let Some(r) = rules[k].filter(|r| *r != Rule::Hash) {
                return Err(format!(
                    "{}.{} is in the primary key: a key column may be hashed, not {r} (events could not be applied by key)",
                    t.full_name, t.columns[k].name
                ));
            }
        }
        if rules.iter().all(Option::is_none) {
            return Ok(None);
        }
        if self.key.is_none() && rules.contains(&Some(Rule::Hash)) {
            return Err(NO_KEY.into());
        }
        let ruled = rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.map(|r| (i, r)))
            .collect();
        Ok(Some(Arc::new(TableRules {
            ruled,
            key: self.key.clone(),
        })))
    }

    /// `d` as written: each column's rule shown, no ruled column's default
    /// (neither in `default` nor in `createTable`).
    pub fn definition<'a>(
        &self,
        schema: &str,
        table: &str,
        d: &'a TableDefinition,
    ) -> Cow<'a, TableDefinition> {
        if !self.covers(schema, table) {
            return Cow::Borrowed(d);
        }
        let mut out = d.clone();
        let mut ruled = Vec::new();
        for c in &mut out.columns {
            if let Some(r) = self.rule(schema, table, &c.name) {
                c.rule = Some(r.to_string());
                c.default = None;
                ruled.push(c.name.clone());
            }
        }
        out.create_table = without_defaults(&d.create_table, &ruled);
        Cow::Owned(out)
    }

    /// A statement's text as written: on a table rules cover, its string
    /// literals replaced by `'***'` and a number after `DEFAULT` by `***`
    /// (a default may hold a value).
    pub fn statement<'a>(&self, schema: &str, table: &str, text: &'a str) -> Cow<'a, str> {
        if !self.covers(schema, table) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let (mut at, mut after_default) = (0, false);
        for t in tokenize(text.as_bytes()) {
            let with = match &t.tok {
                Tok::Str => Some("'***'"),
                Tok::Word { raw, .. }
                    if after_default && raw.starts_with(|c: char| c.is_ascii_digit()) =>
                {
                    Some("***")
                }
                _ => None,
            };
            if let Some(with) = with {
                out.push_str(&text[at..t.start]);
                out.push_str(with);
                at = t.end;
            }
            after_default = match &t.tok {
                Tok::Word { upper, .. } => upper == "DEFAULT",
                Tok::Punct(b'-' | b'+') => after_default,
                _ => false,
            };
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    /// What is known of a table, as written: a definition as
    /// [`ColumnRules::definition`] writes it, a server's reason for not
    /// knowing (which may quote the statement) as
    /// [`ColumnRules::statement`] does.
    pub fn known(&self, schema: &str, table: &str, k: &Known) -> Known {
        match k {
            Known::Defined(d) => match self.definition(schema, table, d) {
                Cow::Borrowed(_) => k.clone(),
                Cow::Owned(d) => Known::Defined(Arc::new(d)),
            },
            Known::Unknown(why) => Known::Unknown(self.statement(schema, table, why).into_owned()),
            Known::Gone => Known::Gone,
        }
    }

    /// How held rows follow an ALTER, ruled: each added column's value as
    /// its rule writes it (an excluded one left out). `None` when a column
    /// is renamed across rules: the values held under the old rule are not
    /// the new rule's (the table is read again).
    pub(crate) fn held_rows(&self, schema: &str, table: &str, h: &HeldRows) -> Option<HeldRows> {
        if !self.covers(schema, table) {
            return Some(h.clone());
        }
        let rule = |c: &str| self.rule(schema, table, c);
        if h.renamed.iter().any(|(o, n)| rule(o) != rule(n)) {
            return None;
        }
        let mut out = h.clone();
        out.added.retain(|(c, _)| rule(c) != Some(Rule::Exclude));
        for (c, v) in &mut out.added {
            if let Some(r) = rule(c) {
                let value = v.to_string();
                let digest = self
                    .key
                    .as_ref()
                    .map(|k| k.digest(&plain(value.as_bytes())));
                let mut text = Vec::new();
                apply(r, value.as_bytes(), digest.as_ref(), &mut text);
                *v = serde_json::from_slice(&text).unwrap_or(serde_json::Value::Null);
            }
        }
        Some(out)
    }
}

/// The rules of the names a table statement touched (its name, and its new
/// name for a rename): what the statement's event says of the table is
/// written under each.
pub(crate) struct StatementRules<'a> {
    rules: &'a ColumnRules,
    names: Vec<(&'a str, &'a str)>,
}

impl<'a> StatementRules<'a> {
    /// The rules of `names` (`schema`, `table`) that some rule covers.
    pub fn new(
        rules: &'a ColumnRules,
        names: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let names = names
            .into_iter()
            .filter(|(s, t)| rules.covers(s, t))
            .collect();
        Self { rules, names }
    }

    /// See [`ColumnRules::statement`].
    pub fn statement<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.names.iter().fold(Cow::Borrowed(text), |text, (s, t)| {
            Cow::Owned(self.rules.statement(s, t, &text).into_owned())
        })
    }

    /// See [`ColumnRules::definition`].
    pub fn definition<'d>(&self, d: &'d TableDefinition) -> Cow<'d, TableDefinition> {
        self.names.iter().fold(Cow::Borrowed(d), |d, (s, t)| {
            Cow::Owned(self.rules.definition(s, t, &d).into_owned())
        })
    }

    /// See [`ColumnRules::held_rows`].
    pub(crate) fn held_rows(&self, h: &HeldRows) -> Option<HeldRows> {
        self.names
            .iter()
            .try_fold(h.clone(), |h, (s, t)| self.rules.held_rows(s, t, &h))
    }

    /// Whether a rename keeps every column of `d` under the same rule.
    pub(crate) fn same_across(
        &self,
        old: (&str, &str),
        new: (&str, &str),
        d: &TableDefinition,
    ) -> bool {
        let rule = |(s, t): (&str, &str), c: &str| self.rules.rule(s, t, c);
        d.columns
            .iter()
            .all(|c| rule(old, &c.name) == rule(new, &c.name))
    }
}

/// `pattern=rule`.
fn parse_entry(e: &str) -> Result<(String, Rule), String> {
    let (pattern, rule) = e
        .split_once('=')
        .ok_or_else(|| format!("column rule {e:?}: expected schema.table.column=rule"))?;
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return Err(format!("column rule {e:?}: an empty pattern"));
    }
    let rule = rule
        .parse()
        .map_err(|m| format!("column rule {e:?}: {m}"))?;
    Ok((pattern.to_string(), rule))
}

impl TableRules {
    /// Puts over `img` what events carry of its ruled columns: replaced
    /// texts, and excluded columns absent (hashes from `cache` when it has
    /// them). The clear image itself is not copied: see [`Ruled`].
    pub fn apply(&self, img: &RowImage, over: &mut Overlay, cache: &mut HashCache) {
        over.buf.clear();
        over.cols.clear();
        over.cols.resize(img.len(), Over::Clear);
        for &(i, rule) in &self.ruled {
            match (img.get(i), rule) {
                (None, _) => {}
                (Some(_), Rule::Exclude) => over.cols[i] = Over::Absent,
                (Some(v), rule) => {
                    let digest = match (rule, &self.key) {
                        (Rule::Hash, Some(key)) if v != b"null" => {
                            Some(key.digest_cached(&plain(v), cache))
                        }
                        _ => None,
                    };
                    let start = over.buf.len() as u32;
                    apply(rule, v, digest.as_ref(), &mut over.buf);
                    over.cols[i] = Over::Text(start, over.buf.len() as u32);
                }
            }
        }
    }
}

/// What a table's rules put over one image's columns ([`TableRules::apply`]),
/// reused row after row.
#[derive(Debug, Default)]
pub struct Overlay {
    buf: Vec<u8>,
    cols: Vec<Over>,
}

#[derive(Debug, Clone, Copy)]
enum Over {
    /// No rule: the clear image's text.
    Clear,
    Absent,
    /// The ruled text, in `buf`.
    Text(u32, u32),
}

/// An image as events carry it: the clear image's columns, with the
/// overlay's over the ruled ones.
pub(crate) struct Ruled<'a> {
    pub clear: &'a RowImage,
    pub over: &'a Overlay,
}

impl Columns for Ruled<'_> {
    #[inline]
    fn get(&self, i: usize) -> Option<&[u8]> {
        match self.over.cols.get(i) {
            Some(Over::Clear) | None => self.clear.get(i),
            Some(Over::Absent) => None,
            Some(&Over::Text(start, end)) => Some(&self.over.buf[start as usize..end as usize]),
        }
    }
}

/// Writes `value` (an event's JSON text) as `rule` makes it; `digest` is
/// the HMAC of its text (see [`plain`]) under a hash rule, `None` without a
/// key.
fn apply(rule: Rule, value: &[u8], digest: Option<&[u8; 32]>, out: &mut Vec<u8>) {
    if value == b"null" {
        out.extend_from_slice(value);
        return;
    }
    match rule {
        Rule::Exclude => out.extend_from_slice(b"null"),
        // (A key is required for hash rules: see ColumnRules::new.)
        Rule::Hash => match digest {
            Some(d) => write_digest(d, out),
            None => out.extend_from_slice(b"null"),
        },
        Rule::Mask(n) => {
            let n = n.unwrap_or_else(|| chars(&plain(value)));
            out.push(b'"');
            out.resize(out.len() + n, b'*');
            out.push(b'"');
        }
        Rule::Truncate(n) => {
            let text = plain(value);
            let end = char_boundary(&text, n);
            json::write_utf8(out, &text[..end]);
        }
    }
}

/// The value's text: a JSON string's characters, else the JSON text itself.
fn plain(value: &[u8]) -> Cow<'_, [u8]> {
    match value {
        [b'"', body @ .., b'"'] if !body.contains(&b'\\') => Cow::Borrowed(body),
        [b'"', ..] => match serde_json::from_slice::<String>(value) {
            Ok(s) => Cow::Owned(s.into_bytes()),
            Err(_) => Cow::Borrowed(value),
        },
        _ => Cow::Borrowed(value),
    }
}

/// Characters in UTF-8 `text`.
fn chars(text: &[u8]) -> usize {
    text.iter().filter(|&&b| (b & 0xc0) != 0x80).count()
}

/// The byte offset after `n` characters of UTF-8 `text` (or its end).
fn char_boundary(text: &[u8], n: usize) -> usize {
    let mut seen = 0;
    for (i, &b) in text.iter().enumerate() {
        if (b & 0xc0) != 0x80 {
            if seen == n {
                return i;
            }
            seen += 1;
        }
    }
    text.len()
}

/// `create_table` without the `DEFAULT` clause of each of `columns`: a
/// `SHOW CREATE TABLE` prints a column's clause as `DEFAULT` and one
/// literal (`'x'`, `5`, `NULL`, `b'101'`, `0x61`), a function call
/// (`current_timestamp(6)`) or a parenthesized expression.
fn without_defaults(create_table: &str, columns: &[String]) -> String {
    let toks = tokenize(create_table.as_bytes());
    let mut cut: Vec<(usize, usize)> = Vec::new();
    let (mut depth, mut column_start) = (0usize, true);
    let mut current: Option<&str> = None;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].tok {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => depth = depth.saturating_sub(1),
            Tok::Punct(b',') if depth == 1 => {
                column_start = true;
                i += 1;
                continue;
            }
            Tok::Quoted(name) if depth == 1 && column_start => {
                current = columns.iter().find(|c| *c == name).map(String::as_str);
            }
            Tok::Word { upper, .. } if depth == 1 && upper == "DEFAULT" && current.is_some() => {
                let end = default_end(&toks, i + 1);
                cut.push((toks[i].start, toks[end - 1].end));
                i = end;
                column_start = false;
                continue;
            }
            _ => {}
        }
        if depth == 1 && !matches!(toks[i].tok, Tok::Punct(b'(')) {
            column_start = false;
        }
        if depth == 0 {
            column_start = true;
        }
        i += 1;
    }
    let mut out = String::with_capacity(create_table.len());
    let mut at = 0;
    for (start, end) in cut {
        // The blank before `DEFAULT` goes too.
        out.push_str(create_table[at..start].trim_end_matches(' '));
        at = end;
    }
    out.push_str(&create_table[at..]);
    out
}

/// The token after a default's value that starts at `i`: a literal (with
/// its `b`/`x`/introducer prefix), a word with its call's parentheses, or a
/// parenthesized expression.
fn default_end(toks: &[crate::statement::tokens::Token], mut i: usize) -> usize {
    // `b'101'`, `_utf8mb4'x'`: a word glued to the literal that follows.
    if let (Some(Tok::Word { .. }), Some(next)) = (toks.get(i).map(|t| &t.tok), toks.get(i + 1)) {
        if next.tok == Tok::Str && toks[i].end == next.start {
            return i + 2;
        }
    }
    match toks.get(i).map(|t| &t.tok) {
        Some(Tok::Punct(b'(')) => {}
        Some(Tok::Word { .. }) if toks.get(i + 1).map(|t| &t.tok) == Some(&Tok::Punct(b'(')) => {
            i += 1
        }
        // A single literal, or a word (a number, NULL, current_timestamp).
        Some(Tok::Punct(b'-')) => return (i + 2).min(toks.len()),
        Some(_) => return i + 1,
        None => return i,
    }
    let mut depth = 0usize;
    while i < toks.len() {
        match toks[i].tok {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(entries: &[&str]) -> ColumnRules {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        ColumnRules::new(
            &entries,
            Some(HashKey::new(b"0123456789abcdef-key").unwrap()),
        )
        .unwrap()
    }

    fn ruled(rule: Rule, value: &str) -> String {
        let key = HashKey::new(b"0123456789abcdef-key").unwrap();
        let mut out = Vec::new();
        let digest = key.digest(&plain(value.as_bytes()));
        apply(rule, value.as_bytes(), Some(&digest), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rules_parse_and_print() {
        for s in ["exclude", "hash", "mask", "mask(4)", "truncate(10)"] {
            assert_eq!(s.parse::<Rule>().unwrap().to_string(), s);
        }
        assert!("mask(x)".parse::<Rule>().is_err());
        assert!("blur".parse::<Rule>().is_err());
        assert!(ColumnRules::new(&["a.b.c".into()], None).is_err());
        assert!(ColumnRules::new(&["=hash".into()], None).is_err());
        let e = ColumnRules::new(&["a.b.c=hash".into()], None).unwrap_err();
        assert!(e.contains("needs a key"), "{e}");
        assert!(HashKey::new(b"short").is_err());
        assert_eq!(
            format!("{:?}", HashKey::new(b"0123456789abcdef").unwrap()),
            "HashKey(***)"
        );
    }

    #[test]
    fn the_first_matching_rule_applies() {
        let r = rules(&[
            "shop.users.email=hash",
            "*.email=exclude",
            "shop.*.phone=mask(3)",
        ]);
        assert_eq!(r.rule("shop", "users", "email"), Some(Rule::Hash));
        assert_eq!(r.rule("crm", "people", "email"), Some(Rule::Exclude));
        assert_eq!(r.rule("shop", "users", "phone"), Some(Rule::Mask(Some(3))));
        assert_eq!(r.rule("shop", "users", "name"), None);
        assert!(r.covers("shop", "orders"));
        assert!(r.covers("crm", "x"));
        let narrow = rules(&["shop.users.email=hash"]);
        assert!(!narrow.covers("shop", "orders"));
        assert!(!narrow.covers("shop", "user"));
    }

    #[test]
    fn values_as_each_rule_writes_them() {
        // HMAC-SHA-256("0123456789abcdef-key", "a@b.c") (Python's hmac).
        assert_eq!(
            ruled(Rule::Hash, r#""a@b.c""#),
            r#""55b81ced15999428e2cf2c8be9cdce4128b7e475cdace2c48f3c953af58c369d""#
        );
        assert_eq!(ruled(Rule::Hash, "null"), "null");
        // A string hashes its characters: escapes do not matter.
        assert_eq!(
            ruled(Rule::Hash, r#""a\u0040b.c""#),
            ruled(Rule::Hash, r#""a@b.c""#)
        );
        assert_eq!(ruled(Rule::Mask(None), r#""caf\u00e9 ☕""#), r#""******""#);
        assert_eq!(ruled(Rule::Mask(Some(3)), r#""anything""#), r#""***""#);
        assert_eq!(ruled(Rule::Mask(None), "12345"), r#""*****""#);
        assert_eq!(ruled(Rule::Truncate(3), r#""café au lait""#), r#""caf""#);
        assert_eq!(ruled(Rule::Truncate(4), r#""café""#), r#""café""#);
        assert_eq!(ruled(Rule::Truncate(2), r#""a\"bc""#), r#""a\"""#);
        assert_eq!(ruled(Rule::Truncate(9), "null"), "null");
    }

    #[test]
    fn a_definition_shows_rules_and_no_ruled_default() {
        let create = "CREATE TABLE `u` (\n  `id` int(11) NOT NULL,\n  `email` varchar(40) NOT NULL DEFAULT 'x@y.z' COMMENT 'e',\n  `at` datetime(6) DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),\n  `n` int(11) DEFAULT -5,\n  `b` bit(3) DEFAULT b'101',\n  `e` varchar(9) DEFAULT (concat('a','b')),\n  `keep` varchar(9) DEFAULT 'keep',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB";
        let cut = without_defaults(
            create,
            &[
                "email".into(),
                "at".into(),
                "n".into(),
                "b".into(),
                "e".into(),
            ],
        );
        assert_eq!(
            cut,
            "CREATE TABLE `u` (\n  `id` int(11) NOT NULL,\n  `email` varchar(40) NOT NULL COMMENT 'e',\n  `at` datetime(6) ON UPDATE current_timestamp(6),\n  `n` int(11),\n  `b` bit(3),\n  `e` varchar(9),\n  `keep` varchar(9) DEFAULT 'keep',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"
        );
    }

    #[test]
    fn statements_on_ruled_tables_lose_their_literals() {
        let r = rules(&["shop.users.email=hash"]);
        let sql = "ALTER TABLE users ADD email varchar(40) DEFAULT 'x@y.z', ADD n INT DEFAULT -42, ADD m INT DEFAULT 7";
        assert_eq!(
            r.statement("shop", "users", sql),
            "ALTER TABLE users ADD email varchar(40) DEFAULT '***', ADD n INT DEFAULT -***, ADD m INT DEFAULT ***"
        );
        assert!(matches!(
            r.statement("shop", "orders", sql),
            Cow::Borrowed(_)
        ));
    }
}
