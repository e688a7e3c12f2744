//! Keys, transactions, schema changes, compression, missing metadata and
//! ranges (and the dump thread a range leaves), each against a real MariaDB.

use binlog_cdc::decoder::event::View;
use binlog_cdc::decoder::reader::DecodeOptions;
use binlog_cdc::decoder::Error;
use binlog_cdc::BinlogPosition;
use binlog_cdc_tests::{collect, ranged, MariaDb};
use serde_json::{json, Value};

fn both() -> DecodeOptions {
    DecodeOptions {
        view: View::Both,
        ..Default::default()
    }
}

/// The row events of `table`.
fn of<'a>(events: &'a [Value], table: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["table"] == table && e["type"] != "SchemaChangeEvent")
        .collect()
}

#[tokio::test]
async fn keys_transactions_and_schema_changes() {
    let db = MariaDb::start();
    let from = db.position();
    db.sql(
        "CREATE DATABASE s;
         CREATE TABLE s.ck (a INT, b VARCHAR(5), v INT, PRIMARY KEY (b, a));
         CREATE TABLE s.nopk (x INT, y VARCHAR(5));
         INSERT INTO s.ck VALUES (1,'p',10),(2,'p',20),(1,'q',30);
         INSERT INTO s.nopk VALUES (1,'a'),(1,'a');
         UPDATE s.ck SET v = v + 1 WHERE b = 'p';
         UPDATE s.ck SET a = 9 WHERE b = 'q';
         DELETE FROM s.nopk LIMIT 1;
         START TRANSACTION; INSERT INTO s.ck VALUES (5,'t',1); INSERT INTO s.nopk VALUES (7,'t'); COMMIT;
         ALTER TABLE s.ck ADD COLUMN w VARCHAR(3) DEFAULT 'new' AFTER a, DROP COLUMN v;
         INSERT INTO s.ck (a, b) VALUES (6, 'u');",
    );
    let (events, _) = collect::from_server(&db.url(), &from, None, both())
        .await
        .unwrap();
    let ck = of(&events, "ck");
    // A composite key keeps every column, in name order.
    assert_eq!(ck[0]["keys"], json!({"a": 1, "b": "p"}));
    assert_eq!(ck[2]["keys"], json!({"a": 1, "b": "q"}));
    // The multi-row insert is one rows event: indexes 0, 1, 2 at one position.
    assert_eq!(ck[0]["position"], ck[2]["position"]);
    assert_eq!(
        (ck[0]["index"].clone(), ck[2]["index"].clone()),
        (json!(0), json!(2))
    );
    // An update of a key column: keys are the new key, the delta has the old one.
    let moved = ck
        .iter()
        .find(|e| e["type"] == "UpdateRowsEvent" && e["keys"]["b"] == "q")
        .unwrap();
    assert_eq!(moved["keys"], json!({"a": 9, "b": "q"}));
    assert_eq!(moved["delta"]["before"], json!("{\"a\":1}"));
    assert_eq!(moved["columnsChanged"], json!(["a"]));
    // Without a primary key, keys are the whole row.
    let nopk = of(&events, "nopk");
    assert_eq!(nopk[0]["keys"], json!({"x": 1, "y": "a"}));
    assert_eq!(nopk[2]["type"], "DeleteRowsEvent");
    // One transaction across two tables: one GTID.
    let t_ck = ck.iter().find(|e| e["keys"]["b"] == "t").unwrap();
    let t_nopk = nopk.iter().find(|e| e["keys"]["y"] == "t").unwrap();
    assert_eq!(t_ck["gtid"], t_nopk["gtid"]);
    assert_ne!(ck[0]["gtid"], t_ck["gtid"]);
    // After ALTER TABLE the new column list applies: names never shift.
    let last = ck.last().unwrap();
    assert_eq!(last["newImage"], json!({"a": 6, "b": "u", "w": "new"}));
    // Before it, the old column list.
    assert_eq!(t_ck["newImage"], json!({"a": 5, "b": "t", "v": 1}));
    assert_eq!(ck.len() + nopk.len(), 3 + 2 + 2 + 1 + 1 + 1 + 1 + 1);
    // The statements, each with the table's definition after it.
    let statements: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "SchemaChangeEvent")
        .collect();
    let kinds: Vec<&Value> = statements.iter().map(|e| &e["kind"]).collect();
    assert_eq!(kinds, [&json!("create"), &json!("create"), &json!("alter")]);
    let names = |e: &Value| -> Vec<Value> {
        let columns = e["definition"]["columns"].as_array().expect("columns");
        columns.iter().map(|c| c["name"].clone()).collect()
    };
    assert_eq!(names(statements[2]), [json!("a"), json!("w"), json!("b")]);
    assert_eq!(statements[2]["definition"]["primaryKey"], json!(["b", "a"]));
    // A column added with a literal default and one dropped: the event says
    // what held rows become, no snapshot.
    assert_eq!(statements[2]["columnsAdded"], json!({"w": "new"}));
    assert_eq!(statements[2]["columnsDropped"], json!(["v"]));
    assert_eq!(statements[2]["snapshotNeeded"], false);
}

