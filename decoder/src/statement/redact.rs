//! Credentials out of a table statement's text, before it is written
//! anywhere (an event's `statement`, a definition's `createTable`, a log
//! line, an error).
//!
//! A table statement can carry a password: FEDERATED's and CONNECT's
//! `CONNECTION='mysql://user:password@host/db/t'`, CONNECT's
//! `OPTION_LIST='user=u,password=p'` and ODBC strings (`PWD=p;`), Spider's
//! `COMMENT='host "h", password "p"'`. So does a server's message quoting
//! such a statement (`... near 'CONNECTION=...'`). Each password is replaced
//! by `***`; the rest of the text stays, so the event still says what the
//! statement did. Whole text, not only string literals: a server's message
//! quotes statements with quotes of its own.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex_lite::Regex;

/// `text` with every password it carries replaced by `***`.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for (re, with) in patterns() {
        if let Cow::Owned(s) = re.replace_all(&out, *with) {
            out = Cow::Owned(s);
        }
    }
    out
}

fn patterns() -> &'static [(Regex, &'static str)] {
    static PATTERNS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            // A URL's user information: `scheme://user:password@host`.
            (
                r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s'\x22]*:)[^@/\s'\x22]*@",
                "${1}***@",
            ),
            // `password=p`, `PWD=p;`, `passwd: p`, `password "p"` (Spider):
            // after `=` or `:` any value, after blanks only a quoted one.
            (
                r#"(?i)\b(pass(?:word|wd)?|pwd)(\s*[=:]\s*)("[^"]*"|[^\s;,'")]+)"#,
                "${1}${2}***",
            ),
            (
                r#"(?i)\b(pass(?:word|wd)?|pwd)(\s+)"[^"]*""#,
                "${1}${2}\"***\"",
            ),
        ]
        .into_iter()
        .map(|(re, with)| (Regex::new(re).expect("a valid pattern"), with))
        .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_replaced_and_the_rest_stays() {
        let cases = [
            (
                "CREATE TABLE t (id INT) ENGINE=FEDERATED CONNECTION='mysql://app:s3cr:et@db.example:3306/shop/t'",
                "CREATE TABLE t (id INT) ENGINE=FEDERATED CONNECTION='mysql://app:***@db.example:3306/shop/t'",
            ),
            (
                "CREATE TABLE t (id INT) ENGINE=CONNECT TABLE_TYPE=MYSQL OPTION_LIST='user=app,Password=s3cret,port=3306'",
                "CREATE TABLE t (id INT) ENGINE=CONNECT TABLE_TYPE=MYSQL OPTION_LIST='user=app,Password=***,port=3306'",
            ),
            (
                "CREATE TABLE t (id INT) ENGINE=CONNECT TABLE_TYPE=ODBC CONNECTION='DSN=x;UID=app;PWD=s3cret;'",
                "CREATE TABLE t (id INT) ENGINE=CONNECT TABLE_TYPE=ODBC CONNECTION='DSN=x;UID=app;PWD=***;'",
            ),
            (
                r#"CREATE TABLE t (id INT) ENGINE=SPIDER COMMENT='host "h", user "app", password "s3 cret"'"#,
                r#"CREATE TABLE t (id INT) ENGINE=SPIDER COMMENT='host "h", user "app", password "***"'"#,
            ),
            (
                "You have an error in your SQL syntax; near 'CONNECTION='mysql://app:s3cret@h/d/t'' at line 1",
                "You have an error in your SQL syntax; near 'CONNECTION='mysql://app:***@h/d/t'' at line 1",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text), want);
        }
    }

    #[test]
    fn text_without_a_password_is_not_copied() {
        for text in [
            "ALTER TABLE t ADD COLUMN password VARCHAR(64) NOT NULL DEFAULT ''",
            "CREATE TABLE t (`password` TEXT, pwd INT) COMMENT='mysql://host/db'",
            "CREATE TABLE t (id INT) ENGINE=FEDERATED CONNECTION='mysql://app@h/d/t'",
        ] {
            assert!(matches!(redact(text), Cow::Borrowed(_)), "{text}");
        }
    }
}
