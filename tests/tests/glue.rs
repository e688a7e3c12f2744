//! The Glue tables of the `parquet` format (`GlueTables`): commit-checkpoint,
//! under its own role as the stack renders it for these parameters, on a
//! moto server that enforces IAM, keeps one Glue table per source table.
//!
//! Three runs: four tables created (one with capitals in its name, so a
//! hashed Glue name; two whose plain names are the same, raced: GetTable's
//! answers are held until both have asked, so both try to create the plain
//! name and the one refused with AlreadyExists follows again under the
//! hashed name); then a column added and one dropped; then a type changed,
//! and a table written to with no change to its columns.
//!
//! After each, every column of every object, as DuckDB (a reader nobody
//! here wrote) reads it, is in its Glue table with the same Hive type (an
//! object written before a type change excepted: docs/EVENTS.md), the Glue
//! table has no column no object has, it is Parquet projected by `dt` over
//! the table's objects, and it names its source. Glue was written to only
//! when a table was new or its columns changed, and every Glue call was
//! allowed by the role's policy down to the table (moto checks the action;
//! the recorded calls are checked against the resources).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use aws_sdk_glue::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_glue::types::DatabaseInput;
use binlog_cdc::catalog::{self, Catalog};
use binlog_cdc::config::{OutputFormat, PipelineConfig};
use binlog_cdc::contracts::RunInput;
use binlog_cdc::decoder::event::View;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc_tests::aws_local::{LocalAws, S3FaultProxy};
use binlog_cdc_tests::MariaDb;
use serde_json::{json, Value};

const BUCKET: &str = "binlog-cdc-glue";
const DATABASE: &str = "binlog_cdc";

/// A Glue table's columns, as (name, type).
type Columns = Vec<(String, String)>;

/// Each object under `dir` (recursively), as DuckDB types its columns.
fn object_columns(dir: &Path) -> BTreeMap<String, Columns> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("objects").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                files.push(p);
            }
        }
    }
    assert!(!files.is_empty(), "no objects under {}", dir.display());
    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    binlog_cdc_tests::e2e_python("parquet_types.py", &paths)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a file's columns");
            let cols = serde_json::from_value(v["columns"].clone()).expect("columns");
            (v["file"].as_str().expect("file").to_string(), cols)
        })
        .collect()
}

/// `schema.table`'s Glue table (its name, columns, parameters), read as
/// the administrator.
async fn glue_table(
    glue: &aws_sdk_glue::Client,
    name: &str,
) -> (Columns, BTreeMap<String, String>, String) {
    let t = glue
        .get_table()
        .database_name(DATABASE)
        .name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("the Glue table {name}: {e:?}"))
        .table
        .expect("a table");
    let sd = t.storage_descriptor().expect("a storage descriptor");
    let columns = sd
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.r#type().unwrap_or("").to_string()))
        .collect();
    assert_eq!(t.partition_keys()[0].name(), "dt");
    assert_eq!(t.table_type(), Some("EXTERNAL_TABLE"));
    assert!(sd
        .serde_info()
        .and_then(|s| s.serialization_library())
        .is_some_and(|l| l.ends_with("ParquetHiveSerDe")));
    let parameters = t
        .parameters()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    (columns, parameters, sd.location().unwrap_or("").to_string())
}

/// Checks `schema.table`'s Glue table `name` against its objects under
/// `out`; `stale` names columns whose type changed since older objects.
async fn assert_follows(
    glue: &aws_sdk_glue::Client,
    deps: &Deps,
    out: &Path,
    (schema, table, name): (&str, &str, &str),
    stale: &[&str],
) {
    let (columns, parameters, location) = glue_table(glue, name).await;
    let objects = deps.layout.table_objects(schema, table);
    assert_eq!(location, format!("s3://{BUCKET}/{objects}"));
    assert_eq!(parameters[catalog::SOURCE], format!("{schema}.{table}"));
    assert_eq!(parameters["projection.dt.type"], "date");
    assert_eq!(
        parameters["storage.location.template"],
        format!("s3://{BUCKET}/{objects}dt=${{dt}}/")
    );
    let glue_types: BTreeMap<&str, &str> = columns
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let files = object_columns(&out.join(&objects));
    let mut seen = std::collections::BTreeSet::new();
    // Runs within one second share a key's timestamp: the newest is the
    // last written.
    let modified = |f: &String| {
        std::fs::metadata(f)
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let newest = files
        .keys()
        .max_by_key(|f| modified(f))
        .expect("an object")
        .clone();
    for (file, cols) in &files {
        for (n, t) in cols {
            seen.insert(n.as_str());
            if n == catalog::OLD || (stale.contains(&n.as_str()) && *file != newest) {
                continue;
            }
            assert_eq!(
                glue_types.get(n.as_str()),
                Some(&t.as_str()),
                "{name}.{n} in {file}"
            );
        }
    }
    // The newest object's row before the change has every table column.
    let table_columns: Vec<String> = columns
        .iter()
        .filter(|(n, _)| !n.starts_with(catalog::EVENT_PREFIX))
        .map(|(n, t)| format!("{n}:{t}"))
        .collect();
    assert_eq!(
        glue_types[catalog::OLD],
        format!(
            "struct<{},{}:string>",
            table_columns.join(","),
            catalog::AS_JSON
        )
    );
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let unseen: Vec<&&str> = names.iter().filter(|n| !seen.contains(**n)).collect();
    assert!(
        unseen.is_empty(),
        "{name}: columns no object has: {unseen:?}"
    );
}

/// The requests the record holds, in order.
fn requests(record: &Path) -> Vec<Value> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a request"))
        .collect()
}

