//! The initial snapshot against a real MariaDB, and against Oracle's MySQL:
//! existing rows (loaded, then `RESET MASTER`, so the binlog never had them) arrive as
//! `SnapshotRowEvent`s in at least 8 ranges read in parallel, while writes
//! of every kind run on the same tables and the stream keeps committing;
//! each table rebuilt from its events in `(position, index)` order equals
//! `SELECT *`, row by row. A run that fails part-way commits nothing, and
//! the next redoes its ranges: nothing lost, nothing twice.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::{ChunkKind, Meta, RunInput};
use binlog_cdc::decoder::event::View;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc::store::{Object, ObjectStore, ObjectWriter, PutCondition};
use binlog_cdc::{Error, Result};
use binlog_cdc_tests::mysql::MySql;
use binlog_cdc_tests::replica::{select_rows, Replica};
use binlog_cdc_tests::{pipeline, MariaDb, TestServer};
use mysql_async::prelude::*;
use serde_json::Value;

const TABLES: &str = "CREATE DATABASE shop;
CREATE TABLE shop.orders (id INT PRIMARY KEY, qty INT NOT NULL, note VARCHAR(40), KEY (qty));
CREATE TABLE shop.lines (k1 VARCHAR(20) NOT NULL, k2 INT NOT NULL, price BIGINT, PRIMARY KEY (k1, k2));
CREATE TABLE shop.users (id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(40) CHARACTER SET latin1);";

/// Rows per table before the snapshot.
const ROWS: u64 = 1200;

fn config(dir: &std::path::Path) -> (Arc<LocalStore>, PipelineConfig) {
    let config = PipelineConfig {
        chunk_bytes: 16 << 10,
        view: View::Both,
        max_concurrency: 8,
        snapshot_range_rows: 150,
        snapshot_ranges_per_run: 8,
        ..Default::default()
    };
    (Arc::new(LocalStore::new(dir)), config)
}

fn load<D: TestServer>(db: &D) {
    db.sql(TABLES);
    let orders: Vec<String> = (1..=ROWS)
        .map(|i| format!("({i}, {}, 'n{i}')", i % 7))
        .collect();
    let lines: Vec<String> = (1..=ROWS)
        .map(|i| format!("('k{}', {i}, {})", i % 13, i * 100))
        .collect();
    let users: Vec<String> = (1..=ROWS)
        .map(|i| format!("({}, 'caf\u{e9} {i}')", i * 1000))
        .collect();
    db.sql(&format!(
        "INSERT INTO shop.orders VALUES {}; INSERT INTO shop.lines VALUES {}; INSERT INTO shop.users VALUES {};",
        orders.join(","),
        lines.join(","),
        users.join(",")
    ));
    // The rows now exist only in the tables, not in any binlog.
    db.sql(D::RESET_BINLOGS);
}

/// Writes of every kind on all three tables until `stop`: inserts, updates
/// of indexed and plain columns, deletes and re-inserts of the same keys,
/// primary-key updates. Returns how many statements ran.
async fn writer(url: String, stop: Arc<AtomicBool>) -> u64 {
    let mut conn = mysql_async::Conn::from_url(url)
        .await
        .expect("writer connects");
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let i = (n * 7919) % ROWS + 1;
        let sql = match n % 8 {
            0 => format!("INSERT INTO shop.orders VALUES ({}, 1, 'new') ON DUPLICATE KEY UPDATE qty = qty + 1", ROWS + n),
            1 => format!("UPDATE shop.orders SET qty = qty + 1 WHERE id = {i}"),
            2 => format!("UPDATE shop.orders SET note = 'u{n}' WHERE id = {i}"),
            3 => format!("DELETE FROM shop.orders WHERE id = {i}; INSERT IGNORE INTO shop.orders VALUES ({i}, 9, 're')"),
            4 => format!("UPDATE IGNORE shop.orders SET id = id + 1000000 WHERE id = {i}"),
            5 => format!("UPDATE shop.lines SET price = price + 1 WHERE k1 = 'k{}' AND k2 = {i}", i % 13),
            6 => format!("UPDATE IGNORE shop.lines SET k2 = k2 + 1000000 WHERE k1 = 'k{}' AND k2 = {i}", i % 13),
            _ => format!("DELETE FROM shop.users WHERE id = {}; INSERT INTO shop.users VALUES ({}, 'x{n}')", i * 1000, ROWS * 1000 + n),
        };
        conn.query_drop(sql).await.expect("a write");
    }
    n
}

