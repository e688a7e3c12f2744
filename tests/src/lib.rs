//! Test support: a throwaway MariaDB with binary logging, on a free port in a
//! temporary directory, stopped by its pid when dropped.
//!
//! `MariaDb::start()` installs nothing; `scripts/test.sh` makes sure
//! `mariadbd` is present (installing Debian's `mariadb-server` if not).
//! [`mysql::MySql`] is the same for Oracle's MySQL.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running throwaway server. Dropping it stops the server and deletes its data.
pub struct MariaDb {
    pub dir: PathBuf,
    pub port: u16,
    /// Behind a lock so that a test can crash and restart the server while
    /// other threads use it.
    child: std::sync::Mutex<Child>,
    extra: Vec<String>,
}

/// The user every test connects as (all privileges, password `cdc`).
pub const USER: &str = "cdc";
pub const PASSWORD: &str = "cdc";

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
            .map(|p| p.join(bin))
            .find(|p| p.is_file())
    })
}

/// Starts `mariadbd` on `dir`'s data directory (made by mariadb-install-db)
/// and waits until it answers on `port`; the error log's text on failure.
fn spawn_mariadbd(dir: &Path, port: u16, extra: &[String]) -> Result<Child, String> {
    let mariadbd = which("mariadbd").ok_or("mariadbd is not installed")?;
    let tmp = dir.join("tmp");
    let mut cmd = Command::new(&mariadbd);
    let settings = workspace_root().join("scripts/mariadbd.cnf");
    cmd.arg(format!("--defaults-file={}", settings.display()))
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--socket={}", dir.join("sock").display()))
        .arg(format!("--tmpdir={}", tmp.display()))
        .arg(format!("--port={port}"))
        .arg(format!("--log-bin={}", dir.join("data/binlog").display()))
        .arg(format!("--log-error={}", dir.join("err.log").display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().map_err(|e| format!("start mariadbd: {e}"))?;
    wait_until_serving(child, dir, port, Duration::from_secs(30))
}

/// A new directory for one throwaway server (`kind`: mariadb, mysql), under
/// `BINLOG_CDC_TEST_TMP` or the system's temporary directory.
fn server_dir(kind: &str) -> PathBuf {
    let base = std::env::var_os("BINLOG_CDC_TEST_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = base.join(format!("binlog-cdc-{kind}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a server directory");
    dir
}

/// Waits until a server just spawned on `dir` answers on its socket and on
/// `port`; else stops it and returns its error log (`dir/err.log`).
fn wait_until_serving(
    mut child: Child,
    dir: &Path,
    port: u16,
    within: Duration,
) -> Result<Child, String> {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if dir.join("sock").exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(std::fs::read_to_string(dir.join("err.log")).unwrap_or_default())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl MariaDb {
    /// Starts a server with ROW binlogs, FULL row images and FULL row metadata.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `mariadbd` options (later ones win).
    pub fn start_with(extra: &[&str]) -> Self {
        which("mariadbd").expect(
            "mariadbd is not installed: run scripts/test.sh, which installs mariadb-server",
        );
        let install = which("mariadb-install-db").expect("mariadb-install-db is not installed");
        let dir = server_dir("mariadb");
        // Each server gets its own tmpdir: with the default (/tmp) a bootstrap
        // once failed in CI on "Could not remove temporary table
        // '/tmp/#sql-temptable-...'" while other servers were starting.
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp dir");
        // mariadb-install-db is retried on a fresh data directory: a failed
        // bootstrap leaves a half-made one behind.
        let mut install_err = String::new();
        let mut installed = false;
        for attempt in 0..3 {
            let data = dir.join("data");
            if attempt > 0 {
                let _ = std::fs::remove_dir_all(&data);
                std::thread::sleep(Duration::from_millis(200));
            }
            let out = Command::new(&install)
                .args([
                    "--no-defaults",
                    "--user=root",
                    "--auth-root-authentication-method=socket",
                ])
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--tmpdir={}", tmp.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .expect("run mariadb-install-db");
            if out.status.success() {
                installed = true;
                break;
            }
            install_err = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        assert!(
            installed,
            "mariadb-install-db failed 3 times: {install_err}"
        );

        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn_mariadbd(&dir, port, &extra) {
                Ok(child) => {
                    let db = MariaDb {
                        dir: dir.clone(),
                        port,
                        child: std::sync::Mutex::new(child),
                        extra,
                    };
                    db.sql_socket(&format!(
                        "CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
                         GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'%' WITH GRANT OPTION; \
                         CREATE USER '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}'; \
                         DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES; \
                         GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'localhost' WITH GRANT OPTION; \
                         RESET MASTER;"
                    ));
                    return db;
                }
                Err(e) => last_err = e,
            }
        }
        panic!("mariadbd did not start:\n{last_err}");
    }

    /// Kills the server (SIGKILL: a crash, not a shutdown) and starts it again
    /// on the same port and data; returns once it accepts connections.
    pub fn crash_and_restart(&self) {
        self.restart_after_crash(|| {});
    }

    /// Copies the data directory aside while the server is idle (as a
    /// storage snapshot would); returns the copy.
    pub fn copy_data(&self, name: &str) -> PathBuf {
        let copy = self.dir.join(name);
        let out = Command::new("cp")
            .arg("-a")
            .arg(self.dir.join("data"))
            .arg(&copy)
            .output()
            .expect("cp");
        assert!(out.status.success(), "cp -a data: {out:?}");
        copy
    }

    /// Crashes the server, puts `copy` (from [`Self::copy_data`]) back as its
    /// data directory, and starts it again on the same port: a restore.
    pub fn restore_data(&self, copy: &Path) {
        let data = self.dir.join("data");
        self.restart_after_crash(|| {
            std::fs::remove_dir_all(&data).expect("remove data");
            let out = Command::new("cp")
                .arg("-a")
                .arg(copy)
                .arg(&data)
                .output()
                .expect("cp");
            assert!(out.status.success(), "cp -a copy: {out:?}");
        });
    }

    fn restart_after_crash(&self, while_down: impl FnOnce()) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(self.dir.join("sock"));
        while_down();
        let mut last_err = String::new();
        for _ in 0..20 {
            match spawn_mariadbd(&self.dir, self.port, &self.extra) {
                Ok(new) => {
                    *child = new;
                    return;
                }
                Err(e) => last_err = e,
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "mariadbd did not restart on port {}:\n{last_err}",
            self.port
        );
    }

    /// `mysql://cdc:cdc@127.0.0.1:PORT` (TCP only, no socket switch).
    pub fn url(&self) -> String {
        format!(
            "mysql://{USER}:{PASSWORD}@127.0.0.1:{}?prefer_socket=false",
            self.port
        )
    }

    /// Where the binlog files are.
    pub fn binlog_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs SQL as root over the socket with the `mariadb` client; panics on error.
    pub fn sql_socket(&self, sql: &str) -> String {
        let mut client = Command::new(which("mariadb").expect("mariadb client"));
        client
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.dir.join("sock").display()));
        client_sql(client, sql)
    }

    /// Runs SQL (several statements allowed) and returns the output rows, tab-separated.
    pub fn sql(&self, sql: &str) -> String {
        self.sql_socket(sql)
    }

    /// The server's current binlog position.
    pub fn position(&self) -> binlog_cdc::BinlogPosition {
        let out = self.sql("SHOW MASTER STATUS");
        let mut cols = out.split('\t');
        let file = cols.next().expect("file").to_string();
        let pos: u64 = cols
            .next()
            .expect("pos")
            .trim()
            .parse()
            .expect("pos number");
        binlog_cdc::BinlogPosition::new(file, pos)
    }

    /// The binlog files, oldest first.
    pub fn binlog_files(&self) -> Vec<PathBuf> {
        self.sql("SHOW BINARY LOGS")
            .lines()
            .filter_map(|l| l.split('\t').next())
            .map(|f| self.binlog_dir().join(f))
            .collect()
    }

    /// `mariadb-binlog -v` over the given files: an independent decoder's reading.
    pub fn mariadb_binlog_verbose(&self, files: &[PathBuf]) -> String {
        let out = Command::new(which("mariadb-binlog").expect("mariadb-binlog"))
            .arg("--no-defaults")
            .args(["-v", "--base64-output=decode-rows"])
            .args(files)
            .output()
            .expect("run mariadb-binlog");
        assert!(
            out.status.success(),
            "mariadb-binlog failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        if std::env::var_os("BINLOG_CDC_KEEP_DB").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// What a test needs of a throwaway server, MariaDB's or MySQL's.
pub trait TestServer {
    /// Empties the binary log (and on MySQL the executed GTIDs): rows
    /// loaded before it are in the tables only.
    const RESET_BINLOGS: &'static str;
    /// The pipeline's connection URL.
    fn url(&self) -> String;
    /// Runs SQL as root; returns the rows, tab-separated; panics on error.
    fn sql(&self, sql: &str) -> String;
    /// The binlog's current end.
    fn position(&self) -> binlog_cdc::BinlogPosition;
}

impl TestServer for MariaDb {
    const RESET_BINLOGS: &'static str = "RESET MASTER";
    fn url(&self) -> String {
        MariaDb::url(self)
    }
    fn sql(&self, sql: &str) -> String {
        MariaDb::sql(self, sql)
    }
    fn position(&self) -> binlog_cdc::BinlogPosition {
        MariaDb::position(self)
    }
}

/// Runs SQL as root with a command-line client (`mariadb` or `mysql`) given
/// its connection options, on its standard input (one argument may not pass
/// 128 KiB); returns the rows, tab-separated; panics on error.
fn client_sql(mut client: Command, sql: &str) -> String {
    use std::io::Write;
    let mut child = client
        .args([
            "-uroot",
            "--default-character-set=utf8mb4",
            "--batch",
            "--skip-column-names",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the SQL client");
    let mut stdin = child.stdin.take().expect("stdin");
    let text = sql.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().expect("the SQL client's output");
    let _ = writer.join();
    let shown: String = sql.chars().take(2000).collect();
    assert!(
        out.status.success(),
        "SQL failed: {shown}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The rows of `table` in `mariadb-binlog -v` or `mysqlbinlog -v` output
/// (`### INSERT INTO `db`.`t`` blocks): (kind, the `@N` values of the row
/// image, at most `columns`).
pub fn verbose_rows(text: &str, table: &str, columns: usize) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("### ") else {
            continue;
        };
        for (prefix, kind) in [
            ("INSERT INTO ", "INSERT"),
            ("UPDATE ", "UPDATE"),
            ("DELETE FROM ", "DELETE"),
        ] {
            if let Some(t) = rest.strip_prefix(prefix) {
                out.extend(current.take());
                if t == table {
                    current = Some((kind.to_string(), Vec::new()));
                }
            }
        }
        if let (Some(cur), Some(v)) = (current.as_mut(), rest.trim_start().strip_prefix('@')) {
            if let Some((_, value)) = v.split_once('=') {
                // For updates keep only the before image (WHERE): enough to count.
                if cur.1.len() < columns {
                    cur.1.push(value.to_string());
                }
            }
        }
    }
    out.extend(current);
    out
}

/// An integer as `mariadb-binlog -v` or `mysqlbinlog -v` prints it equals
/// ours: they print "signed (unsigned)" where the two readings differ.
pub fn assert_same_integer(col: &str, theirs: &str, ours: &serde_json::Value) {
    let first = theirs.split(' ').next().unwrap_or_default();
    let alt = theirs
        .split_once(" (")
        .map_or(first, |(_, a)| a.trim_end_matches(')'));
    let ours = ours.to_string();
    assert!(
        ours == first || ours == alt,
        "{col}: the server's tool printed {theirs}, ours {ours}"
    );
}

/// The workspace root (for fixtures and the built binary).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// The real binlog files from rust_mysql_common's test data
/// (`tests/fixtures/mysql_common`, with their provenance and licence).
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("tests/fixtures/mysql_common")
}

/// Every binlog file in [`fixtures_dir`] (not its README and licences), sorted.
pub fn fixture_files() -> Vec<PathBuf> {
    let dir = fixtures_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixtures at {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            !name.starts_with("README") && !name.starts_with("LICENSE")
        })
        .collect();
    files.sort();
    files
}

pub mod iam;
pub mod leaks;
pub mod mysql;
pub mod replica;

/// Decodes with the library and collects every event as parsed JSON.
pub mod collect {
    use binlog_cdc::reader::{DecodeOptions, Decoder, RowSink, Stats};
    use binlog_cdc::schema::TableMeta;
    use binlog_cdc::source::file::FileSource;
    use binlog_cdc::source::server::{InformationSchema, ServerSource};
    use binlog_cdc::{BinlogPosition, Result};
    use serde_json::Value;

    #[derive(Default)]
    pub struct Collect(pub Vec<Value>);

    impl RowSink for Collect {
        fn row(&mut self, _: &TableMeta, _: u32, json: &[u8]) -> Result<()> {
            self.0
                .push(serde_json::from_slice(json).expect("every event is valid JSON"));
            Ok(())
        }

        /// A statement's event once (a rename comes under both names).
        fn statement(&mut self, _: &str, _: &str, _: u32, json: &[u8]) -> Result<()> {
            let event: Value = serde_json::from_slice(json).expect("every event is valid JSON");
            if self.0.last() != Some(&event) {
                self.0.push(event);
            }
            Ok(())
        }
    }

    /// Reads `[from, to)` from a server.
    pub async fn from_server(
        url: &str,
        from: &BinlogPosition,
        to: Option<BinlogPosition>,
        opts: DecodeOptions,
    ) -> Result<(Vec<Value>, Stats)> {
        let db = url.into();
        let mut src = ServerSource::open(&db, from, to, 77).await?;
        let lookup = InformationSchema::connect(&db).await?;
        let replay = binlog_cdc::source::replay::ServerReplay::new(&db);
        let mut dec = Decoder::new(opts)
            .with_lookup(Box::new(lookup))
            .with_definitions(Box::new(replay), None);
        let mut sink = Collect::default();
        dec.run(&mut src, &mut sink).await?;
        Ok((sink.0, dec.stats().clone()))
    }

    /// Reads whole files, keeping the events decoded before an error.
    pub async fn from_files_until_error(
        files: &[std::path::PathBuf],
        opts: DecodeOptions,
    ) -> (Vec<Value>, Option<binlog_cdc::Error>) {
        let mut src = FileSource::new(files);
        let mut dec = Decoder::new(opts);
        let mut sink = Collect::default();
        let res = dec.run(&mut src, &mut sink).await;
        (sink.0, res.err())
    }

    /// Reads whole files.
    pub async fn from_files(
        files: &[std::path::PathBuf],
        opts: DecodeOptions,
    ) -> Result<(Vec<Value>, Stats)> {
        let mut src = FileSource::new(files);
        let mut dec = Decoder::new(opts);
        let mut sink = Collect::default();
        dec.run(&mut src, &mut sink).await?;
        Ok((sink.0, dec.stats().clone()))
    }

    /// A snapshot of the whole table (one range): each row's `newImage` by id.
    pub async fn snapshot_images(
        url: &str,
        schema: &str,
        table: &str,
    ) -> std::collections::BTreeMap<i64, Value> {
        let range = binlog_cdc::snapshot::KeyRange {
            schema: schema.into(),
            table: table.into(),
            after: None,
            upto: None,
        };
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let got = binlog_cdc::snapshot::read::read_range(
            &url.into(),
            &range,
            &Default::default(),
            4_170_200_001,
            0,
            &mut lines,
        )
        .await
        .expect("snapshot read");
        assert!(
            got.superseded.is_empty(),
            "nothing changed while the range was read"
        );
        assert_eq!(got.read, lines.len() as u64);
        lines
            .iter()
            .map(|line| {
                let event: Value = serde_json::from_slice(line).expect("an event");
                assert_eq!(event["type"], "SnapshotRowEvent");
                let image = event["newImage"].clone();
                (image["id"].as_i64().expect("id"), image)
            })
            .collect()
    }
}

/// Runs the pipeline's handlers in order, in-process (what `binlog-cdc run`
/// does), and reads back what a run committed.
pub mod pipeline {
    use binlog_cdc::contracts::{CommitOutput, Meta, RunInput, RunPlan};
    use binlog_cdc::pipeline::Deps;
    use binlog_cdc::Result;
    use serde_json::Value;

    /// An independent reading of `[from, to)` on the server (`binlog-cdc
    /// parse`'s decoder, both images), by `schema.table`: what committed
    /// outputs are checked against.
    pub async fn independent(
        url: &str,
        from: &binlog_cdc::BinlogPosition,
        to: &binlog_cdc::BinlogPosition,
    ) -> std::collections::BTreeMap<String, Vec<Value>> {
        independent_under(url, from, to, Default::default()).await
    }

    /// [`independent`] under column rules.
    pub async fn independent_under(
        url: &str,
        from: &binlog_cdc::BinlogPosition,
        to: &binlog_cdc::BinlogPosition,
        rules: binlog_cdc::column_rules::ColumnRules,
    ) -> std::collections::BTreeMap<String, Vec<Value>> {
        let (all, _) = super::collect::from_server(
            url,
            from,
            Some(to.clone()),
            binlog_cdc::reader::DecodeOptions {
                view: binlog_cdc::event::View::Both,
                rules,
                ..Default::default()
            },
        )
        .await
        .expect("independent parse");
        by_table(all)
    }

    /// One iteration (one budgeted run); returns the plan and the commit
    /// (None when nothing to do).
    pub async fn run(deps: &Deps, input: RunInput) -> Result<(RunPlan, Option<CommitOutput>)> {
        let it = pipeline_driver::run_iteration(deps, input, Default::default()).await?;
        Ok((it.plan, it.commit))
    }

    /// Stages an empty fan-out plan for `run_id`, so that CommitCheckpoint
    /// can be called for a run whose staging is gone (to test its checks).
    pub async fn stage_empty_fan_out(deps: &Deps, run_id: &str) {
        let fan = binlog_cdc::contracts::FanOutPlan {
            run_id: run_id.to_string(),
            ..Default::default()
        };
        let key = deps.layout.fan_out_plan(run_id);
        binlog_cdc::store::put_json(deps.store.as_ref(), &key, &fan)
            .await
            .expect("stage a fan-out plan");
    }

    /// The committed checkpoint.
    pub async fn meta(deps: &Deps) -> Option<(Meta, String)> {
        binlog_cdc::checkpoint::read(deps.store.as_ref(), &deps.layout)
            .await
            .expect("read meta")
    }

    /// Events grouped by `schema.table`, order kept.
    pub fn by_table(events: Vec<Value>) -> std::collections::BTreeMap<String, Vec<Value>> {
        let mut m: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
        for e in events {
            // A statement about a whole schema is listed under `schema.*`.
            let table = format!(
                "{}.{}",
                e["schema"].as_str().expect("schema"),
                e["table"].as_str().unwrap_or("*")
            );
            m.entry(table).or_default().push(e);
        }
        m
    }

    /// Committed events equal an independent reading, table by table, in order.
    pub fn assert_same_events(
        committed: &std::collections::BTreeMap<String, Vec<Value>>,
        independent: &std::collections::BTreeMap<String, Vec<Value>>,
    ) {
        assert_eq!(
            committed.keys().collect::<Vec<_>>(),
            independent.keys().collect::<Vec<_>>()
        );
        for (t, evs) in independent {
            assert_eq!(committed[t].len(), evs.len(), "{t}: count");
            assert!(committed[t] == *evs, "{t}: events differ");
        }
    }

    /// Every event in the per-table objects a meta.json names, by `schema.table`.
    pub async fn committed_events(
        deps: &Deps,
        meta: &Meta,
    ) -> std::collections::BTreeMap<String, Vec<Value>> {
        let mut out = std::collections::BTreeMap::new();
        for key in meta.outputs.iter().filter(|k| k.contains("table-binlog-")) {
            let obj = deps
                .store
                .get(key)
                .await
                .expect("get")
                .unwrap_or_else(|| panic!("{key} is missing"));
            let doc: Value = serde_json::from_slice(&obj.body).expect("a JSON object");
            let events = doc["events"].as_array().expect("events").clone();
            assert_eq!(
                doc["count"].as_u64(),
                Some(events.len() as u64),
                "{key} count"
            );
            // The object's table, from its key (a rename's event in the
            // new name's object names the old one).
            let relative = key.strip_prefix(deps.layout.prefix()).unwrap_or(key);
            let mut segments = relative.split('/');
            let (schema, table) = (segments.next().unwrap(), segments.next().unwrap());
            out.entry(format!("{schema}.{table}"))
                .or_insert_with(Vec::new)
                .extend(events);
        }
        out
    }
}

/// The local AWS stand-ins for end-to-end tests: moto server (S3 and Secrets
/// Manager) and `cargo lambda watch` serving the real function binaries.
/// `scripts/test.sh` installs both into `.venv/e2e`.
pub mod aws_local {
    use std::io::Read;
    use std::net::TcpStream;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::{free_port, workspace_root};

    fn venv_bin(name: &str) -> PathBuf {
        let p = workspace_root().join(".venv/e2e/bin").join(name);
        assert!(
            p.exists(),
            "{} is missing: run scripts/test.sh, which installs it",
            p.display()
        );
        p
    }

    /// Kills a child process (and its process group) when dropped.
    pub struct Proc(pub Child, pub String);

    impl Drop for Proc {
        fn drop(&mut self) {
            let pid = self.0.id() as i32;
            // The process group: cargo lambda watch starts children of its own.
            // Signal the whole group (cargo lambda watch starts children of
            // its own). The child leads its own group (process_group(0)), so
            // -pid is exactly that group; never 0 or -1.
            if pid > 1 {
                // SAFETY: kill(2) with a negative pid signals one process group.
                unsafe {
                    libc::kill(-pid, libc::SIGTERM);
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn spawn_group(mut cmd: Command, name: &str, log: &std::path::Path) -> Proc {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        cmd.stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        Proc(
            cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}")),
            name.to_string(),
        )
    }

    /// A moto server on a free port.
    pub struct Moto {
        pub endpoint: String,
        _proc: Proc,
    }

    impl Moto {
        pub fn start(log_dir: &std::path::Path) -> Self {
            Self::start_with(log_dir, false)
        }

        /// `enforce`: every request after the first
        /// [`crate::iam::UNCHECKED_REQUESTS`] is checked against its
        /// caller's IAM policies.
        pub fn start_with(log_dir: &std::path::Path, enforce: bool) -> Self {
            let port = free_port();
            let mut cmd = Command::new(venv_bin("moto_server"));
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            if enforce {
                cmd.env(
                    "INITIAL_NO_AUTH_ACTION_COUNT",
                    crate::iam::UNCHECKED_REQUESTS.to_string(),
                );
            }
            let proc = spawn_group(cmd, "moto_server", &log_dir.join("moto.log"));
            let endpoint = format!("http://127.0.0.1:{port}");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if http("GET", &endpoint, "/moto-api/", b"").is_ok() {
                    return Self {
                        endpoint,
                        _proc: proc,
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            panic!(
                "moto_server did not start; see {}",
                log_dir.join("moto.log").display()
            );
        }
    }

    /// moto server with what every end-to-end test needs in it: the
    /// process's AWS settings pointed at it, a bucket, and the state machine
    /// as Step Functions knows it (for ListExecutions; executions run locally
    /// do not show there, one started in moto stays RUNNING).
    pub struct LocalAws {
        pub moto: Moto,
        /// Whose credentials the test's own calls use: an administrator
        /// when moto enforces IAM ([`LocalAws::start_enforcing`]).
        pub admin: Option<crate::iam::Credentials>,
        pub sdk: aws_config::SdkConfig,
        pub s3: aws_sdk_s3::Client,
        pub secrets: aws_sdk_secretsmanager::Client,
        pub sfn: aws_sdk_sfn::Client,
        pub machine_arn: String,
    }

    impl LocalAws {
        pub async fn start(log_dir: &std::path::Path, bucket: &str) -> Self {
            Self::start_on(Moto::start(log_dir), None, bucket).await
        }

        /// moto enforcing IAM: this process calls as an administrator;
        /// the functions get roles of their own ([`LocalAws::function_roles`]).
        pub async fn start_enforcing(log_dir: &std::path::Path, bucket: &str) -> Self {
            let moto = Moto::start_with(log_dir, true);
            let admin = crate::iam::bootstrap(&moto.endpoint);
            Self::start_on(moto, Some(admin), bucket).await
        }

        async fn start_on(
            moto: Moto,
            admin: Option<crate::iam::Credentials>,
            bucket: &str,
        ) -> Self {
            let (key, secret) = admin.as_ref().map_or(("testing", "testing"), |a| {
                (a.access_key_id.as_str(), a.secret_access_key.as_str())
            });
            for (k, v) in [
                ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
                ("AWS_ACCESS_KEY_ID", key),
                ("AWS_SECRET_ACCESS_KEY", secret),
                ("AWS_REGION", "us-east-1"),
            ] {
                std::env::set_var(k, v);
            }
            let sdk = binlog_cdc::aws::sdk_config().await;
            let s3 = binlog_cdc::aws::s3_client(&sdk);
            s3.create_bucket()
                .bucket(bucket)
                .send()
                .await
                .expect("create bucket");
            let sfn = aws_sdk_sfn::Client::new(&sdk);
            let definition = std::fs::read_to_string(
                workspace_root().join("statemachine/binlog-pipeline.asl.json"),
            )
            .expect("definition");
            let machine = sfn
                .create_state_machine()
                .name("binlog-cdc-pipeline")
                .definition(definition)
                .role_arn("arn:aws:iam::123456789012:role/binlog-cdc")
                .send()
                .await
                .expect("create state machine in moto");
            Self {
                secrets: aws_sdk_secretsmanager::Client::new(&sdk),
                machine_arn: machine.state_machine_arn().to_string(),
                moto,
                admin,
                sdk,
                s3,
                sfn,
            }
        }

        /// An SQS queue that receives what matches `pattern` (an
        /// EventBridge event pattern) on the default bus; returns its URL.
        pub async fn events_to_queue(&self, name: &str, pattern: &str) -> String {
            let sqs = aws_sdk_sqs::Client::new(&self.sdk);
            let url = sqs
                .create_queue()
                .queue_name(name)
                .send()
                .await
                .expect("create queue")
                .queue_url()
                .unwrap_or_default()
                .to_string();
            let events = aws_sdk_eventbridge::Client::new(&self.sdk);
            events
                .put_rule()
                .name(name)
                .event_pattern(pattern)
                .send()
                .await
                .expect("put rule");
            let target = aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(format!("arn:aws:sqs:us-east-1:123456789012:{name}"))
                .build()
                .expect("target");
            events
                .put_targets()
                .rule(name)
                .targets(target)
                .send()
                .await
                .expect("put targets");
            url
        }

        /// Every event waiting in the queue at `url` (EventBridge's envelope:
        /// `source`, `detail-type`, `detail`, ...), removed from it.
        pub async fn drain_queue(&self, url: &str) -> Vec<serde_json::Value> {
            let sqs = aws_sdk_sqs::Client::new(&self.sdk);
            let mut out = Vec::new();
            loop {
                let got = sqs
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .send()
                    .await
                    .expect("receive");
                if got.messages().is_empty() {
                    return out;
                }
                for m in got.messages() {
                    out.push(serde_json::from_str(m.body().unwrap_or("null")).expect("an event"));
                    sqs.delete_message()
                        .queue_url(url)
                        .set_receipt_handle(m.receipt_handle().map(str::to_string))
                        .send()
                        .await
                        .expect("delete message");
                }
            }
        }

        /// The function settings that point at this moto (`endpoint`: moto
        /// itself, or a proxy in front of it).
        pub fn lambda_env(&self, endpoint: &str) -> Vec<(&'static str, String)> {
            vec![
                ("AWS_ENDPOINT_URL", endpoint.to_string()),
                ("AWS_ACCESS_KEY_ID", "testing".into()),
                ("AWS_SECRET_ACCESS_KEY", "testing".into()),
                ("AWS_REGION", "us-east-1".into()),
            ]
        }

        /// A role per function, its policy rendered from
        /// `infra/template.yaml` for `parameters`, with the bucket and the
        /// state machine as this moto has them and `secrets` (resource name
        /// to ARN: `ReplicationSecret`); needs [`LocalAws::start_enforcing`].
        pub fn function_roles(
            &self,
            bucket: &str,
            parameters: &serde_json::Value,
            secrets: &[(&str, &str)],
        ) -> std::collections::BTreeMap<String, crate::iam::Role> {
            let admin = self.admin.as_ref().expect("moto enforcing IAM");
            let mut resources = serde_json::json!({
                "OutputBucket": {"Ref": bucket, "Arn": format!("arn:aws:s3:::{bucket}")},
            });
            for (name, arn) in secrets {
                resources[*name] = serde_json::json!({ "Ref": arn });
            }
            crate::iam::roles(
                &self.moto.endpoint,
                admin,
                &workspace_root().join("infra/template.yaml"),
                parameters,
                &resources,
            )
        }

        /// A secret in the RDS format; returns its ARN.
        pub async fn db_secret(&self, name: &str, port: u16, user: &str, password: &str) -> String {
            self.secrets
                .create_secret()
                .name(name)
                .secret_string(
                    serde_json::json!({"host": "127.0.0.1", "port": port, "username": user, "password": password})
                        .to_string(),
                )
                .send()
                .await
                .expect("create secret")
                .arn()
                .unwrap_or_default()
                .to_string()
        }
    }

    /// A fault-injecting proxy in front of moto (tests/e2e/s3-fault-proxy.py):
    /// off until [`S3FaultProxy::fail_every`] turns it on.
    pub struct S3FaultProxy {
        pub endpoint: String,
        _proc: Proc,
    }

    impl S3FaultProxy {
        pub fn start(upstream: &str, log_dir: &std::path::Path) -> Self {
            Self::start_with(upstream, log_dir, None)
        }

        /// `record`: every request forwarded is appended there (caller's
        /// access key, method, path; see the script).
        pub fn start_with(
            upstream: &str,
            log_dir: &std::path::Path,
            record: Option<&std::path::Path>,
        ) -> Self {
            let port = free_port();
            let mut cmd = Command::new(venv_bin("python3"));
            cmd.arg(workspace_root().join("tests/e2e/s3-fault-proxy.py"))
                .arg(port.to_string())
                .arg(upstream);
            if let Some(r) = record {
                cmd.arg(r);
            }
            let proc = spawn_group(cmd, "s3-fault-proxy", &log_dir.join("s3-fault-proxy.log"));
            let endpoint = format!("http://127.0.0.1:{port}");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let p = Self {
                        endpoint,
                        _proc: proc,
                    };
                    p.fail_every(0);
                    return p;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            panic!("s3-fault-proxy did not start");
        }

        /// Fails every `n`th request from now on (0: none); returns the
        /// proxy's counters (`requests`, `faults`) so far.
        pub fn fail_every(&self, n: u32) -> serde_json::Value {
            let (status, body) = http(
                "POST",
                &self.endpoint,
                "/__faults",
                format!("{{\"every\": {n}}}").as_bytes(),
            )
            .expect("s3-fault-proxy control");
            assert_eq!(status, 200);
            serde_json::from_slice(&body).expect("counters")
        }
    }

    /// Runs the state machine definition once, locally (tests/e2e/
    /// run-state-machine.mjs: aws-local-stepfunctions, each task invoking the
    /// function through `lambda`). `options` as that script documents (faults
    /// to inject, a state to start from). Returns its result line:
    /// `{"status": "SUCCEEDED", "output"}` or `{"status": "FAILED", "error",
    /// "cause", "failedState", "redriveInput"}`.
    pub fn run_state_machine(
        lambda: &LambdaWatch,
        input: &serde_json::Value,
        execution: &str,
        options: &serde_json::Value,
    ) -> serde_json::Value {
        let definition = workspace_root().join("statemachine/binlog-pipeline.asl.json");
        run_definition(&definition, &lambda.url, input, execution, options)
    }

    /// Runs any definition through run-state-machine.mjs (see
    /// [`run_state_machine`]); `lambda_url` serves its functions.
    pub fn run_definition(
        definition: &std::path::Path,
        lambda_url: &str,
        input: &serde_json::Value,
        execution: &str,
        options: &serde_json::Value,
    ) -> serde_json::Value {
        let root = workspace_root();
        // One argument may not pass 128 KiB: a large input goes in a file.
        let mut input = input.to_string();
        if input.len() > 64 << 10 {
            let path = std::env::temp_dir().join(format!("binlog-cdc-input-{execution}.json"));
            std::fs::write(&path, &input).expect("input file");
            input = format!("@{}", path.display());
        }
        let mut child = Command::new("node")
            .arg(root.join("tests/e2e/run-state-machine.mjs"))
            .arg(definition)
            .arg(lambda_url)
            .arg(input)
            .arg(format!(
                "arn:aws:states:us-east-1:123456789012:execution:binlog-cdc-pipeline:{execution}"
            ))
            .arg(options.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run node");
        // Read while it runs: a line larger than the pipe would block it.
        let read = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_string(&mut text);
                }
                text
            })
        };
        let stdout = read(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stderr = read(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        // An execution that never ends is a failure to report, not a hang.
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().ok().flatten() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(900) {
                let _ = child.kill();
                panic!("execution {execution} did not end within 900 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let line = stdout.join().unwrap_or_default();
        let err = stderr.join().unwrap_or_default();
        assert!(status.success(), "runner failed: {err}");
        serde_json::from_str(line.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("runner output {line:?}: {e}"))
    }

    /// `cargo lambda watch` serving every function binary of the workspace
    /// (or, per function, one each behind a router: [`LambdaWatch::per_function`]).
    pub struct LambdaWatch {
        pub url: String,
        _procs: Vec<Proc>,
    }

    impl LambdaWatch {
        pub fn start(env: &[(&str, String)], log_dir: &std::path::Path) -> Self {
            let (port, proc) = Self::watch(env, log_dir, "lambda");
            Self {
                url: format!("http://127.0.0.1:{port}"),
                _procs: vec![proc],
            }
        }

        /// One `cargo lambda watch` per function binary, each with `env`
        /// and that function's own (its role's credentials), behind one URL
        /// that routes each invocation to its function's process.
        pub fn per_function(
            env: &[(&str, String)],
            own: &std::collections::BTreeMap<String, Vec<(&'static str, String)>>,
            log_dir: &std::path::Path,
        ) -> Self {
            let mut routes = std::collections::HashMap::new();
            let mut procs = Vec::new();
            for (function, extra) in own {
                let mut all: Vec<(&str, String)> = env.to_vec();
                all.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
                all.extend(extra.iter().cloned());
                let (port, proc) = Self::watch(&all, log_dir, &format!("lambda-{function}"));
                routes.insert(function.clone(), format!("http://127.0.0.1:{port}"));
                procs.push(proc);
            }
            Self {
                url: route_invocations(routes),
                _procs: procs,
            }
        }

        /// Starts one watcher with `env`; logs to `{log_dir}/{name}.log`.
        fn watch(env: &[(&str, String)], log_dir: &std::path::Path, name: &str) -> (u16, Proc) {
            let port = free_port();
            let env_file = log_dir.join(format!("{name}.env"));
            // Single quotes: taken as they are (a session token or a secret
            // key holds `/`, `+` and `=`, which the file's parser refuses bare).
            let text: String = env
                .iter()
                .map(|(k, v)| {
                    assert!(!v.contains('\''), "{k}'s value has a single quote");
                    format!("{k}='{v}'\n")
                })
                .collect();
            std::fs::write(&env_file, text).expect("env file");
            let mut cmd = Command::new(venv_bin("cargo-lambda"));
            cmd.current_dir(workspace_root())
                .args([
                    "lambda",
                    "watch",
                    "--ignore-changes",
                    "-A",
                    "127.0.0.1",
                    "-P",
                    &port.to_string(),
                ])
                .arg("--env-file")
                .arg(&env_file)
                .env(
                    "PATH",
                    format!(
                        "{}:{}",
                        venv_bin("cargo-lambda").parent().unwrap().display(),
                        std::env::var("PATH").unwrap_or_default()
                    ),
                );
            for (k, v) in env {
                cmd.env(k, v);
            }
            let log = log_dir.join(format!("{name}.log"));
            let proc = spawn_group(cmd, "cargo lambda watch", &log);
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(120) {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return (port, proc);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            panic!("cargo lambda watch did not start; see {}", log.display());
        }

        /// Invokes a function; returns (HTTP status, body as JSON).
        pub fn invoke(
            &self,
            function: &str,
            payload: &serde_json::Value,
        ) -> (u16, serde_json::Value) {
            let body = serde_json::to_vec(payload).expect("json");
            let (status, resp) = http(
                "POST",
                &self.url,
                &format!("/2015-03-31/functions/{function}/invocations"),
                &body,
            )
            .unwrap_or_else(|e| panic!("invoke {function}: {e}"));
            (
                status,
                serde_json::from_slice(&resp).unwrap_or(serde_json::Value::Null),
            )
        }
    }

    /// A local URL that passes `POST /2015-03-31/functions/{name}/invocations`
    /// on to `routes[name]` (status and body as they come back).
    fn route_invocations(routes: std::collections::HashMap<String, String>) -> String {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
        let addr = server.server_addr().to_ip().expect("an IP address");
        // Several at once: a Map state invokes its items in parallel.
        let server = Arc::new(server);
        for _ in 0..8 {
            let (server, routes) = (server.clone(), routes.clone());
            std::thread::spawn(move || {
                for mut req in server.incoming_requests() {
                    let path = req.url().to_string();
                    let function = path
                        .strip_prefix("/2015-03-31/functions/")
                        .and_then(|p| p.split('/').next())
                        .unwrap_or_default()
                        .to_string();
                    let mut body = Vec::new();
                    let _ = req.as_reader().read_to_end(&mut body);
                    let answer = match routes.get(&function) {
                        Some(base) => http("POST", base, &path, &body)
                            .unwrap_or_else(|e| (502, e.to_string().into_bytes())),
                        None => (404, format!("no function {function}").into_bytes()),
                    };
                    let _ = req.respond(
                        tiny_http::Response::from_data(answer.1).with_status_code(answer.0),
                    );
                }
            });
        }
        format!("http://{addr}")
    }

    impl LocalAws {
        /// The functions, each under its own role ([`LocalAws::function_roles`])
        /// in a `cargo lambda watch` of its own ([`LambdaWatch::per_function`]),
        /// with `env` besides; and the roles.
        pub fn lambda_under_roles(
            &self,
            env: &[(&str, String)],
            bucket: &str,
            parameters: &serde_json::Value,
            secrets: &[(&str, &str)],
            log_dir: &std::path::Path,
        ) -> (
            LambdaWatch,
            std::collections::BTreeMap<String, crate::iam::Role>,
        ) {
            let roles = self.function_roles(bucket, parameters, secrets);
            let own = crate::iam::credentials_env(&roles);
            (LambdaWatch::per_function(env, &own, log_dir), roles)
        }
    }

    /// Every function's log under `log_dir` (a [`LambdaWatch::per_function`]'s
    /// `lambda-{function}.log`, or a shared watcher's `lambda.log`), joined.
    pub fn function_logs(log_dir: &std::path::Path) -> String {
        let mut names: Vec<PathBuf> = std::fs::read_dir(log_dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        names.retain(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("lambda") && n.ends_with(".log"))
        });
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// One HTTP request (ureq): the status and the body, whatever the status.
    pub fn http(
        method: &str,
        base: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let res = ureq::request(method, &format!("{base}{path}"))
            .set("Content-Type", "application/json")
            .timeout(Duration::from_secs(600))
            .send_bytes(body);
        let resp = match res {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        };
        let status = resp.status();
        let mut out = Vec::new();
        resp.into_reader().read_to_end(&mut out)?;
        Ok((status, out))
    }

    /// A local ResponseURL for custom resources: records every PUT body.
    pub struct ResponseUrl {
        pub url: String,
        pub bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    }

    impl ResponseUrl {
        pub fn start() -> Self {
            let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
            let addr = server.server_addr().to_ip().expect("an IP address");
            let url = format!("http://{addr}/cfn-response");
            let bodies = Arc::new(Mutex::new(Vec::new()));
            let b = bodies.clone();
            std::thread::spawn(move || {
                for mut req in server.incoming_requests() {
                    let mut body = Vec::new();
                    let _ = req.as_reader().read_to_end(&mut body);
                    if let Ok(v) = serde_json::from_slice(&body) {
                        b.lock().expect("lock").push(v);
                    }
                    let _ = req.respond(tiny_http::Response::empty(200));
                }
            });
            Self { url, bodies }
        }
    }

    /// init-db's answer (as PUT to a [`ResponseUrl`]) to a custom resource
    /// Create on `deps`, with `RetentionHours` 24.
    pub async fn init_db_create(deps: &binlog_cdc::pipeline::Deps) -> serde_json::Value {
        let cfn = ResponseUrl::start();
        let req = serde_json::from_value(serde_json::json!({
            "RequestType": "Create", "ServiceToken": "x", "ResponseURL": cfn.url,
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1", "RequestId": "r",
            "ResourceType": "Custom::InitDb", "LogicalResourceId": "InitDb",
            "ResourceProperties": {"ServiceToken": "x", "RetentionHours": "24"}
        }))
        .expect("a custom resource request");
        init_db::handle(req, Ok(deps), Duration::from_secs(60))
            .await
            .expect("init-db answers");
        let bodies = cfn.bodies.lock().expect("lock").clone();
        assert_eq!(bodies.len(), 1, "one answer");
        bodies[0].clone()
    }
}

/// A ranged read on a blocking dump, on either server.
pub mod ranged {
    use binlog_cdc::source::connect::ConnectOptions;
    use binlog_cdc::source::server::{ServerSource, HEARTBEAT_PERIOD};
    use binlog_cdc::source::types::{HEARTBEAT, HEARTBEAT_V2};
    use binlog_cdc::source::EventSource;
    use binlog_cdc::BinlogPosition;
    use futures_util::StreamExt;
    use mysql_async::prelude::Queryable;
    use mysql_async::BinlogStreamRequest;
    use std::time::{Duration, Instant};

    /// How many events `[from, to)` holds; panics on any error.
    pub async fn count_events(
        options: &ConnectOptions,
        from: &BinlogPosition,
        to: &BinlogPosition,
    ) -> i64 {
        let mut source = ServerSource::open(options, from, Some(to.clone()), 4343)
            .await
            .expect("open");
        let mut n = 0;
        while let Some(_event) = source
            .next_event()
            .await
            .unwrap_or_else(|e| panic!("range {from}..{to}: {e}"))
        {
            n += 1;
        }
        n
    }

    /// A range to the end of the log is read whole, and the server's dump
    /// thread, left waiting for the next commit, is gone soon after though
    /// nothing more is committed. `sql` runs SQL as root, `position` is the
    /// log's end.
    pub async fn to_the_end_leaves_no_dump_thread(
        url: String,
        sql: &dyn Fn(&str) -> String,
        position: &dyn Fn() -> BinlogPosition,
    ) {
        let from = position();
        sql(
            "CREATE DATABASE r; CREATE TABLE r.t (id INT PRIMARY KEY); INSERT INTO r.t VALUES (1);",
        );
        let to = position();
        let events = count_events(&url.into(), &from, &to).await;
        assert!(events >= 4, "{events} events in {from}..{to}");
        let dumps = || {
            sql("SELECT COUNT(*) FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'")
        };
        let began = Instant::now();
        while dumps().trim() != "0" {
            assert!(
                began.elapsed() < Duration::from_secs(10),
                "a dump thread outlived its reader by 10 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A blocking dump at the end of the log, with the heartbeat period
    /// `ServerSource` asks for, sends heartbeats that mysql_async parses and
    /// whose types are the ones the reader skips.
    pub async fn heartbeats_arrive_and_parse(url: String, end: BinlogPosition) {
        let mut conn = mysql_async::Conn::from_url(url).await.expect("connects");
        let ns = HEARTBEAT_PERIOD.as_nanos();
        conn.query_drop(format!("SET @master_heartbeat_period = {ns}, @source_heartbeat_period = {ns}, @mariadb_slave_capability = 4"))
            .await
            .expect("set");
        let request = BinlogStreamRequest::new(4344)
            .with_filename(end.file().as_bytes())
            .with_pos(end.pos());
        let mut stream = conn.get_binlog_stream(request).await.expect("dump");
        loop {
            let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("a heartbeat within 5 s")
                .expect("the stream goes on")
                .expect("mysql_async parses it");
            let t = event.header().event_type_raw();
            if t == HEARTBEAT || t == HEARTBEAT_V2 {
                return;
            }
        }
    }
}
