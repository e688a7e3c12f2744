//! S3 (and S3-compatible servers such as moto) as the object store.
//!
//! Conditional writes use S3's own `If-Match` / `If-None-Match: *`; a 412 (or
//! a 409 from a racing conditional write) is a failed precondition. Large
//! objects go up as a multipart upload in `PART_SIZE` pieces, so memory stays
//! bounded whatever the object's size; an object under one piece is a plain put.
//! An appended object of at least `MIN_PART` bytes is copied by S3 itself
//! (UploadPartCopy): fan-out joins large staged parts without moving them
//! through the Lambda.

use async_trait::async_trait;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, TaggingDirective,
};
use aws_sdk_s3::Client;

use super::{Object, ObjectStore, ObjectWriter, PutCondition, Source};
use crate::aws::sdk_error;
use crate::error::{Error, Result};

/// Multipart piece size (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 8 << 20;

/// S3's largest piece of a multipart upload, and so of one UploadPartCopy.
const MAX_COPY_PART: u64 = 5 << 30;

/// The tag on every object written through [`ObjectStore::writer`]: the
/// event objects (outputs and staged parts), not `meta.json`, `serverId.json`
/// or a run's small JSON records. The stack's output lifecycle rule expires
/// only objects with this tag, so it never takes the checkpoint.
pub const EVENTS_TAG: &str = "binlog-cdc=events";

/// `[from, to)` as pieces S3 may copy: one piece may not pass `max` (5 GiB),
/// so a larger range is cut into equal pieces (each far above the 5 MiB
/// minimum a piece before the last needs).
fn copy_ranges(from: u64, to: u64, max: u64) -> Vec<(u64, u64)> {
    let len = to.saturating_sub(from);
    let step = len.div_ceil(len.div_ceil(max).max(1)).max(1);
    (from..to)
        .step_by(step as usize)
        .map(|at| (at, (at + step).min(to)))
        .collect()
}

/// S3's smallest multipart piece, but for the last.
pub const MIN_PART: usize = 5 << 20;

/// What `x-amz-copy-source` may hold unescaped.
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    /// Bytes S3 copied itself into multipart uploads (UploadPartCopy).
    copied: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl S3Store {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            copied: Default::default(),
        }
    }

    /// How many bytes S3 has copied itself (server-side part copies) for
    /// writers of this store so far.
    pub fn bytes_copied(&self) -> u64 {
        self.copied.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The size of the object at `key`, or `None` if there is none.
    async fn size(&self, key: &str) -> Result<Option<u64>> {
        let res = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match res {
            Ok(o) => Ok(Some(o.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(sdk_error(format!("HEAD s3://{}/{key}", self.bucket), e)),
        }
    }

    /// Bytes `[from, to)` of the object at `key`.
    async fn get_range(&self, key: &str, from: u64, to: u64) -> Result<Vec<u8>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let ctx = || format!("GET s3://{}/{key} bytes {from}-{}", self.bucket, to - 1);
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={from}-{}", to - 1))
            .send()
            .await
            .map_err(|e| sdk_error(ctx(), e))?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| Error::storage_from(ctx(), e, true))?
            .into_bytes()
            .to_vec();
        if body.len() as u64 != to - from {
            return Err(Error::storage(
                ctx(),
                format!("{} bytes came back", body.len()),
                true,
            ));
        }
        Ok(body)
    }
}

