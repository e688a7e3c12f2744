//! A directory as an object store: keys are relative paths. Writes go to a
//! temporary file and are renamed into place, so an object is whole or absent
//! to readers; nothing is fsynced (a machine crash can lose recent objects:
//! S3 is the durable store, this one is for local runs).
//! Conditional writes are checked under a process-wide lock: safe for the
//! concurrency of one `binlog-cdc run`, not for several processes at once
//! (use S3 for that).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::io::{Seek, Write};

use async_trait::async_trait;
use tokio::sync::Mutex;

use super::{Object, ObjectStore, ObjectWriter, PutCondition, Source};
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
        checked_path(&self.root, key)
    }
}

/// The file of `key` under `root`; a key cannot leave the root.
/// A local file or directory failing: retryable, like a store's 5xx.
fn io_error(context: String, e: std::io::Error) -> Error {
    Error::storage_from(context, e, true)
}

fn checked_path(root: &Path, key: &str) -> Result<PathBuf> {
    if key.split('/').any(|p| p == ".." || p == ".") || key.starts_with('/') || key.is_empty() {
        return Err(Error::Config(format!("bad object key {key:?}")));
    }
    Ok(root.join(key))
}

/// The ETag: XXH3-128 of the body. It only has to change when the body does
/// (conditional writes of meta.json); a cryptographic hash of every staged
/// part cost more than writing it (measured: SHA-256 of about 1.3 GB per
/// million events read and written).
fn etag(body: &[u8]) -> String {
    format!("\"{:032x}\"", twox_hash::XxHash3_128::oneshot(body))
}

/// Runs blocking file I/O off the async threads.
async fn blocking<T: Send + 'static>(
    ctx: &Path,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| io_error(ctx.display().to_string(), e)),
        Err(e) => Err(io_error(
            ctx.display().to_string(),
            std::io::Error::other(e.to_string()),
        )),
    }
}

/// Writes `body` to a temporary file, then renames it into place; hands
/// `body` back.
async fn write_atomically(path: &Path, body: Vec<u8>) -> Result<Vec<u8>> {
    let (p, tmp) = (path.to_path_buf(), tmp_path(path));
    blocking(path, move || {
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_in_slices(&mut std::fs::File::create(&tmp)?, &body)?;
        std::fs::rename(&tmp, &p)?;
        Ok(body)
    })
    .await
}

/// The most bytes handed to one `write(2)`.
///
/// Quirk: on the Linux VMs this is measured on (kernel 6.18, ext4), one
/// `write` of several MiB into the page cache costs far more than the same
/// bytes written a MiB or less at a time: 300 MB from a 6 MiB buffer, after
/// a few seconds idle, took 0.77 s of system time in 6 MiB writes, 0.36 s in
/// 2-4 MiB writes and 0.06-0.07 s in writes of 128 KiB to 1 MiB (docs/
/// PERFORMANCE.md; the cause is not established: a larger write gets larger
/// page-cache folios). A kernel copy (`copy_file_range`) moves 64 KiB at a
/// time, and was always cheap.
const WRITE_SLICE: usize = 256 << 10;

