//! Where outputs go: an object store behind one narrow interface, with two
//! implementations: S3 ([`s3::S3Store`], aws-sdk-s3; also moto server for
//! local runs and tests) and a local directory ([`local::LocalStore`]).
//!
//! What the pipeline needs from a store: read an object with its ETag, write
//! one with a condition (`If-Match` an ETag, or `If-None-Match: *`) so a
//! checkpoint commits at most once, stream a large object out without holding
//! it in memory, list and delete a prefix.

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

    /// Streams a large object out in pieces; nothing is visible until `finish`.
    async fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>>;

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

    /// Appends the object at `key` (in the same store), from byte `skip` on,
    /// and returns how many bytes that is. The store may copy it without
    /// passing it through this process (the local directory copies it
    /// kernel-side); a missing object is a definite [`crate::Error::Storage`].
    async fn append_object(&mut self, key: &str, skip: u64) -> Result<u64>;

    async fn finish(self: Box<Self>) -> Result<()>;
}

/// The error for a staged object that is not there.
pub fn missing(key: &str) -> crate::Error {
    crate::Error::Storage {
        context: key.to_string(),
        msg: "a staged part is missing (staging was cleaned up, or a chunk did not finish)".into(),
        retryable: false,
    }
}
