//! A throwaway Oracle MySQL with binary logging and GTIDs, on a free port in
//! a temporary directory, stopped when dropped: the server binlog-cdc is
//! mostly deployed against (Aurora MySQL, RDS MySQL), beside [`super::MariaDb`].
//!
//! The server is `.mysql/bin/mysqld` of this checkout, which
//! `scripts/ensure-mysql.sh` installs (Debian unstable's MySQL, in a root of
//! its own); `scripts/test.sh` runs that script.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::server::{free_port, PASSWORD, USER};
use crate::workspace_root;

/// A running throwaway MySQL. Dropping it stops the server and deletes its data.
pub struct MySql {
    pub dir: PathBuf,
    pub port: u16,
    child: Child,
}

/// The settings every test server has: what the README's prerequisites set
/// on RDS and Aurora, with GTIDs on as most managed MySQL servers have them.
/// MySQL's own default for `binlog_row_metadata` is MINIMAL; a test that
/// wants the default passes `--binlog-row-metadata=MINIMAL`.
const SETTINGS: &[&str] = &[
    "--user=root",
    "--bind-address=127.0.0.1",
    "--mysqlx=OFF",
    "--performance-schema=OFF",
    "--server-id=1",
    "--binlog-format=ROW",
    "--binlog-row-image=FULL",
    "--binlog-row-metadata=FULL",
    "--gtid-mode=ON",
    "--enforce-gtid-consistency=ON",
    "--innodb-buffer-pool-size=64M",
    "--max-allowed-packet=64M",
];

fn bin(name: &str) -> PathBuf {
    let p = workspace_root().join(".mysql/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/ensure-mysql.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Makes a data directory with a root user without a password (reachable
/// only over the socket: the server binds to 127.0.0.1 and root is
/// `root@localhost`).
fn initialize(dir: &Path) {
    let out = Command::new(bin("mysqld"))
        .arg("--initialize-insecure")
        .arg("--user=root")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--log-error={}", dir.join("init.log").display()))
        .output()
        .expect("run mysqld --initialize-insecure");
    assert!(
        out.status.success(),
        "mysqld --initialize-insecure failed: {}",
        std::fs::read_to_string(dir.join("init.log")).unwrap_or_default()
    );
}

/// Starts `mysqld` and waits until it answers on `port`; the error log on failure.
fn spawn_mysqld(dir: &Path, port: u16, extra: &[&str]) -> Result<Child, String> {
    let child = Command::new(bin("mysqld"))
        .args(SETTINGS)
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--socket={}", dir.join("sock").display()))
        .arg(format!("--tmpdir={}", dir.join("tmp").display()))
        .arg(format!("--secure-file-priv={}", dir.join("tmp").display()))
        .arg(format!("--port={port}"))
        .arg(format!("--log-bin={}", dir.join("data/binlog").display()))
        .arg(format!("--log-error={}", dir.join("err.log").display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start mysqld: {e}"))?;
    crate::server::wait_until_serving(child, dir, port, Duration::from_secs(60))
}

impl MySql {
    /// Starts a server with [`SETTINGS`].
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `mysqld` options (later ones win).
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = crate::server::server_dir("mysql");
        std::fs::create_dir_all(dir.join("tmp")).expect("tmp dir");
        initialize(&dir);
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn_mysqld(&dir, port, extra) {
                Ok(child) => {
                    let db = MySql { dir, port, child };
                    // The test user authenticates with MySQL's default plugin
                    // (caching_sha2_password), as a managed server's users do.
                    db.sql(&format!(
                        "CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
                         GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'%' WITH GRANT OPTION; \
                         RESET BINARY LOGS AND GTIDS;"
                    ));
                    return db;
                }
                Err(e) => last_err = e,
            }
        }
        panic!("mysqld did not start:\n{last_err}");
    }

    /// `mysql://cdc:cdc@127.0.0.1:PORT` (TCP only, no socket switch).
    pub fn url(&self) -> String {
        format!(
            "mysql://{USER}:{PASSWORD}@127.0.0.1:{}?prefer_socket=false",
            self.port
        )
    }

    /// Runs SQL as root over the socket with MySQL's own client; returns the
    /// rows, tab-separated; panics on error.
    pub fn sql(&self, sql: &str) -> String {
        let mut client = Command::new(bin("mysql"));
        client.arg(format!("--socket={}", self.dir.join("sock").display()));
        crate::server::client_sql(client, sql)
    }

    /// The server's current binlog position.
    pub fn position(&self) -> binlog_cdc::BinlogPosition {
        let out = self.sql("SHOW BINARY LOG STATUS");
        let mut cols = out.split('\t');
        let file = cols.next().expect("file").to_string();
        let pos = cols.next().and_then(|p| p.trim().parse().ok());
        binlog_cdc::BinlogPosition::new(file, pos.expect("a position"))
    }

    /// `mysqlbinlog -v` over every binlog file: Oracle's own reading.
    pub fn mysqlbinlog_verbose(&self) -> String {
        let files: Vec<PathBuf> = self
            .sql("SHOW BINARY LOGS")
            .lines()
            .filter_map(|l| l.split('\t').next())
            .map(|f| self.dir.join("data").join(f))
            .collect();
        let out = Command::new(bin("mysqlbinlog"))
            .arg("-v")
            .args(&files)
            .output()
            .expect("run mysqlbinlog");
        assert!(
            out.status.success(),
            "mysqlbinlog failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `@@gtid_executed`, without the line breaks MySQL puts between
    /// sources (which the client's batch mode prints as `\n`).
    pub fn gtid_executed(&self) -> String {
        let text = self.sql("SELECT @@GLOBAL.gtid_executed");
        text.replace("\\n", "").replace(['\n', ' '], "")
    }
}

impl crate::TestServer for MySql {
    // MySQL 8.4 renamed RESET MASTER.
    const RESET_BINLOGS: &'static str = "RESET BINARY LOGS AND GTIDS";
    fn url(&self) -> String {
        MySql::url(self)
    }
    fn sql(&self, sql: &str) -> String {
        MySql::sql(self, sql)
    }
    fn position(&self) -> binlog_cdc::BinlogPosition {
        MySql::position(self)
    }
}

impl Drop for MySql {
    fn drop(&mut self) {
        crate::server::stop(&mut self.child, &self.dir);
    }
}