/// Writes `data` whole, [`WRITE_SLICE`] bytes at a time.
fn write_in_slices(file: &mut std::fs::File, data: &[u8]) -> std::io::Result<()> {
    data.chunks(WRITE_SLICE)
        .try_for_each(|slice| file.write_all(slice))
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
            Err(e) => Err(io_error(path.display().to_string(), e)),
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>, cond: PutCondition) -> Result<String> {
        let path = self.path(key)?;
        // Only a conditional write needs the lock (its check and its write
        // must not interleave with another's); any write lands by an atomic
        // rename, so unconditional ones (staged parts) run side by side.
        let _guard = match cond {
            PutCondition::None => None,
            _ => Some(self.lock.lock().await),
        };
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
        let tag = etag(&body);
        write_atomically(&path, body).await?;
        Ok(tag)
    }

    async fn put_part(&self, key: &str, body: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let mut body = write_atomically(&self.path(key)?, body).await?;
        body.clear();
        Ok(Some(body))
    }

    async fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        let path = self.path(key)?;
        let (p, tmp) = (path.clone(), tmp_path(&path));
        let file = blocking(&path, move || {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::File::create(&tmp)
        })
        .await?;
        Ok(Box::new(LocalWriter {
            file: Some(file),
            pending: None,
            buf: Vec::with_capacity(WRITE_BUFFER),
            spare: Vec::with_capacity(WRITE_BUFFER),
            tmp: tmp_path(&path),
            path,
            root: self.root.clone(),
        }))
    }

    async fn promote(&self, from: &str, to: &str) -> Result<bool> {
        let (src, dst) = (self.path(from)?, self.path(to)?);
        blocking(&src.clone(), move || {
            if let Some(dir) = dst.parent() {
                std::fs::create_dir_all(dir)?;
            }
            match std::fs::rename(&src, &dst) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn duplicate(&self, from: &str, to: &str) -> Result<bool> {
        let (src, dst) = (self.path(from)?, self.path(to)?);
        blocking(&src.clone(), move || {
            if let Some(dir) = dst.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // Linked beside its final name, then renamed over it: the object
            // appears whole. A file system without hard links gets a copy.
            let tmp = tmp_path(&dst);
            let _ = std::fs::remove_file(&tmp);
            match std::fs::hard_link(&src, &tmp) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(_) => {
                    std::fs::copy(&src, &tmp)?;
                }
            }
            std::fs::rename(&tmp, &dst)?;
            Ok(true)
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(path.display().to_string(), e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let mut rd = match tokio::fs::read_dir(&dir).await {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(dir.display().to_string(), e)),
            };
            while let Some(entry) = rd
                .next_entry()
                .await
                .map_err(|e| io_error(dir.display().to_string(), e))?
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
                .map_err(|e| io_error(p.display().to_string(), e))?;
        }
        Ok(keys.len())
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

/// Bytes gathered before one blocking write.
const WRITE_BUFFER: usize = 4 << 20;

/// One blocking step of a [`LocalWriter`]: write a buffer, then copy a file.
/// It hands back the file and the emptied buffer.
type PendingWrite = tokio::task::JoinHandle<std::io::Result<(std::fs::File, Vec<u8>)>>;

/// A file to append: its path, where to start, and how many bytes to expect.
struct CopySource {
    path: PathBuf,
    skip: u64,
    len: u64,
}

/// Streams an object into a temporary file (renamed into place at the end).
/// Data is gathered into a buffer; a full buffer is written on a blocking
/// thread while the caller fills the other one (two buffers, reused), so
/// producing the next bytes overlaps writing the last ones. An appended object
/// is copied file to file by the kernel (`std::io::copy` uses
/// `copy_file_range` on Linux), also on a blocking thread: the caller can start
/// the same copy into another object meanwhile.
struct LocalWriter {
    /// The file, when no write is in flight.
    file: Option<std::fs::File>,
    /// The write in flight.
    pending: Option<PendingWrite>,
    buf: Vec<u8>,
    spare: Vec<u8>,
    tmp: PathBuf,
    path: PathBuf,
    /// The store's root, to find appended objects.
    root: PathBuf,
}

impl LocalWriter {
    fn io_error(&self, e: impl std::fmt::Display) -> Error {
        io_error(
            self.path.display().to_string(),
            std::io::Error::other(e.to_string()),
        )
    }

    /// Waits for the write in flight, and takes the file back.
    async fn settle(&mut self) -> Result<std::fs::File> {
        match self.pending.take() {
            Some(h) => {
                let (file, spare) = h
                    .await
                    .map_err(|e| self.io_error(e))?
                    .map_err(|e| io_error(self.path.display().to_string(), e))?;
                self.spare = spare;
                Ok(file)
            }
            None => self
                .file
                .take()
                .ok_or_else(|| self.io_error("an earlier write to this object failed")),
        }
    }

    /// Starts writing the buffer, then copying `copy` (if any), in the
    /// background.
    async fn start(&mut self, copy: Option<CopySource>) -> Result<()> {
        if self.buf.is_empty() && copy.is_none() {
            return Ok(());
        }
        let mut file = self.settle().await?;
        let next = std::mem::take(&mut self.spare);
        let mut data = std::mem::replace(&mut self.buf, next);
        self.pending = Some(tokio::task::spawn_blocking(move || {
            write_in_slices(&mut file, &data)?;
            data.clear();
            if let Some(src) = copy {
                let mut from = std::fs::File::open(&src.path)?;
                from.seek(std::io::SeekFrom::Start(src.skip))?;
                let copied = std::io::copy(&mut from, &mut file)?;
                if copied != src.len {
                    return Err(std::io::Error::other(format!(
                        "{} changed while it was copied: {copied} bytes, expected {}",
                        src.path.display(),
                        src.len
                    )));
                }
            }
            Ok((file, data))
        }));
        Ok(())
    }
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, mut data: &[u8]) -> Result<()> {
        // Filled piecewise, so that neither buffer ever grows past WRITE_BUFFER.
        while !data.is_empty() {
            let room = WRITE_BUFFER.saturating_sub(self.buf.len()).max(1);
            let (now, rest) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = rest;
            if self.buf.len() >= WRITE_BUFFER {
                self.start(None).await?;
            }
        }
        Ok(())
    }

    async fn append_object(&mut self, src: &mut Source, skip: u64) -> Result<()> {
        let path = checked_path(&self.root, &src.key)?;
        // The copy checks the size it finds; a missing file is named here.
        match tokio::fs::metadata(&path).await {
            Ok(m) => src.check_size(m.len())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(super::missing(&src.key))
            }
            Err(e) => return Err(io_error(path.display().to_string(), e)),
        }
        let len = src.size.saturating_sub(skip);
        self.start(Some(CopySource { path, skip, len })).await
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        self.start(None).await?;
        drop(self.settle().await?);
        let (tmp, path) = (self.tmp.clone(), self.path.clone());
        blocking(&self.path, move || std::fs::rename(&tmp, &path)).await
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

    #[tokio::test]
    async fn duplicates_by_hard_link_and_keeps_the_source() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("binlog-cdc-dup-{}", std::process::id()));
        let s = LocalStore::new(&dir);
        s.put(
            "staging/r/out/t/x.jsonl",
            b"x\n".to_vec(),
            PutCondition::None,
        )
        .await
        .unwrap();
        assert!(s
            .duplicate("staging/r/out/t/x.jsonl", "staging/r/out/all/x.jsonl")
            .await
            .unwrap());
        let (a, b) = (
            s.path("staging/r/out/t/x.jsonl").unwrap(),
            s.path("staging/r/out/all/x.jsonl").unwrap(),
        );
        assert_eq!(std::fs::read(&b).unwrap(), b"x\n");
        assert_eq!(
            std::fs::metadata(&a).unwrap().ino(),
            std::fs::metadata(&b).unwrap().ino(),
            "one file, two names"
        );
        // Each name is promoted on its own.
        assert!(s
            .promote("staging/r/out/all/x.jsonl", "all/x.jsonl")
            .await
            .unwrap());
        assert!(s.exists("staging/r/out/t/x.jsonl").await.unwrap());
        assert!(!s.duplicate("staging/r/none", "y").await.unwrap());
        assert!(!s.exists("y").await.unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn promotes_by_rename_once() {
        let dir = std::env::temp_dir().join(format!("binlog-cdc-promote-{}", std::process::id()));
        let s = LocalStore::new(&dir);
        s.put("staging/r/out/t/x.json", b"x".to_vec(), PutCondition::None)
            .await
            .unwrap();
        assert!(s
            .promote("staging/r/out/t/x.json", "t/x.json")
            .await
            .unwrap());
        assert_eq!(s.get("t/x.json").await.unwrap().unwrap().body, b"x");
        assert!(!s.exists("staging/r/out/t/x.json").await.unwrap());
        // Again (a retried publication): nothing staged, the object stays.
        assert!(!s
            .promote("staging/r/out/t/x.json", "t/x.json")
            .await
            .unwrap());
        assert!(s.exists("t/x.json").await.unwrap());
        assert!(!s.exists("t").await.unwrap(), "a directory is no object");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn writes_a_body_of_several_slices_whole() {
        let dir = std::env::temp_dir().join(format!("binlog-cdc-slices-{}", std::process::id()));
        let s = LocalStore::new(&dir);
        let body: Vec<u8> = (0..2 * WRITE_SLICE + 7).map(|i| (i % 251) as u8).collect();
        s.put("a/b", body.clone(), PutCondition::None)
            .await
            .unwrap();
        assert_eq!(s.get("a/b").await.unwrap().unwrap().body, body);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn appends_objects_in_order() {
        let dir = std::env::temp_dir().join(format!("binlog-cdc-append-{}", std::process::id()));
        let s = LocalStore::new(&dir);
        s.put("p/0", b",{\"a\":1}\n".to_vec(), PutCondition::None)
            .await
            .unwrap();
        let big: Vec<u8> = (0..3 * WRITE_BUFFER)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        s.put("p/1", big.clone(), PutCondition::None).await.unwrap();
        let mut w = s.writer("out").await.unwrap();
        w.write(b"[").await.unwrap();
        // Several buffers' worth, each written while the next is filled.
        w.write(&big).await.unwrap();
        let mut small = Source::new("p/0", 9);
        w.append_object(&mut small, 1).await.unwrap();
        w.write(b"|").await.unwrap();
        w.append_object(&mut Source::new("p/1", big.len() as u64), 0)
            .await
            .unwrap();
        w.append_object(&mut small, 0).await.unwrap();
        w.write(b"]").await.unwrap();
        let missing = w
            .append_object(&mut Source::new("p/2", 1), 0)
            .await
            .unwrap_err();
        assert!(missing.to_string().contains("p/2"), "{missing}");
        let wrong = w
            .append_object(&mut Source::new("p/0", 10), 0)
            .await
            .unwrap_err();
        assert!(wrong.to_string().contains("9 bytes"), "{wrong}");
        w.finish().await.unwrap();
        let mut want = b"[".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"{\"a\":1}\n|");
        want.extend_from_slice(&big);
        want.extend_from_slice(b",{\"a\":1}\n]");
        assert_eq!(s.get("out").await.unwrap().unwrap().body, want);
        let _ = std::fs::remove_dir_all(dir);
    }
}