/// The HTTP status of a failed request, when there was a response.
fn status<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn get(&self, key: &str) -> Result<Option<Object>> {
        let res = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let out = match res {
            Ok(o) => o,
            Err(e) if status(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(sdk_error(format!("GET s3://{}/{key}", self.bucket), e)),
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| Error::storage_from(format!("GET s3://{}/{key}", self.bucket), e, true))?
            .into_bytes()
            .to_vec();
        Ok(Some(Object { body, etag }))
    }

    async fn put(&self, key: &str, body: Vec<u8>, cond: PutCondition) -> Result<String> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body));
        match &cond {
            PutCondition::None => {}
            PutCondition::IfAbsent => req = req.if_none_match("*"),
            PutCondition::IfMatch(etag) => req = req.if_match(etag),
        }
        match req.send().await {
            Ok(out) => Ok(out.e_tag().unwrap_or_default().to_string()),
            Err(e) if cond != PutCondition::None && matches!(status(&e), Some(412) | Some(409)) => {
                Err(Error::PreconditionFailed {
                    key: key.to_string(),
                })
            }
            Err(e) => Err(sdk_error(format!("PUT s3://{}/{key}", self.bucket), e)),
        }
    }

    async fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(S3Writer {
            store: self.clone(),
            key: key.to_string(),
            buf: Vec::with_capacity(PART_SIZE),
            upload_id: None,
            parts: Vec::new(),
        }))
    }

    /// One CopyObject up to 5 GiB (the tag set as a writer's, so the
    /// function needs no GetObjectTagging); larger objects as a multipart
    /// upload of UploadPartCopy pieces.
    async fn promote(&self, from: &str, to: &str) -> Result<bool> {
        let Some(size) = self.size(from).await? else {
            return Ok(false);
        };
        if size > MAX_COPY_PART {
            let mut w = self.writer(to).await?;
            w.append_object(&mut Source::new(from, size), 0).await?;
            w.finish().await?;
            return Ok(true);
        }
        let source = format!(
            "{}/{}",
            self.bucket,
            percent_encoding::utf8_percent_encode(from, COPY_SOURCE)
        );
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source)
            .tagging_directive(TaggingDirective::Replace)
            .tagging(EVENTS_TAG)
            .send()
            .await
            .map_err(|e| sdk_error(format!("COPY s3://{}/{from} to {to}", self.bucket), e))?;
        self.copied
            .fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }

    async fn duplicate(&self, from: &str, to: &str) -> Result<bool> {
        // `promote` copies; its source stays.
        self.promote(from, to).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.size(key).await?.is_some())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error(format!("LIST s3://{}/{prefix}", self.bucket), e))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        let keys = self.list(prefix).await?;
        for batch in keys.chunks(1000) {
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Config(e.to_string()))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| Error::Config(e.to_string()))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| sdk_error(format!("DELETE s3://{}/{prefix}*", self.bucket), e))?;
            // DeleteObjects answers 200 whatever befell each key: a key it
            // could not delete (AccessDenied, a slow-down) is in `Errors`.
            if let Some(first) = out.errors().first() {
                return Err(Error::storage(
                    format!("DELETE s3://{}/{prefix}*", self.bucket),
                    format!(
                        "{} of {} keys not deleted, the first {}: {} {}",
                        out.errors().len(),
                        batch.len(),
                        first.key().unwrap_or_default(),
                        first.code().unwrap_or_default(),
                        first.message().unwrap_or_default()
                    ),
                    first.code() != Some("AccessDenied"),
                ));
            }
        }
        Ok(keys.len())
    }

    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }
}

struct S3Writer {
    store: S3Store,
    key: String,
    buf: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
}

impl S3Writer {
    fn ctx(&self) -> String {
        format!("upload s3://{}/{}", self.store.bucket, self.key)
    }

    /// Starts the multipart upload, once.
    async fn ensure_upload(&mut self) -> Result<()> {
        if self.upload_id.is_none() {
            let out = self
                .store
                .client
                .create_multipart_upload()
                .bucket(&self.store.bucket)
                .key(&self.key)
                .tagging(EVENTS_TAG)
                .send()
                .await
                .map_err(|e| sdk_error(self.ctx(), e))?;
            self.upload_id = out.upload_id().map(str::to_string);
        }
        Ok(())
    }

