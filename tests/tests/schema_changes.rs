//! Statements in the stream, on MariaDB and on Oracle's MySQL: TRUNCATE,
//! CREATE (also `LIKE` and `... SELECT`), ALTER (add, drop, rename, change
//! and modify columns), RENAME (several tables at once, across schemas),
//! DROP TABLE, DROP DATABASE and partition statements, interleaved with
//! inserts, updates and deletes on the same tables, some in one run and some
//! across runs, while another client writes on. Every table is rebuilt from
//! the committed events by the consumer's rule ([`Replica`]), the tables a
//! statement left needing a snapshot are snapshotted as the rule says, and
//! the replica equals the server: the same tables, row for row.
//!
//! Statements about users and passwords run between the changes: no
//! password reaches an object, a staged part or a log line.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::RunInput;
use binlog_cdc::decoder::event::View;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc::store::ObjectStore;
use binlog_cdc_tests::leaks::{committed, contains, every_file, log_lines, KeepStaging};
use binlog_cdc_tests::mysql::MySql;
use binlog_cdc_tests::replica::{select_rows, Replica};
use binlog_cdc_tests::{MariaDb, TestServer};
use mysql_async::prelude::*;
use serde_json::Value;

const PASSWORDS: [&str; 3] = ["Sekr1t-Pa55-7731", "0ther-Pa55-4410", "Th1rd-Pa55-9052"];

/// The most statements the concurrent writer runs.
const WRITES: u64 = 2000;