/// Every committed event in the per-table objects (every run's), by table.
async fn all_events(store: &LocalStore) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for key in store.list("").await.expect("list") {
        if !key.contains("table-binlog-") || key.starts_with("staging/") {
            continue;
        }
        let obj = store.get(&key).await.expect("get").expect("listed");
        let doc: Value = serde_json::from_slice(&obj.body).expect("a JSON object");
        for e in doc["events"].as_array().expect("events") {
            let name = format!(
                "{}.{}",
                e["schema"].as_str().unwrap(),
                e["table"].as_str().unwrap()
            );
            out.entry(name).or_default().push(e.clone());
        }
    }
    out
}

/// `SELECT *` as a map by key (key columns joined by `|`).
async fn select_all(url: &str, table: &str, keys: &[&str]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for row in select_rows(url, table).await {
        let k = keys
            .iter()
            .map(|c| row[*c].to_string())
            .collect::<Vec<_>>()
            .join("|");
        out.insert(k, row);
    }
    out
}

const KEYS: [(&str, &[&str]); 3] = [
    ("shop.orders", &["id"]),
    ("shop.lines", &["k1", "k2"]),
    ("shop.users", &["id"]),
];

async fn assert_tables_rebuilt(
    db: &impl TestServer,
    store: &LocalStore,
    tables: &[(&str, &[&str])],
) -> BTreeMap<String, Vec<Value>> {
    let events = all_events(store).await;
    let replica = Replica::rebuild(events.values().flatten().cloned().collect());
    for &(table, keys) in tables {
        let rebuilt = replica.rows(table);
        let actual = select_all(&db.url(), table, keys).await;
        assert_eq!(rebuilt.len(), actual.len(), "{table}: row count");
        for (k, row) in &actual {
            assert_eq!(rebuilt.get(k), Some(row), "{table}: row {k}");
        }
    }
    events
}

fn snapshot_count(events: &[Value]) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == "SnapshotRowEvent")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_during_writes_rebuilds_every_table_exactly() {
    snapshot_during_writes(MariaDb::start(), "snapshot-writes").await;
}

/// The same on Oracle's MySQL (GTIDs on): the watermarks need nothing
/// MariaDB-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_during_writes_rebuilds_every_table_exactly_on_mysql() {
    snapshot_during_writes(MySql::start(), "snapshot-writes-mysql").await;
}

async fn snapshot_during_writes(db: impl TestServer, name: &str) {
    load(&db);
    let dir = tempdir(name);
    let (store, config) = config(&dir);
    let deps = Deps::new(store.clone(), config, db.url());

    let stop = Arc::new(AtomicBool::new(false));
    let writes = tokio::spawn(writer(db.url(), stop.clone()));
    // The first execution starts the snapshot; its runs go round until the
    // snapshot is done and the stream caught up with the writes so far.
    let input = RunInput {
        snapshot: Some(vec!["shop.*".into()]),
        ..Default::default()
    };
    let its = pipeline_driver::run_until_caught_up(&deps, input)
        .await
        .expect("snapshot runs");
    // A later execution while the writes go on: the stream alone.
    let more = pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .expect("stream run");
    stop.store(true, Ordering::Relaxed);
    let statements = writes.await.expect("writer");
    pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .expect("last run");

    let per_run: Vec<usize> = its
        .iter()
        .map(|it| {
            let chunks = it.plan.chunks.iter();
            chunks.filter(|c| c.kind == ChunkKind::Snapshot).count()
        })
        .collect();
    let ranges: usize = per_run.iter().sum();
    let widest = per_run.iter().copied().max().unwrap_or(0);
    assert!(widest >= 8, "a run read {widest} ranges at once");
    // 1200 rows in ranges of 150, three tables: at least 8 ranges each.
    assert!(ranges >= 24, "{ranges} ranges");
    assert!(its.len() >= 3, "the snapshot took {} runs", its.len());
    assert!(
        statements > 100,
        "only {statements} writes ran during the snapshot"
    );
    assert!(!more.is_empty());
    let (meta, _): (Meta, String) = pipeline::meta(&deps).await.expect("committed");
    let snap = meta.snapshot.expect("the snapshot in meta.json");
    assert!(snap.progress.done(), "{snap:?}");
    assert_eq!(
        snap.table_names,
        ["shop.lines", "shop.orders", "shop.users"]
    );
    assert_eq!(snap.progress.ranges as usize, ranges);

    let events = assert_tables_rebuilt(&db, &store, &KEYS).await;
    for (table, evs) in &events {
        assert!(snapshot_count(evs) > 0, "{table} has no snapshot rows");
        assert!(
            evs.iter().any(|e| e["type"] != "SnapshotRowEvent"),
            "{table} has no changes"
        );
    }
    // (position, index) identifies every event, snapshot rows included:
    // each range's rows sit at its own watermark's position.
    let mut ids = std::collections::BTreeSet::new();
    for e in events.values().flatten() {
        let id = (e["position"].to_string(), e["index"].as_u64().unwrap());
        assert!(ids.insert(id), "(position, index) twice: {e}");
    }
    let positions: std::collections::BTreeSet<&str> = events
        .values()
        .flatten()
        .filter(|e| e["type"] == "SnapshotRowEvent")
        .map(|e| e["position"].as_str().unwrap())
        .collect();
    // (A table's last range may be empty: every range with rows has one.)
    assert!(
        positions.len() + KEYS.len() >= ranges,
        "{} positions, {ranges} ranges",
        positions.len()
    );
    // The signal table's watermarks are never events.
    assert!(
        events.keys().all(|t| t.starts_with("shop.")),
        "{:?}",
        events.keys()
    );
}