    async fn flush_part(&mut self) -> Result<()> {
        self.ensure_upload().await?;
        let client = &self.store.client;
        let number = self.parts.len() as i32 + 1;
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(PART_SIZE));
        let out = client
            .upload_part()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .set_upload_id(self.upload_id.clone())
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| sdk_error(self.ctx(), e))?;
        self.parts.push(
            CompletedPart::builder()
                .set_e_tag(out.e_tag().map(str::to_string))
                .part_number(number)
                .build(),
        );
        Ok(())
    }

    /// Appends bytes `skip..` of `src`. Every multipart piece but the last
    /// must be at least `MIN_PART`, so a copy by S3 needs the buffer before it
    /// to be a valid piece: a short buffer is topped up with the object's
    /// first bytes. An object too small for that is read (once for all
    /// writers) and buffered like any other data.
    async fn append(&mut self, src: &mut Source, skip: u64) -> Result<()> {
        let len = src.size.saturating_sub(skip);
        let top_up = match self.buf.len() as u64 {
            0 => 0,
            b => (MIN_PART as u64).saturating_sub(b),
        };
        if len < top_up + MIN_PART as u64 {
            let body = src.body(&self.store).await?;
            return self
                .write(body.get(skip as usize..).unwrap_or_default())
                .await;
        }
        let from = skip + top_up;
        let head = self.store.get_range(&src.key, skip, from).await?;
        self.buf.extend_from_slice(&head);
        if !self.buf.is_empty() {
            self.flush_part().await?;
        }
        // S3 refuses a range past the object's end; one that is shorter than
        // the object would go unnoticed, so the size is checked first.
        match self.store.size(&src.key).await? {
            Some(found) => src.check_size(found)?,
            None => return Err(super::missing(&src.key)),
        }
        for (at, end) in copy_ranges(from, src.size, MAX_COPY_PART) {
            self.copy_part(&src.key, at, end).await?;
        }
        Ok(())
    }

    /// Bytes `[from, to)` of the object at `key` become the next piece,
    /// copied by S3.
    async fn copy_part(&mut self, key: &str, from: u64, to: u64) -> Result<()> {
        self.ensure_upload().await?;
        let number = self.parts.len() as i32 + 1;
        let source = format!(
            "{}/{}",
            self.store.bucket,
            percent_encoding::utf8_percent_encode(key, COPY_SOURCE)
        );
        let out = self
            .store
            .client
            .upload_part_copy()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .set_upload_id(self.upload_id.clone())
            .part_number(number)
            .copy_source(source)
            .copy_source_range(format!("bytes={from}-{}", to - 1))
            .send()
            .await
            .map_err(|e| sdk_error(format!("{} (copying {key})", self.ctx()), e))?;
        self.store
            .copied
            .fetch_add(to - from, std::sync::atomic::Ordering::Relaxed);
        self.parts.push(
            CompletedPart::builder()
                .set_e_tag(
                    out.copy_part_result()
                        .and_then(|r| r.e_tag())
                        .map(str::to_string),
                )
                .part_number(number)
                .build(),
        );
        Ok(())
    }

    async fn abort(&self) {
        if let Some(id) = &self.upload_id {
            let _ = self
                .store
                .client
                .abort_multipart_upload()
                .bucket(&self.store.bucket)
                .key(&self.key)
                .upload_id(id)
                .send()
                .await;
        }
    }
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PART_SIZE {
            if let Err(e) = self.flush_part().await {
                self.abort().await;
                return Err(e);
            }
        }
        Ok(())
    }

    async fn append_object(&mut self, src: &mut Source, skip: u64) -> Result<()> {
        let result = self.append(src, skip).await;
        if result.is_err() {
            self.abort().await;
        }
        result
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        if self.upload_id.is_none() {
            let body = std::mem::take(&mut self.buf);
            self.store
                .client
                .put_object()
                .bucket(&self.store.bucket)
                .key(&self.key)
                .tagging(EVENTS_TAG)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| sdk_error(self.ctx(), e))?;
            return Ok(());
        }
        let result = async {
            if !self.buf.is_empty() {
                self.flush_part().await?;
            }
            self.store
                .client
                .complete_multipart_upload()
                .bucket(&self.store.bucket)
                .key(&self.key)
                .set_upload_id(self.upload_id.clone())
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(self.parts.clone()))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| sdk_error(self.ctx(), e))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            self.abort().await;
        }
        result
    }
}

#[cfg(test)]
mod copy_tests {
    use super::*;

    #[test]
    fn copies_are_cut_into_equal_pieces_of_at_most_5_gib() {
        assert_eq!(copy_ranges(7, 100, MAX_COPY_PART), [(7, 100)]);
        let big = 12 << 30;
        let r = copy_ranges(3, big, MAX_COPY_PART);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].0, 3);
        assert_eq!(r[2].1, big);
        assert!(r.windows(2).all(|w| w[0].1 == w[1].0));
        assert!(r
            .iter()
            .all(|(a, b)| b - a <= MAX_COPY_PART && b - a > 1 << 30));
    }
}
