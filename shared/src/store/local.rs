//! A directory as an object store: keys are relative paths. Writes go to a
//! temporary file and are renamed into place, so an object is whole or absent
//! to readers; nothing is fsynced (a machine crash can lose recent objects:
//! S3 is the durable store, this one is for local runs).
//! Conditional writes are checked under a process-wide lock: safe for the
//! concurrency of one `binlog-cdc run`, not for several processes at once
//! (use S3 for that).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{Object, ObjectStore, ObjectWriter, PutCondition};
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct LocalStore {
    root: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            lock: Arc::new(Mutex::new(())),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        if key.split('/').any(|p| p == ".." || p == ".") || key.starts_with('/') || key.is_empty() {
            return Err(Error::Config(format!("bad object key {key:?}")));
        }
        Ok(self.root.join(key))
    }
}

fn etag(body: &[u8]) -> String {
    let d = Sha256::digest(body);
    format!(
        "\"{}\"",
        d.iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

async fn write_atomically(path: &Path, body: &[u8]) -> Result<()> {
    let ctx = || path.display().to_string();
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::io(ctx(), e))?;
    }
    let tmp = tmp_path(path);
    tokio::fs::write(&tmp, body)
        .await
        .map_err(|e| Error::io(ctx(), e))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| Error::io(ctx(), e))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn get(&self, key: &str) -> Result<Option<Object>> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(body) => Ok(Some(Object {
                etag: etag(&body),
                body,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path.display().to_string(), e)),
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>, cond: PutCondition) -> Result<String> {
        let path = self.path(key)?;
        let _guard = self.lock.lock().await;
        if cond != PutCondition::None {
            let current = self.get(key).await?;
            let ok = match (&cond, &current) {
                (PutCondition::IfAbsent, None) => true,
                (PutCondition::IfMatch(want), Some(obj)) => *want == obj.etag,
                _ => false,
            };
            if !ok {
                return Err(Error::PreconditionFailed {
                    key: key.to_string(),
                });
            }
        }
        write_atomically(&path, &body).await?;
        Ok(etag(&body))
    }

    async fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        let path = self.path(key)?;
        let ctx = path.display().to_string();
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::io(&ctx, e))?;
        }
        let tmp = tmp_path(&path);
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| Error::io(&ctx, e))?;
        Ok(Box::new(LocalWriter {
            file: tokio::io::BufWriter::with_capacity(1 << 20, file),
            tmp,
            path,
        }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let mut rd = match tokio::fs::read_dir(&dir).await {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(dir.display().to_string(), e)),
            };
            while let Some(entry) = rd
                .next_entry()
                .await
                .map_err(|e| Error::io(dir.display().to_string(), e))?
            {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&self.root) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if key.starts_with(prefix) && !key.contains(".tmp-") {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        let keys = self.list(prefix).await?;
        for k in &keys {
            let p = self.path(k)?;
            tokio::fs::remove_file(&p)
                .await
                .map_err(|e| Error::io(p.display().to_string(), e))?;
        }
        Ok(keys.len())
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

struct LocalWriter {
    file: tokio::io::BufWriter<tokio::fs::File>,
    tmp: PathBuf,
    path: PathBuf,
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .await
            .map_err(|e| Error::io(self.path.display().to_string(), e))
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        let ctx = self.path.display().to_string();
        self.file.flush().await.map_err(|e| Error::io(&ctx, e))?;
        self.file
            .get_mut()
            .sync_all()
            .await
            .map_err(|e| Error::io(&ctx, e))?;
        tokio::fs::rename(&self.tmp, &self.path)
            .await
            .map_err(|e| Error::io(&ctx, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conditional_writes_and_listing() {
        let dir = std::env::temp_dir().join(format!("binlog-cdc-local-{}", std::process::id()));
        let s = LocalStore::new(&dir);
        let e1 = s
            .put("a/meta.json", b"1".to_vec(), PutCondition::IfAbsent)
            .await
            .unwrap();
        assert!(matches!(
            s.put("a/meta.json", b"2".to_vec(), PutCondition::IfAbsent)
                .await,
            Err(Error::PreconditionFailed { .. })
        ));
        let e2 = s
            .put(
                "a/meta.json",
                b"2".to_vec(),
                PutCondition::IfMatch(e1.clone()),
            )
            .await
            .unwrap();
        assert!(matches!(
            s.put("a/meta.json", b"3".to_vec(), PutCondition::IfMatch(e1))
                .await,
            Err(Error::PreconditionFailed { .. })
        ));
        assert_eq!(s.get("a/meta.json").await.unwrap().unwrap().etag, e2);
        let mut w = s.writer("a/b/big.json").await.unwrap();
        w.write(b"x").await.unwrap();
        assert_eq!(s.list("a/").await.unwrap(), vec!["a/meta.json"]);
        w.finish().await.unwrap();
        assert_eq!(
            s.list("a/").await.unwrap(),
            vec!["a/b/big.json", "a/meta.json"]
        );
        assert_eq!(s.delete_prefix("a/b/").await.unwrap(), 1);
        assert!(s.path("../x").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