/// The Glue calls of `requests` that moto answered with `status`, by
/// operation.
fn glue_calls(requests: &[Value], status: u16) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in requests {
        let op = r["target"]
            .as_str()
            .and_then(|t| t.strip_prefix("AWSGlue."));
        if let Some(op) = op.filter(|_| r["status"] == status) {
            *out.entry(op.to_string()).or_insert(0) += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glue_tables_follow_each_table_under_least_privilege() {
    let db = MariaDb::start();
    let logs = db.dir.clone();
    let aws = LocalAws::start_enforcing(&logs, BUCKET).await;
    // What the stack creates: the database (AthenaDatabase), and a role
    // per function from the template, for these parameters.
    let glue = aws_sdk_glue::Client::new(&aws.sdk);
    glue.create_database()
        .database_input(DatabaseInput::builder().name(DATABASE).build().unwrap())
        .send()
        .await
        .expect("the Glue database");
    let parameters = json!({
        "AWS::StackName": "binlog-cdc", "Prefix": "cdc/",
        "DatabaseSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-admin",
        "CreateReplicationUser": "false", "OutputFormat": "parquet", "GlueTables": "true",
        "AthenaDatabaseName": DATABASE,
    });
    let roles = aws.function_roles(BUCKET, &parameters, &[]);
    let role = &roles["commit-checkpoint"].credentials;
    // commit-checkpoint's calls, under its role, through a recording proxy.
    let record = logs.join("requests.jsonl");
    let proxy = S3FaultProxy::start_with(&aws.moto.endpoint, &logs, Some(&record));
    // (A client's own endpoint: the environment's would win over the
    // shared config's.)
    let as_commit = aws_sdk_glue::config::Builder::from(&aws.sdk)
        .endpoint_url(&proxy.endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            &role.access_key_id,
            &role.secret_access_key,
            role.session_token.clone(),
            None,
            "commit-checkpoint",
        )))
        .build();

    let out = db.dir.join("out");
    let config = PipelineConfig {
        format: OutputFormat::Parquet,
        view: View::Both,
        prefix: "cdc/".into(),
        ..Default::default()
    };
    let mut deps = Deps::new(Arc::new(LocalStore::new(&out)), config, db.url());
    let as_commit = aws_sdk_glue::Client::from_conf(as_commit);
    deps.catalog = Some(Catalog::new(as_commit, DATABASE, BUCKET));
    let run = || pipeline_driver::run_until_caught_up(&deps, RunInput::default());
    let items = catalog::table_name("shop", "Items");
    assert_ne!(items, "shop_items", "a name with capitals is hashed");
    let orders = ("shop", "orders", "shop_orders");
    let items = ("shop", "Items", items.as_str());

    db.sql(
        "CREATE DATABASE shop;
         CREATE TABLE shop.orders (id BIGINT UNSIGNED PRIMARY KEY, total DECIMAL(12,2),
           placed DATETIME(6), note VARCHAR(20), tags SET('a','b'), at TIME);
         INSERT INTO shop.orders VALUES (18446744073709551615, 12.50, '2026-12-06 10:00:00.123456', 'x', 'a,b', '-01:00:00');
         CREATE TABLE shop.Items (id INT PRIMARY KEY, qty SMALLINT UNSIGNED, doc BLOB);
         INSERT INTO shop.Items VALUES (1, 2, 'abc');
         CREATE DATABASE x_y; CREATE DATABASE x;
         CREATE TABLE x_y.z (id INT PRIMARY KEY); CREATE TABLE x.y_z (id INT PRIMARY KEY, v DATE);
         INSERT INTO x_y.z VALUES (1); INSERT INTO x.y_z VALUES (1, '2026-12-06');",
    );
    // Run 1's GetTable answers are held a second, so the two tables of one
    // plain name both find it free and both create it: one is refused
    // (AlreadyExists) and follows again, under the hashed name.
    proxy.delay(Some("AWSGlue.GetTable"), 1.0);
    run().await.expect("run 1");
    proxy.delay(None, 0.0);
    // (GetTable's "not found" is a 400 too.)
    let sent = requests(&record);
    let refused = glue_calls(&sent, 400);
    assert_eq!(
        refused.get("CreateTable"),
        Some(&1),
        "the race for x_y_z: one CreateTable refused, as AlreadyExists: {refused:?}"
    );
    let refused_table = sent
        .iter()
        .find(|r| r["status"] == 400 && r["target"] == "AWSGlue.CreateTable")
        .map(|r| r["glue"]["table"].clone());
    assert_eq!(
        refused_table,
        Some(json!("x_y_z")),
        "the refused CreateTable"
    );
    assert_follows(&glue, &deps, &out, orders, &[]).await;
    assert_follows(&glue, &deps, &out, items, &[]).await;
    // Two sources of one plain name in one run: one has it, the other the
    // hashed name, whichever created first.
    let (_, plain, _) = glue_table(&glue, "x_y_z").await;
    let (first, second) = match plain[catalog::SOURCE].as_str() {
        "x_y.z" => (("x_y", "z"), ("x", "y_z")),
        _ => (("x", "y_z"), ("x_y", "z")),
    };
    assert_follows(&glue, &deps, &out, (first.0, first.1, "x_y_z"), &[]).await;
    let hashed = catalog::hashed_name(second.0, second.1);
    assert_follows(&glue, &deps, &out, (second.0, second.1, &hashed), &[]).await;
    let (cols, ..) = glue_table(&glue, "shop_orders").await;
    assert!(
        cols.contains(&("id".into(), "decimal(20,0)".into())),
        "{cols:?}"
    );
    assert!(
        cols.contains(&("tags".into(), "array<string>".into())),
        "{cols:?}"
    );

    // A column added, one dropped: the dropped one stays (older objects).
    db.sql(
        "ALTER TABLE shop.orders ADD COLUMN paid TINYINT DEFAULT 0, DROP COLUMN note;
         INSERT INTO shop.orders (id, total, paid) VALUES (2, 3.25, 1);",
    );
    run().await.expect("run 2");
    assert_follows(&glue, &deps, &out, orders, &[]).await;
    let (cols, ..) = glue_table(&glue, "shop_orders").await;
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    let note = names.iter().position(|n| *n == "note").expect("note kept");
    let paid = names.iter().position(|n| *n == "paid").expect("paid added");
    assert!(note < paid, "new columns are appended: {names:?}");

    // A type changed; a table written to with the same columns.
    db.sql(
        "ALTER TABLE shop.orders MODIFY total DECIMAL(14,3);
         UPDATE shop.orders SET total = 4.125 WHERE id = 2;
         INSERT INTO shop.Items VALUES (2, 3, 'def');",
    );
    run().await.expect("run 3");
    assert_follows(&glue, &deps, &out, orders, &["total"]).await;
    assert_follows(&glue, &deps, &out, items, &[]).await;
    let (cols, ..) = glue_table(&glue, "shop_orders").await;
    assert!(
        cols.contains(&("total".into(), "decimal(14,3)".into())),
        "{cols:?}"
    );

    // Written only when new or changed: orders in runs 2 and 3.
    let calls = glue_calls(&requests(&record), 200);
    assert_eq!(calls.get("CreateTable"), Some(&4), "{calls:?}");
    assert_eq!(calls.get("UpdateTable"), Some(&2), "{calls:?}");
    assert!(calls.contains_key("GetTable"), "{calls:?}");
    let usage = binlog_cdc_tests::iam::usage(&roles, &record);
    let commit = &usage["commit-checkpoint"];
    assert!(commit.refused.is_empty(), "{:?}", commit.refused);
    let glue_granted: Vec<&String> = commit
        .granted
        .iter()
        .filter(|a| a.starts_with("glue:"))
        .collect();
    let glue_needed: Vec<&String> = commit
        .needed
        .iter()
        .filter(|a| a.starts_with("glue:"))
        .collect();
    assert_eq!(
        glue_granted, glue_needed,
        "every Glue grant used, none missing"
    );
    assert_eq!(glue_needed.len(), 3, "{glue_needed:?}");
}