/// The workload, in rounds; a run follows each round. `{mariadb}` rounds
/// use MariaDB-only syntax; `port` is the server's own (a FEDERATED table
/// connects to it).
fn rounds(mariadb: bool, port: u16) -> Vec<String> {
    let mut r = vec![
        "CREATE DATABASE d; CREATE DATABASE e;
         CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20));
         CREATE TABLE d.u (id INT PRIMARY KEY, v VARCHAR(20));
         CREATE TABLE d.w (id INT PRIMARY KEY, v INT);
         CREATE TABLE d.p (id INT PRIMARY KEY, v INT) PARTITION BY RANGE (id)
           (PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN (200), PARTITION p2 VALUES LESS THAN MAXVALUE);
         CREATE TABLE e.a (id INT PRIMARY KEY, v INT);
         CREATE TABLE d.k (id INT PRIMARY KEY, v INT);
         INSERT INTO d.k VALUES (1,1),(2,2),(3,3);
         CREATE TABLE d.x (id INT PRIMARY KEY, v INT);
         INSERT INTO d.x VALUES (1,1),(2,2);
         INSERT INTO d.t VALUES (1,'a'),(2,'b'),(3,'c');
         INSERT INTO d.u VALUES (1,'a'),(2,'b');
         INSERT INTO d.p VALUES (1,1),(50,2),(150,3),(250,4);
         INSERT INTO e.a VALUES (1,1),(2,2);"
            .to_string(),
        // Across the previous run: the sequence.
        format!(
            "TRUNCATE TABLE d.t; INSERT INTO d.t VALUES (9,'z');
             TRUNCATE d.k; INSERT INTO d.k VALUES (4,4),(5,5);
             CREATE USER 'bob'@'%' IDENTIFIED BY '{}';
             ALTER TABLE d.t ADD COLUMN w INT NOT NULL DEFAULT 7; INSERT INTO d.t VALUES (10,'y',1);
             UPDATE d.u SET v = 'u1' WHERE id = 1;
             RENAME TABLE d.u TO d.u2; INSERT INTO d.u2 VALUES (3,'c'); DELETE FROM d.u2 WHERE id = 2;
             ALTER USER 'bob'@'%' IDENTIFIED BY '{}';
             TRUNCATE TABLE d.w;",
            PASSWORDS[0], PASSWORDS[1]
        ),
        // Columns renamed, changed, modified and dropped, one table twice
        // in one run; partitions truncated and dropped; LIKE and SELECT.
        "ALTER TABLE d.t CHANGE v vv VARCHAR(30); UPDATE d.t SET vv = 'q' WHERE id = 9;
         ALTER TABLE d.t MODIFY w BIGINT; INSERT INTO d.t VALUES (11,'x',5);
         ALTER TABLE d.t RENAME COLUMN vv TO v3, DROP COLUMN w;
         ALTER TABLE d.p TRUNCATE PARTITION p0; ALTER TABLE d.p DROP PARTITION p1;
         INSERT INTO d.p VALUES (160, 5);
         INSERT INTO d.k VALUES (6,6); TRUNCATE TABLE d.k; INSERT INTO d.k VALUES (7,7); UPDATE d.k SET v = 8;
         CREATE INDEX kv ON d.k (v); ALTER TABLE d.k ALTER COLUMN v SET DEFAULT 5; INSERT INTO d.k (id) VALUES (9);
         ALTER TABLE d.k ADD COLUMN n INT NULL, ADD COLUMN s VARCHAR(10) NOT NULL DEFAULT 'it''s', ADD COLUMN i BIGINT NOT NULL DEFAULT -5 FIRST;
         INSERT INTO d.k (id, v, n) VALUES (10, 1, 2); ALTER TABLE d.k DROP COLUMN n, ADD COLUMN e ENUM('x','y') DEFAULT 'y';
         ALTER TABLE d.k RENAME COLUMN s TO s2, CHANGE e e2 ENUM('x','y') DEFAULT 'y'; UPDATE d.k SET s2 = 'z' WHERE id = 9;
         CREATE TABLE d.l LIKE d.u2; INSERT INTO d.l VALUES (1,'l');
         CREATE TABLE d.s AS SELECT * FROM d.u2;
         ALTER TABLE d.x ADD COLUMN a INT NOT NULL, ADD COLUMN b VARCHAR(5) NOT NULL,
           ADD COLUMN c DECIMAL(6,2) DEFAULT '1.50', ADD COLUMN dd DATE NOT NULL DEFAULT '2020-01-02',
           ADD COLUMN en ENUM('p','q') NOT NULL, ADD COLUMN dt DATETIME(3) DEFAULT '2021-03-04 05:06:07.891';
         INSERT INTO d.x (id, v, a, b) VALUES (3, 3, 4, 'bb'); UPDATE d.x SET c = 9.99 WHERE id = 1;
         ALTER TABLE d.w ADD COLUMN extra INT NOT NULL DEFAULT 3;
         ALTER TABLE d.w ADD COLUMN u VARCHAR(40) DEFAULT (concat('a', 'b'));
         DROP USER 'bob'@'%';"
            .to_string(),
        // A table statement carrying a password (the connection string a
        // FEDERATED table takes, here in a comment, which SHOW CREATE TABLE
        // prints too).
        format!(
            "CREATE TABLE d.c (id INT PRIMARY KEY) COMMENT='mysql://app:{}@db.example/d/t';
             INSERT INTO d.c VALUES (1); ALTER TABLE d.c ADD COLUMN n INT; INSERT INTO d.c VALUES (2, 2);",
            PASSWORDS[2]
        ),
        // Several renames in one statement, across schemas, then drops.
        "RENAME TABLE d.l TO d.l2, d.s TO d.s2;
         INSERT INTO d.s2 VALUES (7,'s');
         ALTER TABLE d.l2 RENAME TO e.l3; INSERT INTO e.l3 VALUES (2,'m');
         CREATE TABLE d.gone (id INT PRIMARY KEY); INSERT INTO d.gone VALUES (1);
         ALTER TABLE d.gone ADD COLUMN c INT; DROP TABLE d.gone;
         DROP TABLE d.s2;
         DROP DATABASE e;
         CREATE DATABASE e; CREATE TABLE e.b (id INT PRIMARY KEY); INSERT INTO e.b VALUES (1);"
            .to_string(),
    ];
    if mariadb {
        // FEDERATED, connecting to this server as a user of its own.
        r.push(format!(
            "INSTALL SONAME 'ha_federatedx';
             CREATE USER 'fed'@'%' IDENTIFIED BY '{pw}'; GRANT SELECT ON d.* TO 'fed'@'%';
             CREATE TABLE d.f (id INT PRIMARY KEY, v INT) ENGINE=FEDERATED
               CONNECTION='mysql://fed:{pw}@127.0.0.1:{port}/d/x';
             DROP TABLE d.f; DROP USER 'fed'@'%';",
            pw = PASSWORDS[2]
        ));
        r.push(
            "CREATE OR REPLACE TABLE d.u2 (id INT PRIMARY KEY, n INT); INSERT INTO d.u2 VALUES (1, 1);
             CREATE TABLE IF NOT EXISTS d.u2 (id INT PRIMARY KEY); INSERT INTO d.u2 VALUES (2, 2);"
                .to_string(),
        );
    }
    r
}

