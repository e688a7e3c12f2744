//! What a run leaves behind, for tests that look for values that must not
//! be there (passwords in statements, the clear values of ruled columns):
//! every log line of the test process, and every byte written under a
//! store, staging included ([`KeepStaging`] never deletes).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use binlog_cdc::store::local::LocalStore;
use binlog_cdc::store::{Object, ObjectStore, ObjectWriter, PutCondition};

/// Every log line of the test process, captured.
pub fn log_lines() -> &'static Mutex<Vec<u8>> {
    static LINES: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || Capture(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        lines
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A local store that never deletes: the runs' staged parts stay for the
/// password check.
pub struct KeepStaging(pub Arc<LocalStore>);

#[async_trait::async_trait]
impl ObjectStore for KeepStaging {
    async fn get(&self, key: &str) -> binlog_cdc::Result<Option<Object>> {
        self.0.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        cond: PutCondition,
    ) -> binlog_cdc::Result<String> {
        self.0.put(key, body, cond).await
    }
    async fn writer(&self, key: &str) -> binlog_cdc::Result<Box<dyn ObjectWriter>> {
        self.0.writer(key).await
    }
    async fn promote(&self, from: &str, to: &str) -> binlog_cdc::Result<bool> {
        // A copy, not a rename: the staged object stays.
        self.0.duplicate(from, to).await
    }
    async fn duplicate(&self, from: &str, to: &str) -> binlog_cdc::Result<bool> {
        self.0.duplicate(from, to).await
    }
    async fn exists(&self, key: &str) -> binlog_cdc::Result<bool> {
        self.0.exists(key).await
    }
    async fn list(&self, prefix: &str) -> binlog_cdc::Result<Vec<String>> {
        self.0.list(prefix).await
    }
    async fn delete_prefix(&self, _prefix: &str) -> binlog_cdc::Result<usize> {
        Ok(0)
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// Every byte under `dir`, for a search of what must not be there.
pub fn every_file(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            every_file(&path, out);
        } else {
            out.push((path.clone(), std::fs::read(&path).expect("read")));
        }
    }
}

pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every committed event in the per-table objects under a store (staging
/// left out).
pub async fn committed(store: &LocalStore) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for key in store.list("").await.expect("list") {
        if !key.contains("table-binlog-") || key.starts_with("staging/") {
            continue;
        }
        let obj = store.get(&key).await.expect("get").expect("listed");
        let doc: serde_json::Value = serde_json::from_slice(&obj.body).expect("a JSON object");
        out.extend(doc["events"].as_array().expect("events").iter().cloned());
    }
    out
}
