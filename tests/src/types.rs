//! The type matrix's tables and rows, shared by the tests that write them
//! (the decoder's `type_matrix` and `mysql`, the `parquet` format's):
//! every column type with edge values, for MariaDB (with the JSON each row
//! must decode to) and MySQL.

use serde_json::{json, Value};

/// MariaDB: every column type.
pub const TABLE: &str = "CREATE TABLE m.types (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d1 DECIMAL(65,30), d2 DECIMAL(10,2), d3 DECIMAL(5,0), d4 DECIMAL(6,4),
  f FLOAT, db DOUBLE,
  dt DATE, tm0 TIME, tm3 TIME(3), tm6 TIME(6),
  dtt0 DATETIME, dtt2 DATETIME(2), dtt6 DATETIME(6),
  ts0 TIMESTAMP NULL, ts4 TIMESTAMP(4) NULL, ts6 TIMESTAMP(6) NULL, y YEAR,
  c CHAR(10), vc VARCHAR(300), l1 VARCHAR(20) CHARACTER SET latin1, asc1 VARCHAR(10) CHARACTER SET ascii,
  t TEXT, b BINARY(4), vb VARBINARY(20), bl BLOB,
  e ENUM('a','b','c d'), st SET('x','y','z'), b1 BIT(1), b64 BIT(64),
  g GEOMETRY, j JSON, u UUID
)";

/// Column order of [`TABLE`] (for inserting and for the cross-check).
pub const COLS: &[&str] = &[
    "id", "ti", "tiu", "si", "siu", "mi", "miu", "i", "iu", "bi", "biu", "d1", "d2", "d3", "d4",
    "f", "db", "dt", "tm0", "tm3", "tm6", "dtt0", "dtt2", "dtt6", "ts0", "ts4", "ts6", "y", "c",
    "vc", "l1", "asc1", "t", "b", "vb", "bl", "e", "st", "b1", "b64", "g", "j", "u",
];