/// Writes on `d.w` until `stop`, through every statement above (errors
/// while its table is being changed are expected and ignored). Paced and
/// bounded, so that the runs always catch up, however slow the machine.
async fn writer(url: String, stop: Arc<AtomicBool>) -> u64 {
    let mut conn = mysql_async::Conn::from_url(url).await.expect("connects");
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) && n < WRITES {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        n += 1;
        let sql = match n % 3 {
            0 => format!(
                "INSERT INTO d.w (id, v) VALUES ({}, {n}) ON DUPLICATE KEY UPDATE v = v + 1",
                n % 50
            ),
            1 => format!("UPDATE d.w SET v = v + 1 WHERE id = {}", (n * 7) % 50),
            _ => format!("DELETE FROM d.w WHERE id = {}", (n * 13) % 50),
        };
        if conn.query_drop(sql).await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    n
}

async fn statements_keep_the_replica_exact(db: impl TestServer, mariadb: bool, name: &str) {
    let logs = log_lines();
    let dir = std::env::temp_dir().join(format!("binlog-cdc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(LocalStore::new(&dir));
    let config = PipelineConfig {
        chunk_bytes: 8192,
        view: View::Both,
        ..Default::default()
    };
    let kept = Arc::new(KeepStaging(store.clone()));
    let deps = Deps::new(kept, config, db.url());

    let stop = Arc::new(AtomicBool::new(false));
    let mut writes = None;
    let port = db
        .url()
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|p| p.split(['?', '/']).next()?.parse().ok())
        .expect("the server's port");
    for (i, sql) in rounds(mariadb, port).iter().enumerate() {
        db.sql(sql);
        if i == 0 {
            writes = Some(tokio::spawn(writer(db.url(), stop.clone())));
        }
        pipeline_driver::run_until_caught_up(&deps, RunInput::default())
            .await
            .unwrap_or_else(|e| panic!("run after round {i}: {e}"));
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writes.expect("writer").await.expect("writer");
    assert!(writes > 20, "the writer ran {writes} statements");
    pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .expect("last run");

    let events = committed(&store).await;
    let kinds: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["type"] == "SchemaChangeEvent")
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "create",
        "alter",
        "rename",
        "drop",
        "truncate",
        "truncate-partition",
        "drop-partition",
        "drop-database",
    ] {
        assert!(kinds.contains(kind), "no {kind} event: {kinds:?}");
    }
    if mariadb {
        assert!(kinds.contains("replace"), "{kinds:?}");
    }

    // CREATE TABLE ... SELECT: its rows in its own transaction (one GTID).
    let of_s = |t: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["schema"] == "d" && e["table"] == "s" && e["type"] == t)
            .collect()
    };
    let created: Vec<&Value> = of_s("SchemaChangeEvent")
        .into_iter()
        .filter(|e| e["kind"] == "create")
        .collect();
    let rows = of_s("WriteRowsEvent");
    assert!(!rows.is_empty() && created.len() == 1, "{created:?}");
    for row in rows {
        assert_eq!(row["gtid"], created[0]["gtid"], "{row}");
        assert!(row["gtid"].is_string(), "{row}");
    }

    // The rule: tables left needing a snapshot are snapshotted.
    let replica = Replica::rebuild(events);
    let needed: Vec<String> = replica.needs_snapshot.iter().cloned().collect();
    assert!(needed.contains(&"d.t".to_string()), "{needed:?}");
    assert!(needed.contains(&"d.p".to_string()), "{needed:?}");
    // An expression default is not taken for a literal (SHOW COLUMNS prints
    // `concat('a','b')` on MariaDB): only a snapshot has the rows' values.
    assert!(needed.contains(&"d.w".to_string()), "{needed:?}");
    // An index and a default change no row, and added, dropped and renamed
    // columns (literal defaults) are carried by the events: no snapshot.
    assert!(!needed.contains(&"d.k".to_string()), "{needed:?}");
    // Implicit defaults (NOT NULL without one) and literals of other types:
    // the server's own value for a row that was there.
    assert!(!needed.contains(&"d.x".to_string()), "{needed:?}");
    let input = RunInput {
        snapshot: Some(needed),
        ..Default::default()
    };
    pipeline_driver::run_until_caught_up(&deps, input)
        .await
        .expect("snapshot runs");
    let replica = Replica::rebuild(committed(&store).await);

    let listed = db.sql(
        "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables \
         WHERE table_schema IN ('d', 'e') ORDER BY 1",
    );
    let tables: Vec<&str> = listed.lines().collect();
    let held: Vec<&str> = replica.tables.keys().map(String::as_str).collect();
    assert_eq!(
        held, tables,
        "the replica holds exactly the server's tables"
    );
    for table in tables {
        let mut rebuilt: Vec<Value> = replica.rows(table).into_values().collect();
        rebuilt.sort_by_key(|v| v.to_string());
        let actual = select_rows(&db.url(), table).await;
        assert_eq!(rebuilt, actual, "{table}");
    }

    // The statements carrying one are there, redacted.
    let events = committed(&store).await;
    let redacted: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["statement"]
                .as_str()
                .is_some_and(|s| s.contains("mysql://app:***@"))
        })
        .collect();
    assert!(!redacted.is_empty(), "no redacted statement");
    let c_defined = events.iter().any(|e| {
        e["table"] == "c"
            && e["definition"]["createTable"]
                .as_str()
                .is_some_and(|s| s.contains("mysql://app:***@"))
    });
    assert!(c_defined, "d.c's definition is not there, redacted");
    if mariadb {
        assert!(
            events.iter().any(|e| e["table"] == "f"
                && e["statement"]
                    .as_str()
                    .is_some_and(|s| s.contains("mysql://fed:***@"))),
            "the FEDERATED table's statement is not there, redacted"
        );
    }

    // No password anywhere: objects, staged parts, meta.json, log lines.
    let mut files = Vec::new();
    every_file(&dir, &mut files);
    assert!(files
        .iter()
        .any(|(p, _)| p.to_string_lossy().contains("staging")));
    let logged = logs.lock().expect("log lock").clone();
    assert!(!logged.is_empty(), "the test captured no log line");
    for password in PASSWORDS {
        for (path, body) in &files {
            assert!(
                !contains(body, password),
                "{} holds a password",
                path.display()
            );
        }
        assert!(!contains(&logged, password), "a log line holds a password");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statements_keep_the_replica_exact_on_mariadb() {
    statements_keep_the_replica_exact(MariaDb::start(), true, "statements").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statements_keep_the_replica_exact_on_mysql() {
    statements_keep_the_replica_exact(MySql::start(), false, "statements-mysql").await;
}

/// Statements one at a time; after each, the real table's definition as
/// the server shows it. Then the stream, read once all of them ran (so
/// "now" is the last one's), twice: by one decoder, and by the pipeline in
/// two runs of small chunks (a statement's definition then comes from the
/// schema history of an earlier run, or from the run's statements before
/// its chunk). Each `SchemaChangeEvent` carries the definition the real
/// table had right after its statement.
async fn definitions_are_the_servers_at_each_position(db: impl TestServer, name: &str) {
    let steps: [(&str, Option<&str>); 9] = [
        ("CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20) CHARACTER SET latin1 DEFAULT 'x', p INT, ts TIMESTAMP(3) NULL DEFAULT NULL)", Some("d.t")),
        ("ALTER TABLE d.t ADD COLUMN w INT NOT NULL DEFAULT 7 AFTER id", Some("d.t")),
        ("ALTER TABLE d.t MODIFY w BIGINT UNSIGNED NULL, CHANGE v vv VARCHAR(40) CHARACTER SET latin1 COLLATE latin1_bin", Some("d.t")),
        ("CREATE INDEX i ON d.t (vv)", Some("d.t")),
        ("ALTER TABLE d.t MODIFY p INT NOT NULL, DROP PRIMARY KEY, ADD PRIMARY KEY (id, p)", Some("d.t")),
        ("CREATE TABLE d.c LIKE d.t", Some("d.c")),
        ("ALTER TABLE d.t RENAME TO d.t2", Some("d.t2")),
        ("ALTER TABLE d.t2 ADD COLUMN z TEXT, ALGORITHM=INPLACE", Some("d.t2")),
        ("DROP TABLE d.t2", None),
    ];
    db.sql("CREATE DATABASE d");
    let dir = std::env::temp_dir().join(format!("binlog-cdc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(LocalStore::new(&dir));
    let config = PipelineConfig {
        chunk_bytes: 256,
        ..Default::default()
    };
    let deps = Deps::new(store.clone(), config, db.url());
    pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .expect("a first run");
    let from = db.position();
    let mut expected = Vec::new();
    for (i, (sql, table)) in steps.iter().enumerate() {
        // Rows between the statements, so that chunks cut between them.
        db.sql(
            &format!("{sql}; INSERT INTO d.filler VALUES ({i}, REPEAT('x', 300))").replace(
                "INSERT INTO d.filler",
                if i == 0 {
                    "CREATE TABLE d.filler (id INT PRIMARY KEY, v TEXT); INSERT INTO d.filler"
                } else {
                    "INSERT INTO d.filler"
                },
            ),
        );
        expected.push(table.map(|t| real_definition(&db, t)));
        if i == 3 {
            // A run in the middle: later statements on d.t start from the
            // schema history it commits.
            pipeline_driver::run_until_caught_up(&deps, RunInput::default())
                .await
                .expect("a run in the middle");
        }
    }
    let decoded = binlog_cdc_tests::collect::from_server(
        &db.url(),
        &from,
        None,
        binlog_cdc::decoder::reader::DecodeOptions::default(),
    )
    .await
    .expect("decode")
    .0;
    let runs = pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .expect("runs");
    assert!(runs.iter().any(|r| r.plan.chunks.len() > 3), "small chunks");
    assert!(
        store.list("schemas/d/t/").await.expect("list").len() >= 4,
        "d.t's history from the run in the middle"
    );
    let mut committed = committed(&store).await;
    committed.sort_by_key(|e| {
        let pos: binlog_cdc::BinlogPosition = e["position"].as_str().unwrap().parse().unwrap();
        (pos, e["index"].as_u64().unwrap())
    });
    committed.dedup();
    for (how, events) in [("decoded", &decoded), ("committed", &committed)] {
        let statements: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "SchemaChangeEvent" && e["table"] != "filler")
            .collect();
        assert_eq!(statements.len(), expected.len(), "{how}: {statements:#?}");
        for (e, want) in statements.iter().zip(&expected) {
            assert_definition(e, want.as_ref(), how);
        }
    }
    // The history holds the last definitions: d.c's, and d.t2 gone.
    let history = store.list("schemas/d/").await.expect("list");
    assert!(
        history.iter().any(|k| k.starts_with("schemas/d/c/")),
        "{history:?}"
    );
    let last_t2 = history
        .iter()
        .rfind(|k| k.starts_with("schemas/d/t2/"))
        .expect("d.t2");
    let v: Value =
        serde_json::from_slice(&store.get(last_t2).await.unwrap().unwrap().body).unwrap();
    assert_eq!(v["gone"], true, "{v}");
    // The replays wrote nothing to the binlog.
    assert!(!committed
        .iter()
        .any(|e| e.to_string().contains("_binlog_cdc_replay")));
}

fn assert_definition(e: &Value, want: Option<&(Vec<Value>, Value, String)>, how: &str) {
    let Some((columns, key, create)) = want else {
        assert!(e.get("definition").is_none(), "{how}: {e}");
        return;
    };
    let d = &e["definition"];
    assert!(d.is_object(), "{how}: no definition: {e}");
    let got: Vec<Value> = d["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            serde_json::json!([
                c["name"],
                c["type"],
                c["nullable"],
                c["default"],
                c["collation"]
            ])
        })
        .collect();
    assert_eq!(&got, columns, "{how}: {}", e["statement"]);
    assert_eq!(&d["primaryKey"], key, "{how}: {}", e["statement"]);
    assert_eq!(
        d["createTable"].as_str(),
        Some(create.as_str()),
        "{how}: {}",
        e["statement"]
    );
}

