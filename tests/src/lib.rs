#![recursion_limit = "512"]
//! Test support: throwaway servers ([`MariaDb`], [`mysql::MySql`], what they
//! share in [`server`]), the local AWS stand-ins ([`aws_local`], with IAM
//! enforced: [`iam`]), decoding and collecting events ([`collect`],
//! [`ranged`]), the pipeline's helpers ([`pipeline`], [`replica`]), the
//! leak search ([`leaks`]), the type matrix's tables ([`types`]), and the comparisons tests make against the
//! servers' own tools (below).

use std::path::{Path, PathBuf};

pub mod aws_local;
pub mod collect;
pub mod iam;
pub mod leaks;
pub mod mariadb;
pub mod mysql;
pub mod pipeline;
pub mod ranged;
pub mod replica;
pub mod server;
pub mod types;

pub use mariadb::MariaDb;
pub use server::{free_port, TestServer, PASSWORD, USER};

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

/// Runs `scripts/{script}` with `args` under `.venv/e2e`'s Python (duckdb
/// installed); returns its output, panicking with it when it fails.
pub fn e2e_python(script: &str, args: &[&Path]) -> String {
    let root = workspace_root();
    let python = root.join(".venv/e2e/bin/python");
    assert!(
        python.exists(),
        "run scripts/test.sh, which installs duckdb into .venv/e2e"
    );
    let run = std::process::Command::new(python)
        .arg(root.join("scripts").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{script}: {stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}
