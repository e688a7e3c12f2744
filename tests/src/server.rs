//! What the throwaway MariaDB and MySQL servers share: the user tests
//! connect as, a directory and a free port for each, waiting until one
//! answers, running SQL through the command-line client, and the
//! [`TestServer`] interface tests take.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user every test connects as (all privileges, password `cdc`).
pub const USER: &str = "cdc";
pub const PASSWORD: &str = "cdc";

pub(crate) fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
            .map(|p| p.join(bin))
            .find(|p| p.is_file())
    })
}

/// A new directory for one throwaway server (`kind`: mariadb, mysql), under
/// `BINLOG_CDC_TEST_TMP` or the system's temporary directory.
pub(crate) fn server_dir(kind: &str) -> PathBuf {
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
pub(crate) fn wait_until_serving(
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

/// Stops a throwaway server and deletes its data (kept when
/// `BINLOG_CDC_KEEP_DB` is set, to look at after a failure).
pub(crate) fn stop(child: &mut Child, dir: &Path) {
    let _ = child.kill();
    let _ = child.wait();
    if std::env::var_os("BINLOG_CDC_KEEP_DB").is_none() {
        let _ = std::fs::remove_dir_all(dir);
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

/// Runs SQL as root with a command-line client (`mariadb` or `mysql`) given
/// its connection options, on its standard input (one argument may not pass
/// 128 KiB); returns the rows, tab-separated; panics on error.
pub(crate) fn client_sql(mut client: Command, sql: &str) -> String {
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