/// A real table's columns (name, type, nullable, default, collation), its
/// primary key and its SHOW CREATE TABLE, as the server shows them.
fn real_definition(db: &impl TestServer, table: &str) -> (Vec<Value>, Value, String) {
    let columns = db
        .sql(&format!("SHOW FULL COLUMNS FROM {table}"))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let opt = |s: &str| {
                if s == "NULL" {
                    Value::Null
                } else {
                    Value::from(s)
                }
            };
            serde_json::json!([f[0], f[1], f[3] == "YES", opt(f[5]), opt(f[2])])
        })
        .collect();
    let key: Vec<String> = db
        .sql(&format!(
            "SHOW KEYS FROM {table} WHERE Key_name = 'PRIMARY'"
        ))
        .lines()
        .map(|l| l.split('\t').nth(4).expect("Column_name").to_string())
        .collect();
    let create = db.sql(&format!("SHOW CREATE TABLE {table}"));
    let create = create
        .trim_end()
        .split_once('\t')
        .expect("name, create")
        .1
        .replace("\\n", "\n");
    (columns, Value::from(key), create)
}

#[tokio::test]
async fn definitions_are_the_servers_at_each_position_on_mariadb() {
    definitions_are_the_servers_at_each_position(MariaDb::start(), "definitions").await;
}

