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

pub mod aws_local;
pub mod collect;
pub mod iam;
pub mod leaks;
pub mod mysql;
pub mod pipeline;
pub mod ranged;
pub mod replica;
