//! Splits a logged statement into tokens, each with its byte span: names
//! (bare or backquoted), string literals, punctuation. Comments are skipped;
//! executable comments (`/*!NNNNN ... */`, MariaDB's `/*M!NNNNNN ... */`)
//! are read as code, as the server reads them.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A bare word, upper-cased for keywords; `raw` keeps its case for names.
    Word {
        upper: String,
        raw: String,
    },
    /// A backquoted name, unquoted.
    Quoted(String),
    /// A string literal (its text does not matter here).
    Str,
    Punct(u8),
}

/// A token and where it is in the statement (`start..end`, bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
    /// Where the executable comment it is in starts (`/*!`), if it is in one.
    pub comment: Option<usize>,
}

pub(crate) fn tokenize(sql: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut comment = None;
    while i < sql.len() {
        let c = sql[i];
        let start = i;
        let tok = match c {
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'/' if sql.get(i + 1) == Some(&b'*') => {
                // `/*!NNNNN code */` and `/*M!NNNNNN code */` are code.
                let exec = match sql.get(i + 2) {
                    Some(b'!') => Some(i + 3),
                    Some(b'M') if sql.get(i + 3) == Some(&b'!') => Some(i + 4),
                    _ => None,
                };
                if let Some(mut j) = exec {
                    while sql.get(j).is_some_and(u8::is_ascii_digit) {
                        j += 1;
                    }
                    comment = Some(i);
                    i = j;
                } else {
                    let end = find(sql, i + 2, b"*/").unwrap_or(sql.len());
                    i = end + 2;
                }
                continue;
            }
            // An executable comment's end.
            b'*' if sql.get(i + 1) == Some(&b'/') => {
                comment = None;
                i += 2;
                continue;
            }
            b'#' => {
                i = find(sql, i, b"\n").unwrap_or(sql.len());
                continue;
            }
            b'-' if sql.get(i + 1) == Some(&b'-')
                && sql.get(i + 2).is_none_or(|b| b.is_ascii_whitespace()) =>
            {
                i = find(sql, i, b"\n").unwrap_or(sql.len());
                continue;
            }
            b'`' => {
                let mut name = Vec::new();
                let mut j = i + 1;
                while j < sql.len() {
                    if sql[j] == b'`' {
                        if sql.get(j + 1) == Some(&b'`') {
                            name.push(b'`');
                            j += 2;
                            continue;
                        }
                        break;
                    }
                    name.push(sql[j]);
                    j += 1;
                }
                i = j + 1;
                Tok::Quoted(String::from_utf8_lossy(&name).into_owned())
            }
            b'\'' | b'"' => {
                let mut j = i + 1;
                while j < sql.len() && sql[j] != c {
                    if sql[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                i = j + 1;
                Tok::Str
            }
            b if is_word_byte(b) => {
                while i < sql.len() && is_word_byte(sql[i]) {
                    i += 1;
                }
                let raw = String::from_utf8_lossy(&sql[start..i]).into_owned();
                Tok::Word {
                    upper: raw.to_ascii_uppercase(),
                    raw,
                }
            }
            b => {
                i += 1;
                Tok::Punct(b)
            }
        };
        out.push(Token {
            tok,
            start,
            end: i.min(sql.len()),
            comment,
        });
    }
    out
}

/// Letters, digits, `_`, `$` and any byte of a multi-byte UTF-8 character.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_their_spans() {
        let sql = b"ALTER /* c */ TABLE `a``b`.t ADD x INT DEFAULT 'it''s' /*!50100 PARTITION */";
        let toks = tokenize(sql);
        let text: Vec<&[u8]> = toks.iter().map(|t| &sql[t.start..t.end]).collect();
        assert_eq!(
            text,
            [
                &b"ALTER"[..],
                b"TABLE",
                b"`a``b`",
                b".",
                b"t",
                b"ADD",
                b"x",
                b"INT",
                b"DEFAULT",
                b"'it'",
                b"'s'",
                b"PARTITION"
            ]
        );
        assert_eq!(toks[2].tok, Tok::Quoted("a`b".into()));
        assert_eq!(toks[10].comment, None);
        assert_eq!(toks[11].comment, sql.windows(3).position(|w| w == b"/*!"));
    }
}