#[tokio::test]
async fn definitions_are_the_servers_at_each_position_on_mysql() {
    definitions_are_the_servers_at_each_position(MySql::start(), "definitions-mysql").await;
}

/// Where a statement is listed under an include filter: a rename out of the
/// set under its old name only, a rename into it under its new name only
/// (with `snapshotNeeded`), a statement about excluded tables nowhere, a
/// DROP DATABASE under `schema.*`.
#[tokio::test]
async fn a_filter_follows_renames_into_and_out_of_its_set() {
    use binlog_cdc::decoder::reader::{DecodeOptions, Decoder, RowSink};
    use binlog_cdc::decoder::source::server::ServerSource;
    use binlog_cdc::decoder::source::EventSource;

    #[derive(Default)]
    struct Listed(Vec<(String, Value)>);
    impl RowSink for Listed {
        fn row(
            &mut self,
            _: &binlog_cdc::decoder::schema::TableMeta,
            _: u32,
            _: &[u8],
        ) -> binlog_cdc::decoder::Result<()> {
            Ok(())
        }
        fn statement(
            &mut self,
            schema: &str,
            table: &str,
            _: u32,
            json: &[u8],
        ) -> binlog_cdc::decoder::Result<()> {
            self.0.push((
                format!("{schema}.{table}"),
                serde_json::from_slice(json).expect("JSON"),
            ));
            Ok(())
        }
    }

    let db = MariaDb::start();
    let from = db.position();
    db.sql(
        "CREATE DATABASE d;
         CREATE TABLE d.keep_a (id INT PRIMARY KEY); CREATE TABLE d.other_b (id INT PRIMARY KEY);
         RENAME TABLE d.keep_a TO d.gone_a;
         RENAME TABLE d.other_b TO d.keep_b;
         ALTER TABLE d.gone_a ADD COLUMN c INT;
         DROP DATABASE d;",
    );
    let filter =
        binlog_cdc::decoder::filter::TableFilter::new(vec!["d.keep_*".into()], vec![]).unwrap();
    let opts = DecodeOptions {
        filter,
        ..Default::default()
    };
    let conn = db.url().into();
    let mut source = ServerSource::open(&conn, &from, None, 71)
        .await
        .expect("open");
    let mut decoder = Decoder::new(opts);
    let mut listed = Listed::default();
    while let Some(ev) = source.next_event().await.expect("read") {
        decoder.handle(ev, &mut listed).await.expect("decode");
    }
    decoder.finish(&mut listed).expect("decode");
    let summary: Vec<(&str, &str, bool)> = listed
        .0
        .iter()
        .map(|(under, e)| {
            (
                under.as_str(),
                e["kind"].as_str().unwrap(),
                e["snapshotNeeded"] == true,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("d.keep_a", "create", false),
            ("d.keep_a", "rename", false),
            ("d.keep_b", "rename", true),
            ("d.*", "drop-database", false),
        ]
    );
    assert_eq!(listed.0[1].1["newTable"], "gone_a");
    assert_eq!(listed.0[2].1["table"], "other_b");
    assert!(listed.0[3].1.get("table").is_none());
    assert_eq!(decoder.stats().statements.values().sum::<u64>(), 4);
}
