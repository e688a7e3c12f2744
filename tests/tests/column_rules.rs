//! Column rules against a real MariaDB and Oracle's MySQL: recognisable
//! values (emails, card numbers, passwords, phone numbers, notes, tokens) in
//! hashed, excluded, masked and truncated columns, a hashed primary key and
//! a hashed column in a second table, through a snapshot and the binlog,
//! updates that change ruled columns and updates that do not, an ALTER
//! that adds a ruled column with a secret default, over two executions.
//!
//! Then every byte written under the store (staged parts included: the
//! store never deletes), every log line of the test process and the text of
//! a refused run are searched for each clear value: none is there. The
//! tables rebuilt by the consumer's rule equal `SELECT *` with the rules
//! applied, the hashes computed by Python's `hmac` (an independent
//! implementation): equal values hash equal across tables and runs.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::RunInput;
use binlog_cdc::decoder::column_rules::HashKey;
use binlog_cdc::decoder::event::View;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc::store::ObjectStore;
use binlog_cdc_tests::leaks::{committed, contains, every_file, log_lines, KeepStaging};
use binlog_cdc_tests::mysql::MySql;
use binlog_cdc_tests::replica::{select_rows, Replica};
use binlog_cdc_tests::{MariaDb, TestServer};
use serde_json::Value;

const KEY: &str = "column-rules-test-key-5f0c2a9e";

const TABLES: &str = "CREATE DATABASE crm;
CREATE TABLE crm.people (email VARCHAR(80) PRIMARY KEY, name VARCHAR(40) NOT NULL,
  phone VARCHAR(20), card VARCHAR(19), password VARCHAR(40) NOT NULL DEFAULT 'Default-Secret-1', note TEXT);
CREATE TABLE crm.orders (id INT PRIMARY KEY, buyer_email VARCHAR(80) NOT NULL, total INT NOT NULL);";

const RULES: [&str; 7] = [
    "crm.people.email=hash",
    "crm.people.password=exclude",
    "crm.people.card=mask",
    "crm.people.phone=truncate(4)",
    "*.*.note=mask(3)",
    "crm.*.buyer_email=hash",
    "crm.people.token=hash",
];

/// A piece of every clear value the workload writes in a ruled column
/// (what `truncate(4)` keeps of a phone number, `+44 `, is not one).
const CLEAR: [&str; 7] = [
    ".secret@example.com",
    "4111-1111-1111",
    "Hunter2-Secret",
    "Default-Secret",
    "20 7946",
    "private note",
    "tok-Secret",
];

/// Rows per table before the snapshot.
const ROWS: u32 = 200;

fn email(i: u32) -> String {
    format!("p{i}.secret@example.com")
}

fn load<D: TestServer>(db: &D) {
    db.sql(TABLES);
    let people: Vec<String> = (1..=ROWS)
        .map(|i| {
            let phone = if i % 10 == 0 {
                "NULL".to_string()
            } else {
                format!("'+44 20 7946 {i:04}'")
            };
            format!(
                "('{}', 'name {i}', {phone}, '4111-1111-1111-{i:04}', 'Hunter2-Secret-{i}', 'private note {i}')",
                email(i)
            )
        })
        .collect();
    let orders: Vec<String> = (1..=ROWS)
        .map(|i| format!("({i}, '{}', {})", email(i % 50 + 1), i * 10))
        .collect();
    db.sql(&format!(
        "INSERT INTO crm.people VALUES {}; INSERT INTO crm.orders VALUES {};",
        people.join(","),
        orders.join(",")
    ));
    db.sql(D::RESET_BINLOGS);
}

/// Changes of every kind to ruled and unruled columns.
fn first_writes<D: TestServer>(db: &D) {
    db.sql(&format!(
        "INSERT INTO crm.people VALUES ('{e}', 'new', '+44 20 7946 1000', '4111-1111-1111-1000', 'Hunter2-Secret-1000', 'private note new');
         UPDATE crm.people SET card = '4111-1111-1111-9999' WHERE email = '{p1}';
         UPDATE crm.people SET password = 'Hunter2-Secret-changed' WHERE email = '{p2}';
         UPDATE crm.people SET name = 'renamed' WHERE email = '{p3}';
         UPDATE crm.people SET email = 'p4b.secret@example.com' WHERE email = '{p4}';
         DELETE FROM crm.people WHERE email = '{p5}';
         UPDATE crm.orders SET buyer_email = '{p7}' WHERE id = 3;",
        e = email(1000),
        p1 = email(1),
        p2 = email(2),
        p3 = email(3),
        p4 = email(4),
        p5 = email(5),
        p7 = email(7),
    ));
}