#[tokio::test]
async fn compressed_row_events_decode() {
    let db = MariaDb::start_with(&["--log-bin-compress=ON", "--log-bin-compress-min-len=10"]);
    let from = db.position();
    db.sql(
        "CREATE DATABASE c; CREATE TABLE c.t (id INT PRIMARY KEY, v TEXT);
         INSERT INTO c.t VALUES (1, REPEAT('abc', 100)), (2, REPEAT('xyz', 200));
         UPDATE c.t SET v = 'short' WHERE id = 1; DELETE FROM c.t WHERE id = 2;
         TRUNCATE TABLE c.t /* a statement long enough to be compressed */;",
    );
    let files = db.binlog_files();
    let text = db.mariadb_binlog_verbose(&files);
    assert!(
        text.contains("Write_compressed_rows") || text.contains("Write_rows_compressed"),
        "the server wrote compressed rows events"
    );
    assert!(
        text.contains("Query_compressed"),
        "the server wrote compressed query events"
    );
    let (all, stats) = collect::from_server(&db.url(), &from, None, both())
        .await
        .unwrap();
    assert_eq!(stats.total_rows(), 4, "{all:?}");
    // The statements, from compressed query events.
    let kinds: Vec<&Value> = all
        .iter()
        .filter(|e| e["type"] == "SchemaChangeEvent")
        .map(|e| &e["kind"])
        .collect();
    assert_eq!(kinds, [&json!("create"), &json!("truncate")]);
    let events = of(&all, "t");
    assert_eq!(events[1]["newImage"]["v"], json!("xyz".repeat(200)));
    assert_eq!(events[2]["delta"]["after"], json!("{\"v\":\"short\"}"));
    assert_eq!(events[3]["type"], "DeleteRowsEvent");
    // Local files decode the same.
    let (from_files, _) = collect::from_files(&files, both()).await.unwrap();
    assert_eq!(from_files.len(), all.len());
    let from_files = of(&from_files, "t");
    assert_eq!(from_files.len(), 4);
    assert_eq!(from_files[1]["newImage"], events[1]["newImage"]);
}