/// GEOMETRY bytes: a 4-byte SRID (0), then WKB: byte order 1 (little
/// endian), type 1 (point), x and y as doubles; base64.
pub fn point(x: f64, y: f64) -> String {
    use base64::Engine;
    let mut b = vec![0u8; 4];
    b.push(1);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&x.to_le_bytes());
    b.extend_from_slice(&y.to_le_bytes());
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub fn rows() -> Vec<(String, Value)> {
    let long = format!("{}😀", "x".repeat(298));
    vec![
        // Minimums.
        (
            "(1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
              '-99999999999999999999999999999999999.999999999999999999999999999999', -12345678.90, -99999, -0.0001,
              -3.40282e38, -1.7976931348623157e308,
              '1000-01-01', '-838:59:59', '-00:00:01.500', '-838:59:59.000000',
              '1000-01-01 00:00:00', '1000-01-01 00:00:00.01', '1000-01-01 00:00:00.000001',
              '1970-01-01 00:00:01', '1970-01-01 00:00:01.0001', '1970-01-01 00:00:01.000001', 1901,
              '', '', '', '', '', 0x00000000, '', 0x00,
              'a', '', b'0', b'0', ST_GeomFromText('POINT(0 0)'), '{}', '00000000-0000-0000-0000-000000000000')"
                .into(),
            json!({"id": 1, "ti": -128, "tiu": 0, "si": -32768, "siu": 0, "mi": -8388608, "miu": 0, "i": -2147483648i64, "iu": 0,
                "bi": i64::MIN, "biu": 0,
                "d1": "-99999999999999999999999999999999999.999999999999999999999999999999", "d2": "-12345678.90", "d3": "-99999", "d4": "-0.0001",
                "f": -3.40282e38, "db": -1.7976931348623157e308,
                "dt": "1000-01-01", "tm0": "-838:59:59", "tm3": "-00:00:01.500", "tm6": "-838:59:59.000000",
                "dtt0": "1000-01-01 00:00:00", "dtt2": "1000-01-01 00:00:00.01", "dtt6": "1000-01-01 00:00:00.000001",
                "ts0": "1970-01-01T00:00:01Z", "ts4": "1970-01-01T00:00:01.0001Z", "ts6": "1970-01-01T00:00:01.000001Z", "y": 1901,
                "c": "", "vc": "", "l1": "", "asc1": "", "t": "", "b": "AAAAAA==", "vb": "", "bl": "AA==",
                "e": "a", "st": [], "b1": 0, "b64": 0,
                "g": point(0.0, 0.0), "j": "{}", "u": "AAAAAAAAAAAAAAAAAAAAAA=="}),
        ),
        // Maximums.
        (
            format!("(2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
              '99999999999999999999999999999999999.999999999999999999999999999999', 99999999.99, 99999, 12.34,
              3.40282e38, 1.7976931348623157e308,
              '9999-12-31', '838:59:59', '838:59:59.999', '838:59:59.000000',
              '9999-12-31 23:59:59', '9999-12-31 23:59:59.99', '9999-12-31 23:59:59.999999',
              '2038-01-19 03:14:07', '2038-01-19 03:14:07.9999', '2038-01-19 03:14:07.999999', 2155,
              'héllo😀', '{long}', 'café À €', '~', 'q\"uote\\\\ back\\nnew\\ttab', 0x01000000, 0x00ff00, 0xfffe00,
              'c d', 'x,z', b'1', b'1111111111111111111111111111111111111111111111111111111111111111',
              ST_GeomFromText('POINT(1.5 -2)'), '{{\"a\":[1,2.5,\"x\"]}}', 'ffffffff-ffff-ffff-ffff-ffffffffffff')"),
            json!({"id": 2, "ti": 127, "tiu": 255, "si": 32767, "siu": 65535, "mi": 8388607, "miu": 16777215, "i": 2147483647, "iu": 4294967295u64,
                "bi": i64::MAX, "biu": u64::MAX,
                "d1": "99999999999999999999999999999999999.999999999999999999999999999999", "d2": "99999999.99", "d3": "99999", "d4": "12.3400",
                "f": 3.40282e38, "db": 1.7976931348623157e308,
                "dt": "9999-12-31", "tm0": "838:59:59", "tm3": "838:59:59.999", "tm6": "838:59:59.000000",
                "dtt0": "9999-12-31 23:59:59", "dtt2": "9999-12-31 23:59:59.99", "dtt6": "9999-12-31 23:59:59.999999",
                "ts0": "2038-01-19T03:14:07Z", "ts4": "2038-01-19T03:14:07.9999Z", "ts6": "2038-01-19T03:14:07.999999Z", "y": 2155,
                "c": "héllo😀", "vc": long, "l1": "café À €", "asc1": "~", "t": "q\"uote\\ back\nnew\ttab",
                "b": "AQAAAA==", "vb": "AP8A", "bl": "//4A",
                "e": "c d", "st": ["x", "z"], "b1": 1, "b64": u64::MAX,
                "g": point(1.5, -2.0), "j": "{\"a\":[1,2.5,\"x\"]}", "u": "/////////////////////w=="}),
        ),
        // Floats that must round-trip, and NULLs everywhere else.
        (
            "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0.1, 0.1,
              NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
              NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
                .into(),
            {
                let mut v = serde_json::Map::new();
                for c in COLS {
                    v.insert(c.to_string(), Value::Null);
                }
                v.insert("id".into(), json!(3));
                v.insert("f".into(), json!(0.1));
                v.insert("db".into(), json!(0.1));
                Value::Object(v)
            },
        ),
        // Zero and partly-zero dates (sql_mode '' allows them); YEAR 0000.
        (
            "(4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1.17549435e-38, 2.2250738585072014e-308,
              '0000-00-00', '00:00:00', '00:00:00.000', '-00:00:00.000001',
              '0000-00-00 00:00:00', '2020-00-00 00:00:00.00', '2020-01-00 10:00:00.000000',
              '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', 0,
              'a  ', 'trailing  ', 0x41, 'x', 'é', 0x0000, x'', '',
              '', 'x,y,z', b'1', b'1000000000000000000000000000000000000000000000000000000000000001',
              NULL, '[]', NULL)"
                .into(),
            json!({"id": 4, "ti": 0, "tiu": 0, "si": 0, "siu": 0, "mi": 0, "miu": 0, "i": 0, "iu": 0, "bi": 0, "biu": 0,
                "d1": "0.000000000000000000000000000000", "d2": "0.00", "d3": "0", "d4": "0.0000",
                "f": 1.1754944e-38, "db": 2.2250738585072014e-308,
                "dt": "0000-00-00", "tm0": "00:00:00", "tm3": "00:00:00.000", "tm6": "-00:00:00.000001",
                "dtt0": "0000-00-00 00:00:00", "dtt2": "2020-00-00 00:00:00.00", "dtt6": "2020-01-00 10:00:00.000000",
                "ts0": "0000-00-00 00:00:00", "ts4": "0000-00-00 00:00:00.0000", "ts6": "0000-00-00 00:00:00.000000", "y": 0,
                "c": "a", "vc": "trailing  ", "l1": "A", "asc1": "x", "t": "é",
                "b": "AAAAAA==", "vb": "", "bl": "",
                "e": "", "st": ["x", "y", "z"], "b1": 1, "b64": 9223372036854775809u64,
                "g": null, "j": "[]", "u": null}),
        ),
    ]
}