/// A second execution's changes, after the snapshot recorded the tables'
/// definitions: an ALTER that adds a hashed column with a secret default,
/// and the first execution's new email in another table.
fn second_writes<D: TestServer>(db: &D) {
    db.sql(&format!(
        "UPDATE crm.orders SET buyer_email = '{}' WHERE id = 4;
         ALTER TABLE crm.people ADD COLUMN token VARCHAR(40) NOT NULL DEFAULT 'tok-Secret-Default-9';
         INSERT INTO crm.people VALUES ('{}', 'tok', NULL, NULL, 'Hunter2-Secret-1001', NULL, 'tok-Secret-1001');
         UPDATE crm.people SET token = 'tok-Secret-2000', phone = '+44 20 7946 2000' WHERE email = '{}';",
        email(1000),
        email(1001),
        email(6)
    ));
}

/// HMAC-SHA-256 under [`KEY`] of each value, by Python's `hmac`.
fn python_hmac(values: &[String]) -> HashMap<String, String> {
    let script = "import hmac, hashlib, json, sys\n\
        key = sys.argv[1].encode()\n\
        print(json.dumps([hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in json.load(sys.stdin)]))";
    let mut child = Command::new("python3")
        .args(["-c", script, KEY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let input = serde_json::to_vec(values).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().expect("python3's output");
    assert!(out.status.success());
    let hashes: Vec<String> = serde_json::from_slice(&out.stdout).expect("a JSON list");
    values.iter().cloned().zip(hashes).collect()
}

/// A row of `SELECT *` as the rules write it.
fn ruled(table: &str, row: &Value, hashes: &HashMap<String, String>) -> Value {
    let mut out = serde_json::Map::new();
    for (column, v) in row.as_object().unwrap() {
        let text = v.as_str();
        let value = match (table, column.as_str(), text) {
            (_, _, None) => v.clone(),
            ("crm.people", "password", _) => continue,
            ("crm.people", "email" | "token", Some(t)) | ("crm.orders", "buyer_email", Some(t)) => {
                Value::from(hashes[t].clone())
            }
            ("crm.people", "card", Some(t)) => Value::from("*".repeat(t.chars().count())),
            ("crm.people", "phone", Some(t)) => Value::from(t.chars().take(4).collect::<String>()),
            ("crm.people", "note", Some(_)) => Value::from("***"),
            _ => v.clone(),
        };
        out.insert(column.clone(), value);
    }
    Value::Object(out)
}

async fn deps(
    store: Arc<dyn ObjectStore>,
    url: String,
    rules: &[&str],
) -> binlog_cdc::Result<Deps> {
    let config = PipelineConfig {
        chunk_bytes: 16 << 10,
        view: View::Both,
        snapshot_range_rows: 50,
        column_rules: rules.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    };
    config.validate()?;
    let mut deps = Deps::new(store, config, url);
    deps.column_rules_keyed(Some(HashKey::new(KEY.as_bytes()).expect("a key")))
        .await?;
    Ok(deps)
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "binlog-cdc-column-rules-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn no_clear_value_leaves(db: impl TestServer, name: &str) {
    let logs = log_lines();
    load(&db);
    first_writes(&db);
    let dir = tempdir(name);
    let local = Arc::new(LocalStore::new(&dir));
    let deps = deps(Arc::new(KeepStaging(local.clone())), db.url(), &RULES)
        .await
        .expect("rules");
    let input = RunInput {
        snapshot: Some(vec!["crm.*".into()]),
        ..Default::default()
    };
    pipeline_driver::run_until_caught_up(&deps, input)
        .await
        .expect("the first execution");
    // The snapshot's ranges sit past the first execution's checkpoint: the
    // ALTER is read in the same run as them, and starts from the
    // definition the first range recorded.
    second_writes(&db);
    pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .expect("the second execution");

    // A run the rules refuse (a key column excluded) fails naming the
    // column, and its error holds no value.
    let refused_dir = tempdir(&format!("{name}-refused"));
    let refused = deps_refusing(&db, &refused_dir).await;
    assert!(refused.contains("crm.people.email"), "{refused}");

    // The rebuilt tables are the source tables with the rules applied.
    let events = committed(&local).await;
    let replica = Replica::rebuild(events.clone());
    let people = select_rows(&db.url(), "crm.people").await;
    let orders = select_rows(&db.url(), "crm.orders").await;
    let mut clear: Vec<String> = Vec::new();
    for row in &people {
        clear.extend(
            ["email", "token"]
                .iter()
                .filter_map(|c| row[*c].as_str().map(String::from)),
        );
    }
    clear.extend(
        orders
            .iter()
            .filter_map(|r| r["buyer_email"].as_str().map(String::from)),
    );
    clear.extend([
        email(1),
        email(2),
        email(4),
        "tok-Secret-Default-9".to_string(),
    ]);
    let hashes = python_hmac(&clear);
    // The ALTER: its added column's value ruled, its literal gone, the
    // definition showing rules and no ruled default.
    let alter = events
        .iter()
        .find(|e| e["kind"] == "alter" && e["table"] == "people")
        .expect("the ALTER's event");
    assert_eq!(
        alter["columnsAdded"]["token"],
        Value::from(hashes["tok-Secret-Default-9"].clone()),
        "{alter}"
    );
    assert_eq!(alter["snapshotNeeded"], false, "{alter}");
    assert!(
        alter["statement"]
            .as_str()
            .unwrap()
            .contains("DEFAULT '***'"),
        "{alter}"
    );
    let columns = alter["definition"]["columns"].as_array().expect("columns");
    let password = columns.iter().find(|c| c["name"] == "password").unwrap();
    assert_eq!(password["rule"], "exclude");
    assert_eq!(password["default"], Value::Null);
    let name_column = columns.iter().find(|c| c["name"] == "name").unwrap();
    assert!(name_column.get("rule").is_none(), "{name_column}");

    for (table, rows) in [("crm.people", &people), ("crm.orders", &orders)] {
        let key = if table == "crm.people" { "email" } else { "id" };
        let want: BTreeMap<String, Value> = rows
            .iter()
            .map(|r| ruled(table, r, &hashes))
            .map(|r| (r[key].to_string(), r))
            .collect();
        let rebuilt = replica.rows(table);
        assert_eq!(rebuilt.len(), want.len(), "{table}: rows");
        for (k, row) in &want {
            assert_eq!(rebuilt.get(k), Some(row), "{table}: row {k}");
        }
    }
    assert_eq!(
        people.len() as u32,
        ROWS + 1,
        "people: one deleted, two added"
    );

    // Hashes equal across tables and runs: p1000's email was a key in the
    // first execution, a buyer in the second.
    let h1000 = Value::from(hashes[&email(1000)].clone());
    let as_key = events
        .iter()
        .any(|e| e["table"] == "people" && e["keys"]["email"] == h1000);
    let as_buyer = events
        .iter()
        .any(|e| e["table"] == "orders" && e["newImage"]["buyer_email"] == h1000);
    assert!(
        as_key && as_buyer,
        "p1000's hash as a key {as_key}, as a buyer {as_buyer}"
    );

    // Changes are decided on the clear values: a card change is a change
    // (written masked), a password change is no column's.
    let update = |who: &str| {
        let h = Value::from(hashes[who].clone());
        events
            .iter()
            .find(|e| e["type"] == "UpdateRowsEvent" && e["keys"]["email"] == h)
            .unwrap_or_else(|| panic!("the update of {who}"))
            .clone()
    };
    let card = update(&email(1));
    assert_eq!(
        card["columnsChanged"],
        serde_json::json!(["card"]),
        "{card}"
    );
    assert_eq!(card["delta"]["after"], r#"{"card":"*******************"}"#);
    let password = update(&email(2));
    assert_eq!(
        password["columnsChanged"],
        serde_json::json!([]),
        "{password}"
    );
    assert!(password["newImage"].get("password").is_none(), "{password}");

    // A hashed key's table is one snapshot range (its bounds would be
    // clear keys); the other table is cut.
    let ranges = |table: &str| {
        let positions: std::collections::BTreeSet<&str> = events
            .iter()
            .filter(|e| e["table"] == table && e["type"] == "SnapshotRowEvent")
            .map(|e| e["position"].as_str().unwrap())
            .collect();
        positions.len()
    };
    assert_eq!(ranges("people"), 1);
    assert!(
        ranges("orders") >= 4,
        "orders in {} ranges",
        ranges("orders")
    );

    // Nothing anywhere holds a clear value: objects, staged parts, the
    // schema history, meta.json, log lines, the refused run's error.
    let mut files = Vec::new();
    every_file(&dir, &mut files);
    every_file(&refused_dir, &mut files);
    assert!(files
        .iter()
        .any(|(p, _)| p.to_string_lossy().contains("staging")));
    assert!(files
        .iter()
        .any(|(p, _)| p.to_string_lossy().contains("schemas")));
    let logged = logs.lock().expect("log lock").clone();
    assert!(!logged.is_empty(), "the test captured no log line");
    for value in CLEAR {
        for (path, body) in &files {
            assert!(!contains(body, value), "{} holds {value:?}", path.display());
        }
        assert!(!contains(&logged, value), "a log line holds {value:?}");
        assert!(!refused.contains(value), "the refusal holds {value:?}");
    }
}

/// The text of a run whose rules exclude a key column.
async fn deps_refusing(db: &impl TestServer, dir: &std::path::Path) -> String {
    let store = Arc::new(LocalStore::new(dir));
    let deps = deps(store, db.url(), &["crm.people.email=exclude"])
        .await
        .expect("rules");
    let err = pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .expect_err("a key column excluded");
    assert_eq!(err.name(), "ConfigError", "{err}");
    err.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_clear_value_leaves_on_mariadb() {
    no_clear_value_leaves(MariaDb::start(), "mariadb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_clear_value_leaves_on_mysql() {
    no_clear_value_leaves(MySql::start(), "mysql").await;
}
