#![recursion_limit = "512"]
//! Every column type with edge values, written by SQL here, decoded from a
//! real MariaDB's binlog over the replication protocol, compared value by
//! value with what the SQL wrote, and cross-checked against `mariadb-binlog -v`
//! (a decoder nobody here wrote) for integers, decimals and temporals.

use std::collections::BTreeMap;

use binlog_cdc::decoder::event::View;
use binlog_cdc::decoder::reader::DecodeOptions;
use binlog_cdc_tests::types::{rows, COLS, TABLE};
use binlog_cdc_tests::{collect, MariaDb};
use serde_json::{json, Value};

fn by_id(events: &[Value], kind: &str, image: &str) -> BTreeMap<i64, Value> {
    events
        .iter()
        .filter(|e| e["table"] == "types" && e["type"] == kind)
        .map(|e| (e[image]["id"].as_i64().expect("id"), e[image].clone()))
        .collect()
}

#[tokio::test]
async fn every_type_decodes_to_what_the_sql_wrote() {
    let db = MariaDb::start();
    db.sql(&format!(
        "SET GLOBAL sql_mode=''; SET GLOBAL time_zone='+00:00'; CREATE DATABASE m; {TABLE};"
    ));
    let from = db.position();
    let rows = rows();
    for (values, _) in &rows {
        db.sql(&format!(
            "SET time_zone='+00:00'; SET sql_mode=''; INSERT INTO m.types VALUES {values};"
        ));
    }
    // The snapshot reads the same rows (nothing changes while it does).
    let snapshot = collect::snapshot_images(&db.url(), "m", "types").await;
    // A multi-row update that changes two columns of every row, then deletes.
    db.sql("UPDATE m.types SET ti = 5, vc = 'changed' WHERE id IN (1, 2); DELETE FROM m.types WHERE id >= 3;");
    let to = db.position();

    let (events, stats) = collect::from_server(
        &db.url(),
        &from,
        Some(to.clone()),
        DecodeOptions {
            view: View::Both,
            ..Default::default()
        },
    )
    .await
    .expect("decode");
    let inserts = by_id(&events, "WriteRowsEvent", "newImage");
    assert_eq!(inserts.len(), rows.len());
    for (i, (_, expected)) in rows.iter().enumerate() {
        let got = &inserts[&(i as i64 + 1)];
        for (col, want) in expected.as_object().expect("object") {
            assert_eq!(&got[col], want, "row {} column {col}", i + 1);
        }
        assert_eq!(
            got.as_object().map(|o| o.len()),
            Some(COLS.len()),
            "row {} has every column",
            i + 1
        );
    }

    // The snapshot writes every value exactly as the binlog path does.
    assert_eq!(snapshot.len(), inserts.len());
    for (id, image) in &inserts {
        assert_eq!(
            snapshot.get(id),
            Some(image),
            "row {id}: snapshot and binlog differ"
        );
    }

    // Updates: keys, delta and images.
    let updates: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "UpdateRowsEvent")
        .collect();
    assert_eq!(updates.len(), 2);
    let u1 = updates
        .iter()
        .find(|e| e["keys"]["id"] == 1)
        .expect("update of row 1");
    assert_eq!(u1["columnsChanged"], json!(["ti", "vc"]));
    assert_eq!(u1["delta"]["after"], json!("{\"ti\":5,\"vc\":\"changed\"}"));
    assert_eq!(u1["delta"]["before"], json!("{\"ti\":-128,\"vc\":\"\"}"));
    assert_eq!(u1["oldImage"]["d1"], rows[0].1["d1"]);
    assert_eq!(u1["newImage"]["ti"], json!(5));
    let deletes = by_id(&events, "DeleteRowsEvent", "oldImage");
    assert_eq!(deletes.keys().copied().collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!(deletes[&4]["st"], json!(["x", "y", "z"]));
    assert_eq!(stats.total_rows(), 8);

    // Positions and indexes are unique and ordered.
    let mut seen = std::collections::BTreeSet::new();
    for e in &events {
        let pos: binlog_cdc::BinlogPosition = e["position"].as_str().unwrap().parse().unwrap();
        assert!(pos < to);
        assert!(
            seen.insert((pos, e["index"].as_u64().unwrap())),
            "duplicate {e}"
        );
        assert!(
            e["gtid"].as_str().is_some_and(|g| g.starts_with("0-1-")),
            "MariaDB GTID on {e}"
        );
    }

    // Independent reading: mariadb-binlog -v over the same files.
    let text = db.mariadb_binlog_verbose(&db.binlog_files());
    let theirs = binlog_cdc_tests::verbose_rows(&text, "`m`.`types`", COLS.len());
    assert_eq!(theirs.iter().filter(|r| r.0 == "INSERT").count(), 4);
    assert_eq!(theirs.iter().filter(|r| r.0 == "UPDATE").count(), 2);
    assert_eq!(theirs.iter().filter(|r| r.0 == "DELETE").count(), 2);
    let mut checked = 0;
    for (_, values) in theirs.iter().filter(|r| r.0 == "INSERT") {
        let id: i64 = values[0].parse().expect("id");
        let ours = &inserts[&id];
        for (n, col) in COLS.iter().enumerate() {
            if cross_check(col, &values[n], &ours[*col]) {
                checked += 1;
            }
        }
    }
    assert!(checked >= 60, "cross-checked {checked} values");
}