/// MySQL's column types; GEOMETRY last (mysqlbinlog stops at it).
pub const MYSQL_TABLE: &str = "CREATE TABLE m.types (
  id INT PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, miu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d1 DECIMAL(65,30), d2 DECIMAL(10,2), f FLOAT, db DOUBLE,
  dt DATE, tm6 TIME(6), dtt0 DATETIME, dtt6 DATETIME(6), ts6 TIMESTAMP(6) NULL, y YEAR,
  c CHAR(10), vc VARCHAR(300), l1 VARCHAR(20) CHARACTER SET latin1, t TEXT,
  b BINARY(4), vb VARBINARY(20), bl BLOB,
  e ENUM('a','b','c d'), st SET('x','y','z'), b64 BIT(64), j JSON, v VECTOR(3), g GEOMETRY)";

pub const MYSQL_COLS: &[&str] = &[
    "id", "ti", "tiu", "si", "miu", "i", "iu", "bi", "biu", "d1", "d2", "f", "db", "dt", "tm6",
    "dtt0", "dtt6", "ts6", "y", "c", "vc", "l1", "t", "b", "vb", "bl", "e", "st", "b64", "j", "v",
    "g",
];

pub const BIG_JSON: &str = r#"{"a": [1, 2.5, "x", null, true, false], "n": {"big": 18446744073709551615, "neg": -9223372036854775808, "f": 0.1}, "s": "é😀\n\"q\""}"#;

pub fn mysql_rows() -> Vec<String> {
    let long = format!("{}😀", "x".repeat(298));
    let nines = format!("{}.{}", "9".repeat(35), "9".repeat(30));
    vec![
        format!(
            "(1, -128, 0, -32768, 0, -2147483648, 0, -9223372036854775808, 0, '-{nines}', -12345678.90,
              -3.40282e38, -1.7976931348623157e308, '1000-01-01', '-838:59:59.000000',
              '1000-01-01 00:00:00', '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01.000001', 1901,
              '', '', '', '', 0x00000000, '', 0x00, 'a', '', 0, '{{}}', TO_VECTOR('[0,0,0]'),
              ST_GeomFromText('POINT(0 0)'))"
        ),
        format!(
            "(2, 127, 255, 32767, 16777215, 2147483647, 4294967295, 9223372036854775807,
              18446744073709551615, '{nines}', 99999999.99, 3.40282e38, 1.7976931348623157e308,
              '9999-12-31', '838:59:59.000000', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999999',
              '2038-01-19 03:14:07.999999', 2155, 'héllo😀', '{long}', 'café À €',
              'q\"uote\\\\ back\\nnew\\ttab', 0x01000000, 0x00ff00, 0xfffe00, 'c d', 'x,z',
              b'1111111111111111111111111111111111111111111111111111111111111111',
              '{}', TO_VECTOR('[1.5,-2,0.1]'), ST_GeomFromText('POINT(1.5 -2)', 4326))",
            BIG_JSON.replace('\\', "\\\\")
        ),
        format!(
            "(3, {}, 0.1, 0.1, {})",
            ["NULL"; 10].join(", "),
            ["NULL"; 19].join(", ")
        ),
    ]
}
