//! A throwaway MariaDB with binary logging, on a free port in a temporary
//! directory, stopped by its pid when dropped.
//!
//! `MariaDb::start()` installs nothing; `scripts/test.sh` makes sure
//! `mariadbd` is present (installing Debian's `mariadb-server` if not).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::server::{client_sql, free_port, server_dir, wait_until_serving, which, TestServer};
use crate::server::{PASSWORD, USER};
use crate::workspace_root;

/// A running throwaway server. Dropping it stops the server and deletes its data.
pub struct MariaDb {
    pub dir: PathBuf,
    pub port: u16,
    /// Behind a lock so that a test can crash and restart the server while
    /// other threads use it.
    child: std::sync::Mutex<Child>,
    extra: Vec<String>,
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
        // mariadb-install-db is retried on a fresh data directory: a failed
        // bootstrap leaves a half-made one behind. The tmpdir is made again
        // each time: CI once saw all three attempts fail on "Can't
        // create/write to file '<dir>/tmp/ib...' (Errcode: 2)", the
        // directory gone (cause not found; the same tests passed on rerun).
        let mut install_err = String::new();
        let mut installed = false;
        for attempt in 0..3 {
            let data = dir.join("data");
            if attempt > 0 {
                let _ = std::fs::remove_dir_all(&data);
                std::thread::sleep(Duration::from_millis(200));
            }
            std::fs::create_dir_all(&tmp).expect("tmp dir");
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
        crate::server::stop(child, &self.dir);
    }
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
