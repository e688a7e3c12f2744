//! Where outputs go: an object store behind one narrow interface, with two
//! implementations: S3 ([`s3::S3Store`], aws-sdk-s3; also moto server for
//! local runs and tests) and a local directory ([`local::LocalStore`]).
//!
//! What the pipeline needs from a store: read an object with its ETag, write
//! one with a condition (`If-Match` an ETag, or `If-None-Match: *`) so a
//! checkpoint commits at most once, stream a large object out without holding
//! it in memory, promote a staged object to its published key, list and
//! delete a prefix.

pub mod local;
pub mod s3;

use async_trait::async_trait;

use crate::error::Result;

/// A condition on a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    None,
    /// Only if the object does not exist (`If-None-Match: *`).
    IfAbsent,
    /// Only if the object's ETag is still this (`If-Match`).
    IfMatch(String),
}

/// An object and its ETag.
#[derive(Debug, Clone)]
pub struct Object {
    pub body: Vec<u8>,
    pub etag: String,
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// The object at `key`, or `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Object>>;

    /// Writes `body` at `key` if `cond` holds; returns the new ETag. A failed
    /// condition is [`crate::Error::PreconditionFailed`].
    async fn put(&self, key: &str, body: Vec<u8>, cond: PutCondition) -> Result<String>;

    /// Writes `body` at `key` unconditionally, and hands the buffer back,
    /// emptied, when the store is done with it (a local directory), so that
    /// a writer of many parts reuses its buffers; `None` where the store
    /// keeps it (S3's request body).
    async fn put_part(&self, key: &str, body: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.put(key, body, PutCondition::None).await.map(|_| None)
    }

    /// Streams a large object out in pieces; nothing is visible until `finish`.
    async fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>>;

    /// Makes the object at `from` appear whole at `to` (a server-side copy,
    /// or a rename); `from` may stay. `false` when there is no object at
    /// `from`, and nothing changes.
    async fn promote(&self, from: &str, to: &str) -> Result<bool>;

    /// Makes a second object at `to` with the bytes of the one at `from`,
    /// which stays (S3: a server-side copy; a local directory: a hard link).
    /// `false` when there is no object at `from`, and nothing changes.
    async fn duplicate(&self, from: &str, to: &str) -> Result<bool>;

    /// Whether there is an object at `key`.
    async fn exists(&self, key: &str) -> Result<bool>;

    /// Every key under `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Deletes every object under `prefix`; returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<usize>;

    /// A human-readable name for messages: `s3://bucket` or a path.
    fn describe(&self) -> String;
}

#[async_trait]
pub trait ObjectWriter: Send {
    async fn write(&mut self, data: &[u8]) -> Result<()>;

    /// Appends the stored object `src` (in the same store), from byte `skip`
    /// on. The store may copy it without passing it through this process (a
    /// local directory copies it kernel-side, S3 copies large ones itself); a
    /// missing object, or one of another size than `src` says, is a definite
    /// [`crate::Error::Storage`].
    async fn append_object(&mut self, src: &mut Source, skip: u64) -> Result<()>;

    async fn finish(self: Box<Self>) -> Result<()>;
}

/// An object of known size to append to one or more writers; its body is
/// read at most once, by the first writer that needs it.
pub struct Source {
    pub key: String,
    pub size: u64,
    body: Option<Vec<u8>>,
}

impl Source {
    pub fn new(key: impl Into<String>, size: u64) -> Self {
        Self {
            key: key.into(),
            size,
            body: None,
        }
    }

    /// The whole body, read from `store` the first time.
    pub async fn body(&mut self, store: &dyn ObjectStore) -> Result<&[u8]> {
        if self.body.is_none() {
            let obj = store
                .get(&self.key)
                .await?
                .ok_or_else(|| missing(&self.key))?;
            self.check_size(obj.body.len() as u64)?;
            self.body = Some(obj.body);
        }
        Ok(self.body.as_deref().unwrap_or_default())
    }

    /// A definite error unless `found` is the expected size.
    pub fn check_size(&self, found: u64) -> Result<()> {
        if found == self.size {
            return Ok(());
        }
        Err(crate::Error::storage(
            self.key.clone(),
            format!(
                "a staged part holds {found} bytes, its chunk wrote {}",
                self.size
            ),
            false,
        ))
    }
}

/// The error for a staged object that is not there.
pub fn missing(key: &str) -> crate::Error {
    crate::Error::storage(
        key.to_string(),
        "a staged part is missing (staging was cleaned up, or a chunk did not finish)",
        false,
    )
}

/// Writes `value` as JSON at `key` (a run's summary in its staging).
pub async fn put_json<T: serde::Serialize>(
    store: &dyn ObjectStore,
    key: &str,
    value: &T,
) -> Result<()> {
    let body = serde_json::to_vec(value).map_err(|e| crate::Error::encode(key, e))?;
    store.put(key, body, PutCondition::None).await.map(|_| ())
}

/// Reads the JSON summary at `key`; a missing or unreadable one is a definite
/// error naming the key (a step before did not finish, or staging was removed).
pub async fn get_json<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<T> {
    let missing = || {
        crate::Error::storage(
            key.to_string(),
            "a run summary is missing (a step before did not finish, or staging was removed)",
            false,
        )
    };
    let obj = store.get(key).await?.ok_or_else(missing)?;
    parse_json(key, &obj.body)
}

/// The JSON summary at `key`, or `None` when there is none.
pub async fn find_json<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<Option<T>> {
    match find(store, key).await? {
        Some(obj) => parse_json(key, &obj.body).map(Some),
        None => Ok(None),
    }
}

/// The object at `key`, when there is one, found by listing exactly that
/// key before reading it: S3 answers a read of a missing key with 404 only
/// to a caller allowed to list the bucket, and whether a ListBucket grant
/// conditioned on `s3:prefix` counts is not documented (a GetObject has no
/// prefix); a list of the key satisfies such a condition, so a missing
/// object is "absent", never AccessDenied. The caller may list `key`.
pub async fn find(store: &dyn ObjectStore, key: &str) -> Result<Option<Object>> {
    if !store.list(key).await?.iter().any(|k| k == key) {
        return Ok(None);
    }
    // Deleted between the two calls: absent too.
    store.get(key).await
}

fn parse_json<T: serde::de::DeserializeOwned>(key: &str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        crate::Error::storage(
            key.to_string(),
            format!("a run summary is not what this version writes: {e}"),
            false,
        )
    })
}