/// MariaDB's own types, whose query text is not their stored bytes (UUID,
/// INET6, INET4), written alike by the snapshot and the binlog path.
#[tokio::test]
async fn mariadb_types_snapshot_as_the_binlog_logs_them() {
    let db = MariaDb::start();
    db.sql("CREATE DATABASE m; CREATE TABLE m.ids (id INT PRIMARY KEY, u UUID, a INET6, b INET4);");
    let from = db.position();
    db.sql(
        "INSERT INTO m.ids VALUES \
         (1, '6ccd780c-baba-1026-9564-5b8c656024db', '2001:db8::ff00:42:8329', '192.0.2.1'), \
         (2, 'f47ac10b-58cc-4372-a567-0e02b2c3d479', '::ffff:192.0.2.128', '0.0.0.0'), \
         (3, '01890a5d-ac96-774b-bcce-b302099a8057', '::', '255.255.255.255'), \
         (4, '00000000-0000-0000-c000-000000000046', NULL, NULL);",
    );
    let to = db.position();
    let (events, _) = collect::from_server(
        &db.url(),
        &from,
        Some(to),
        DecodeOptions {
            view: View::Both,
            ..Default::default()
        },
    )
    .await
    .expect("decode");
    let binlog = events
        .iter()
        .filter(|e| e["table"] == "ids")
        .map(|e| {
            (
                e["newImage"]["id"].as_i64().expect("id"),
                e["newImage"].clone(),
            )
        })
        .collect::<BTreeMap<_, _>>();
    let snapshot = collect::snapshot_images(&db.url(), "m", "ids").await;
    assert_eq!(binlog.len(), 4);
    assert_eq!(snapshot, binlog);
}

/// Compares one value where mariadb-binlog's text is unambiguous; returns
/// whether it compared anything.
fn cross_check(col: &str, theirs: &str, ours: &Value) -> bool {
    if theirs == "NULL" {
        assert!(ours.is_null(), "{col}: mariadb-binlog NULL, ours {ours}");
        return true;
    }
    let unquoted = theirs.trim_matches('\'');
    match col {
        // Integers: mariadb-binlog prints "signed (unsigned)" when they differ.
        "id" | "ti" | "tiu" | "si" | "siu" | "mi" | "miu" | "i" | "iu" | "bi" | "biu" => {
            binlog_cdc_tests::assert_same_integer(col, theirs, ours);
            true
        }
        "d1" | "d2" | "d3" | "d4" => {
            assert_eq!(Some(unquoted), ours.as_str(), "{col}");
            true
        }
        // Quirk of mariadb-binlog: it prints DATE as 'YYYY:MM:DD'.
        "dt" => {
            assert_eq!(
                Some(unquoted.replace(':', "-").as_str()),
                ours.as_str(),
                "{col}"
            );
            true
        }
        "dtt0" | "dtt2" | "dtt6" | "tm0" | "tm3" | "tm6" => {
            assert_eq!(Some(unquoted), ours.as_str(), "{col}");
            true
        }
        _ => false,
    }
}
