//! The `binlog-cdc parse` command as users run it: output lines, summary,
//! exit codes and error lines.

use std::process::Command;

use binlog_cdc_tests::{fixtures_dir, MariaDb};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_binlog-cdc"))
}

/// Runs a `parse` command that must succeed: its event lines, its stderr.
fn parse_lines(cmd: &mut Command) -> (Vec<serde_json::Value>, String) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, stderr)
}

#[test]
fn help_documents_every_flag() {
    let out = bin().args(["parse", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--file",
        "--url",
        "--from",
        "--to",
        "--server-id",
        "--view",
        "--include",
        "--exclude",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn files_decode_to_lines_with_a_summary() {
    let (lines, stderr) = parse_lines(
        bin()
            .args(["parse", "--view", "new", "--file"])
            .arg(fixtures_dir().join("mysql_type_bit.000001")),
    );
    // The fixture's CREATE TABLE, then its row.
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["type"], "SchemaChangeEvent");
    assert_eq!(lines[0]["kind"], "create");
    assert!(
        lines[0].get("definition").is_none(),
        "no server to replay on"
    );
    assert_eq!(lines[1]["newImage"]["a"], 4);
    assert!(
        stderr.contains("1 row events")
            && stderr.contains("mysql.foo: WriteRowsEvent 1")
            && stderr.contains("SchemaChangeEvent create: 1"),
        "{stderr}"
    );
}

#[test]
fn bad_input_is_one_clear_line_and_a_failure() {
    let out = bin()
        .args(["parse", "--file"])
        .arg(fixtures_dir().join("binlog_truncated_event.000001"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("binlog_truncated_event.000001:4") && stderr.contains("truncated"),
        "{stderr}"
    );

    let out = bin()
        .args(["parse", "--file", "/nonexistent/binlog.000001"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/binlog.000001"));

    let out = bin()
        .args(["parse", "--url", "mysql://x@127.0.0.1:1", "--from", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad flag is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected FILE:POS"));
}

#[test]
fn glue_tables_need_parquet_on_s3() {
    let dir = std::env::temp_dir().join(format!("binlog-cdc-glue-{}", std::process::id()));
    for format in ["parquet", "jsonl"] {
        let out = bin()
            .args(["run", "--url", "mysql://x@127.0.0.1:1", "--format", format])
            .args(["--glue-database", "lake", "--out"])
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("--glue-database lake: needs --format parquet and --out s3://"),
            "{stderr}"
        );
    }
    assert!(!dir.exists(), "nothing written");
}

/// A panic inside mysql_common while decoding (here it `unwrap()`s an
/// unknown compression type in a TRANSACTION_PAYLOAD event: byte 295 of the
/// fixture, the payload's compression type field, set to 127) prints only
/// the positioned error, no panic message or backtrace.
#[test]
fn a_panic_inside_a_dependency_prints_only_the_error() {
    let mut bytes = std::fs::read(fixtures_dir().join("transaction_compression.000001")).unwrap();
    bytes[295] = 0x7f;
    let path = std::env::temp_dir().join(format!("binlog-cdc-payload-{}", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let out = bin()
        .args(["parse", "--file"])
        .arg(&path)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(":274: malformed transaction payload") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn a_server_range_with_filters() {
    let db = MariaDb::start();
    let from = db.position();
    db.sql(
        "CREATE DATABASE a; CREATE DATABASE b;
         CREATE TABLE a.t (id INT PRIMARY KEY); CREATE TABLE a.skip_me (id INT PRIMARY KEY); CREATE TABLE b.t (id INT PRIMARY KEY);
         INSERT INTO a.t VALUES (1); INSERT INTO a.skip_me VALUES (2); INSERT INTO b.t VALUES (3);",
    );
    let to = db.position();
    let mut cmd = bin();
    cmd.args([
        "parse",
        "--url",
        &db.url(),
        "--from",
        &from.to_string(),
        "--to",
        &to.to_string(),
    ])
    .args([
        "--include",
        "a.*",
        "--exclude",
        "*.skip_*",
        "--server-id",
        "91",
    ]);
    let (lines, _) = parse_lines(&mut cmd);
    // a.t's CREATE TABLE (the filter drops the other two), then its row.
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["kind"], "create");
    assert_eq!(lines[0]["table"], "t");
    assert_eq!(lines[0]["definition"]["primaryKey"][0], "id");
    assert_eq!(lines[1]["keys"]["id"], 1);
    assert!(
        lines[1].get("newImage").is_none(),
        "the default view is keys"
    );

    // A purged start: a clear, named error.
    let out = bin()
        .args(["parse", "--url", &db.url(), "--from", "binlog.999999:4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[BinlogPurged]") && stderr.contains("binlog.999999"),
        "{stderr}"
    );
}

#[test]
fn run_resumes_from_its_checkpoint_in_a_directory() {
    let db = MariaDb::start();
    let out_dir = db.dir.join("out");
    db.sql(
        "CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(10));
         INSERT INTO d.t VALUES (1,'a'),(2,'b');",
    );
    let run = |extra: &[&str]| {
        let out = bin()
            .args(["run", "--url", &db.url(), "--out"])
            .arg(&out_dir)
            .args(["--format", "jsonl", "--view", "new"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let r1 = run(&[]);
    assert_eq!(r1["committed"], true, "{r1}");
    // The CREATE TABLE and two rows.
    assert_eq!(r1["counts"]["d.t"], 3);
    assert_eq!(r1["statements"]["written"]["create"], 1);
    db.sql("UPDATE d.t SET v = 'c' WHERE id = 2; FLUSH BINARY LOGS; DELETE FROM d.t WHERE id = 1;");
    let r2 = run(&[]);
    assert_eq!(r2["from"], r1["to"], "resumes where run 1 ended");
    assert_eq!(r2["counts"]["d.t"], 2);
    // The jsonl object of run 2: one event per line, binlog order.
    let key = r2["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k.as_str().unwrap().starts_with("d/t/"))
        .unwrap();
    let text = std::fs::read_to_string(out_dir.join(key.as_str().unwrap())).unwrap();
    let types: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(types, ["UpdateRowsEvent", "DeleteRowsEvent"]);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["position"]["position"], r2["to"]);
    // A replay writes the same keys and leaves the checkpoint alone.
    let r3 = run(&[
        "--from",
        r1["from"].as_str().unwrap(),
        "--to",
        r1["to"].as_str().unwrap(),
        "--no-commit",
    ]);
    assert_eq!(r3["committed"], false);
    assert_eq!(r3["runId"], r1["runId"]);
    let meta_after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta_after, meta);
}

/// `binlog-cdc status`: healthy and caught up after a run; behind with the
/// next run's plan after more writes (nothing written by asking); after
/// `RESET MASTER`, exit 1 naming BinlogHistoryChanged.
#[test]
fn status_says_where_the_stream_stands() {
    let db = MariaDb::start();
    let out_dir = db.dir.join("out");
    db.sql(
        "SET GLOBAL binlog_expire_logs_seconds = 86400;
         CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY);
         INSERT INTO s.t VALUES (1), (2);",
    );
    let cmd = |verb: &str, extra: &[&str]| {
        bin()
            .args([verb, "--url", &db.url(), "--out"])
            .arg(&out_dir)
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(cmd("run", &[]).status.success());
    let json = |out: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };

    let out = cmd("status", &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = json(&out);
    assert_eq!(st["healthy"], true, "{st}");
    assert_eq!(st["lastRun"]["events"], 3, "{st}");
    // d.t's CREATE TABLE started its schema history.
    assert_eq!(st["schemaHistory"]["tables"], 1, "{st}");
    assert!(
        st["schemaHistory"]["location"]
            .as_str()
            .unwrap()
            .ends_with("/schemas/"),
        "{st}"
    );
    assert_eq!(st["behindBytes"], 0, "{st}");
    assert!(st["nextRun"].is_null(), "caught up: {st}");
    assert!(
        st["retentionHeadroom"]["percent"].as_f64().unwrap() > 99.0,
        "{st}"
    );

    db.sql("INSERT INTO s.t VALUES (3);");
    let meta_before = std::fs::read(out_dir.join("meta.json")).unwrap();
    let st = json(&cmd("status", &["--json"]));
    assert!(st["behindBytes"].as_u64().unwrap() > 0, "{st}");
    assert_eq!(st["nextRun"]["from"], st["checkpoint"], "{st}");
    assert_eq!(st["nextRun"]["chunks"], 1, "{st}");
    assert_eq!(
        std::fs::read(out_dir.join("meta.json")).unwrap(),
        meta_before,
        "nothing written"
    );
    let text = cmd("status", &[]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.starts_with("healthy") && text.contains("next run"),
        "{text}"
    );

    std::thread::sleep(std::time::Duration::from_millis(1100));
    db.sql("RESET MASTER; INSERT INTO s.t SELECT seq FROM s.seq_10_to_60;");
    let out = cmd("status", &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("UNHEALTHY") && text.contains("BinlogHistoryChanged:"),
        "{text}"
    );
}

/// `binlog-cdc run --snapshot`: rows that were never in the binlog arrive as
/// `SnapshotRowEvent`s in the run's objects, over several runs of small
/// ranges; `status` says the snapshot is done; a table without a primary
/// key is refused by name and nothing is committed.
#[test]
fn run_snapshot_writes_existing_rows() {
    let db = MariaDb::start();
    let out_dir = db.dir.join("out");
    db.sql(
        "CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY, v VARCHAR(10));
         INSERT INTO s.t SELECT seq, CONCAT('v', seq) FROM s.seq_1_to_50;
         CREATE TABLE s.nokey (v INT); INSERT INTO s.nokey VALUES (1);
         RESET MASTER;",
    );
    let run = |extra: &[&str]| {
        bin()
            .args(["run", "--url", &db.url(), "--out"])
            .arg(&out_dir)
            .args(["--format", "jsonl", "--snapshot-range-rows", "20"])
            .args(["--snapshot-ranges-per-run", "2"])
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = run(&["--snapshot", "s.*"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("snapshot of s.nokey") && stderr.contains("no primary key"),
        "{stderr}"
    );
    assert!(!out_dir.join("meta.json").exists(), "nothing committed");

    let out = run(&["--snapshot", "s.t"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["runs"].as_array().unwrap().len() >= 2, "{report}");
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(out_dir.join("s/t")).unwrap() {
        for day in std::fs::read_dir(entry.unwrap().path()).unwrap() {
            let text = std::fs::read_to_string(day.unwrap().path()).unwrap();
            for line in text.lines() {
                let e: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(e["type"], "SnapshotRowEvent", "{e}");
                ids.push(e["newImage"]["id"].as_u64().unwrap());
            }
        }
    }
    ids.sort();
    assert_eq!(ids, (1..=50).collect::<Vec<u64>>());

    let status = bin()
        .args(["status", "--url", &db.url(), "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("snapshot") && text.contains("1 of 1 tables"),
        "{text}"
    );
    assert!(text.contains(", done"), "{text}");
}

/// `binlog-cdc current-rows`: after a parquet run, the SQL it prints is the
/// table in DuckDB (a column added in between included); a name that is not
/// schema.table, or a table without objects, is one clear error.
#[test]
fn current_rows_prints_the_query_of_a_table() {
    let db = MariaDb::start();
    let out_dir = db.dir.join("out");
    db.sql(
        "CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(10));
         INSERT INTO d.t VALUES (1,'a'),(2,'b'),(3,'c');
         ALTER TABLE d.t ADD COLUMN n INT NOT NULL DEFAULT 7;
         UPDATE d.t SET v = 'B', n = 8 WHERE id = 2; DELETE FROM d.t WHERE id = 3;",
    );
    let run = bin()
        .args(["run", "--url", &db.url(), "--out"])
        .arg(&out_dir)
        .args(["--format", "parquet", "--view", "both"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let current = |table: &str| {
        bin()
            .args(["current-rows", table, "--out"])
            .arg(&out_dir)
            .output()
            .unwrap()
    };
    let sql = current("d.t");
    assert!(
        sql.status.success(),
        "{}",
        String::from_utf8_lossy(&sql.stderr)
    );
    let query = db.dir.join("t.sql");
    std::fs::write(&query, &sql.stdout).unwrap();
    let rows = binlog_cdc_tests::e2e_python("duckdb_query.py", &[&query]);
    let mut rows: Vec<&str> = rows.lines().collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            r#"{"id":"1","n":"7","v":"a"}"#,
            r#"{"id":"2","n":"8","v":"B"}"#
        ]
    );
    for (table, says) in [
        ("nodot", "is not schema.table"),
        ("d.missing", "no parquet objects"),
    ] {
        let out = current(table);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says) && err.lines().count() == 1, "{err}");
    }
}