/// A directory store that fails one snapshot range's summary once: the run
/// fails after some ranges staged their rows.
struct FailOnce {
    inner: LocalStore,
    failed: AtomicBool,
}

#[async_trait]
impl ObjectStore for FailOnce {
    async fn get(&self, key: &str) -> Result<Option<Object>> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, body: Vec<u8>, cond: PutCondition) -> Result<String> {
        if key.contains("/chunks/00003.json") && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(Error::storage(
                key.to_string(),
                "injected: the range's Lambda dies here",
                false,
            ));
        }
        self.inner.put(key, body, cond).await
    }
    async fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        self.inner.writer(key).await
    }
    async fn promote(&self, from: &str, to: &str) -> Result<bool> {
        self.inner.promote(from, to).await
    }
    async fn duplicate(&self, from: &str, to: &str) -> Result<bool> {
        self.inner.duplicate(from, to).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.inner.exists(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(prefix).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        self.inner.delete_prefix(prefix).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_range_is_redone_nothing_lost_nothing_twice() {
    let db = MariaDb::start();
    load(&db);
    let dir = tempdir("snapshot-redo");
    let (store, config) = config(&dir);
    let failing = Arc::new(FailOnce {
        inner: LocalStore::new(&dir),
        failed: AtomicBool::new(false),
    });
    let deps = Deps::new(failing.clone(), config, db.url());
    let input = RunInput {
        snapshot: Some(vec!["shop.orders".into()]),
        ..Default::default()
    };
    let err = pipeline_driver::run_until_caught_up(&deps, input.clone())
        .await
        .expect_err("the injected failure stops the run");
    assert!(err.to_string().contains("injected"), "{err}");
    assert!(
        pipeline::meta(&deps).await.is_none(),
        "a failed run commits nothing"
    );
    // The next execution asks again (nothing was committed): the same
    // ranges are read again and the rest follow.
    db.sql(
        "UPDATE shop.orders SET qty = 100 WHERE id = 5; DELETE FROM shop.orders WHERE id = 700;",
    );
    pipeline_driver::run_until_caught_up(&deps, input)
        .await
        .expect("redone");

    let events = all_events(&store).await;
    let orders = &events["shop.orders"];
    let mut seen = std::collections::BTreeSet::new();
    for e in orders.iter().filter(|e| e["type"] == "SnapshotRowEvent") {
        assert!(seen.insert(e["keys"]["id"].as_u64().unwrap()), "twice: {e}");
    }
    assert_eq!(
        seen.len() as u64,
        ROWS - 1,
        "every row once (one deleted before)"
    );
    assert_tables_rebuilt(&db, &store, &KEYS[..1]).await;
}

/// A fresh directory for one test's store.
fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("binlog-cdc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A dense integer key is cut by value (no row read to plan it), each range
/// holding at most the rows asked for; a sparse one, or a key of another
/// type, is walked.
#[tokio::test]
async fn dense_integer_keys_are_cut_by_value_others_walked() {
    use binlog_cdc::decoder::snapshot::listing::{connect, describe};
    use binlog_cdc::decoder::snapshot::ranges::{cut, range_end, Cut};
    let db = MariaDb::start();
    db.sql(
        "CREATE DATABASE k;
         CREATE TABLE k.dense (id INT PRIMARY KEY);
         CREATE TABLE k.sparse (id BIGINT PRIMARY KEY);
         CREATE TABLE k.text (id VARCHAR(8) PRIMARY KEY);
         INSERT INTO k.dense SELECT seq FROM k.seq_10_to_1009;
         INSERT INTO k.sparse SELECT seq * 1000 FROM k.seq_1_to_1000;
         INSERT INTO k.text SELECT seq FROM k.seq_1_to_1000;
         ANALYZE TABLE k.dense, k.sparse, k.text;",
    );
    let mut conn = connect(&db.url().into(), false).await.expect("connect");
    let t = describe(&mut conn, "k", "dense").await.expect("dense");
    let dense = cut(&mut conn, &t).await.expect("dense");
    assert_eq!(
        dense,
        Cut::ByValue {
            first: 10,
            last: 1009
        }
    );
    // Ranges of 300 rows from the start: 10..=309, 310..=609, 610..=909,
    // then the rest to the table's end.
    let mut after = None;
    let mut ends = Vec::new();
    loop {
        let end = range_end(&mut conn, &t, dense, after.as_deref(), 300)
            .await
            .expect("range end");
        ends.push(end.clone());
        match end {
            Some(e) => after = Some(e),
            None => break,
        }
    }
    use binlog_cdc::decoder::snapshot::KeyValue::Int;
    assert_eq!(
        ends,
        vec![
            Some(vec![Int(309)]),
            Some(vec![Int(609)]),
            Some(vec![Int(909)]),
            None
        ]
    );
    for table in ["sparse", "text"] {
        let t = describe(&mut conn, "k", table).await.expect(table);
        assert_eq!(cut(&mut conn, &t).await.expect(table), Cut::Walk, "{table}");
    }
}

/// A sink that, given a range's first row, commits an update of two keys
/// of the same range from another connection: a write while the range is
/// read.
struct WritingSink {
    url: String,
    lines: Vec<Vec<u8>>,
}

impl binlog_cdc::decoder::snapshot::RangeSink for WritingSink {
    fn row(
        &mut self,
        _table: &binlog_cdc::decoder::schema::TableMeta,
        pieces: &[&[u8]],
    ) -> impl std::future::Future<Output = binlog_cdc::decoder::Result<()>> + Send {
        self.lines.push(pieces.concat());
        let write = (self.lines.len() == 1).then(|| self.url.clone());
        async move {
            if let Some(url) = write {
                let mut conn = mysql_async::Conn::from_url(url).await.expect("connect");
                conn.query_drop("UPDATE shop.orders SET qty = qty + 1 WHERE id IN (5, 7)")
                    .await
                    .expect("update");
                conn.disconnect().await.expect("disconnect");
            }
            Ok(())
        }
    }
}

/// Keys written while their range is read are reported superseded (by
/// their index in the range), every other row is given at the range's own
/// position; parse-chunk drops the superseded ones from its staged parts.
#[tokio::test]
async fn keys_written_during_a_range_are_superseded() {
    let db = MariaDb::start();
    db.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, qty INT NOT NULL);
         INSERT INTO shop.orders SELECT seq, 0 FROM shop.seq_1_to_10;",
    );
    let range = binlog_cdc::decoder::snapshot::KeyRange {
        schema: "shop".into(),
        table: "orders".into(),
        after: None,
        upto: None,
    };
    let mut sink = WritingSink {
        url: db.url(),
        lines: Vec::new(),
    };
    let got = binlog_cdc::decoder::snapshot::read::read_range(
        &db.url().into(),
        &range,
        &Default::default(),
        4_170_200_002,
        7,
        &mut sink,
    )
    .await
    .expect("range read");
    assert_eq!(got.read, 10);
    assert_eq!(got.superseded, [4, 6], "ids 5 and 7, by index");
    assert_eq!(got.len(), 8);
    for (i, line) in sink.lines.iter().enumerate() {
        let e: Value = serde_json::from_slice(line).expect("an event");
        assert_eq!(e["index"], i as u64);
        assert_eq!(e["keys"]["id"], i as u64 + 1);
        assert_eq!(e["position"], got.position.to_string());
        assert_eq!(e["timestamp"], 7);
    }
}