#[tokio::test]
async fn missing_metadata_comes_from_information_schema_or_is_an_error() {
    let db = MariaDb::start_with(&["--binlog-row-metadata=NO_LOG"]);
    let from = db.position();
    db.sql(
        "CREATE DATABASE n; CREATE TABLE n.t (id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(10), e ENUM('x','y'));
         INSERT INTO n.t VALUES (18446744073709551615, 'zoë', 'y');",
    );
    let mid = db.position();
    // From the server, information_schema fills names, signedness, charsets and labels.
    let (events, _) = collect::from_server(&db.url(), &from, Some(mid.clone()), both())
        .await
        .unwrap();
    let events = of(&events, "t");
    assert_eq!(
        events[0]["newImage"],
        json!({"id": u64::MAX, "name": "zoë", "e": "y"})
    );
    assert_eq!(events[0]["keys"], json!({"id": u64::MAX}));
    // From files there is no server to ask: a clear error naming the column.
    let err = collect::from_files(&db.binlog_files(), both())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Value { .. }), "{err}");
    assert!(err.to_string().contains("n.t.@1"), "{err}");
    // The table changed since the event: the mismatch is an error, never shifted names.
    db.sql("ALTER TABLE n.t ADD COLUMN extra INT FIRST;");
    let err = collect::from_server(&db.url(), &from, Some(mid), both())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Schema { .. }), "{err}");
    assert!(
        err.to_string().contains("n.t") && err.to_string().contains("changed"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_parse_and_no_dump_thread_outlives_a_range() {
    let db = MariaDb::start();
    ranged::to_the_end_leaves_no_dump_thread(db.url(), &|q| db.sql(q), &|| db.position()).await;
    ranged::heartbeats_arrive_and_parse(db.url(), db.position()).await;
}

#[tokio::test]
async fn ranges_boundaries_and_rotation() {
    let db = MariaDb::start();
    db.sql("CREATE DATABASE r; CREATE TABLE r.t (id INT PRIMARY KEY);");
    let p0 = db.position();
    db.sql("INSERT INTO r.t VALUES (1);");
    let p1 = db.position();
    db.sql("INSERT INTO r.t VALUES (2),(3);");
    let p2 = db.position();
    db.sql("INSERT INTO r.t VALUES (4); FLUSH BINARY LOGS; INSERT INTO r.t VALUES (5);");
    let p3 = db.position();
    assert_ne!(p2.file(), p3.file(), "rotated");
    db.sql("INSERT INTO r.t VALUES (6);");
    let ids = |events: &[Value]| {
        events
            .iter()
            .map(|e| e["keys"]["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };

    // From one transaction boundary in the middle of a file to another.
    let (ev, _) = collect::from_server(&db.url(), &p1, Some(p2.clone()), both())
        .await
        .unwrap();
    assert_eq!(ids(&ev), vec![2, 3]);
    // Across a rotation.
    let (ev, _) = collect::from_server(&db.url(), &p1, Some(p3.clone()), both())
        .await
        .unwrap();
    assert_eq!(ids(&ev), vec![2, 3, 4, 5]);
    // To the end of the log.
    let (ev, _) = collect::from_server(&db.url(), &p0, None, both())
        .await
        .unwrap();
    assert_eq!(ids(&ev), vec![1, 2, 3, 4, 5, 6]);
    // An empty range.
    let (ev, _) = collect::from_server(&db.url(), &p2, Some(p2.clone()), both())
        .await
        .unwrap();
    assert!(ev.is_empty());
    // Adjacent ranges cover everything exactly once.
    let (a, _) = collect::from_server(&db.url(), &p0, Some(p2.clone()), both())
        .await
        .unwrap();
    let (b, _) = collect::from_server(&db.url(), &p2, None, both())
        .await
        .unwrap();
    assert_eq!([ids(&a), ids(&b)].concat(), vec![1, 2, 3, 4, 5, 6]);

    // Not an event boundary.
    let inside = p1.with_pos(p1.pos() + 3);
    let err = collect::from_server(&db.url(), &inside, None, both())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadPosition { .. }), "{err}");
    let err = collect::from_server(&db.url(), &p0, Some(inside.clone()), both())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadPosition { .. }), "{err}");
    assert!(err.to_string().contains(&inside.to_string()), "{err}");
    // One past the end of a file.
    let past = p3.with_pos(p3.pos() + 100_000);
    let err = collect::from_server(&db.url(), &past, None, both())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadPosition { .. }), "{err}");
    // A purged file.
    db.sql(&format!("PURGE BINARY LOGS TO '{}';", p3.file()));
    let err = collect::from_server(&db.url(), &p1, None, both())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BinlogPurged { .. }), "{err}");
    assert!(err.to_string().contains(p1.file()), "{err}");
    assert_eq!(binlog_cdc::Error::from(err).name(), "BinlogPurged");
    // The oldest file kept still reads from its start.
    collect::from_server(
        &db.url(),
        &BinlogPosition::start_of(p3.file()),
        None,
        both(),
    )
    .await
    .expect("the oldest kept file reads from its start");
}
