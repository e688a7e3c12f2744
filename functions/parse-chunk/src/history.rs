//! The schema history a chunk reads and adds to: each table's definitions
//! over time (`schemas/{schema}/{table}/{position}.json`, see
//! [`SchemaVersion`]), published with the run that read them.
//!
//! A table statement applies to the definition in force before it. That is
//! what the run's own statements before the chunk left (a chunk that does
//! not start the run reads those first, once and only when it meets a
//! statement: [`StoredHistory`], a statements-only read of `[run start,
//! chunk start)` with a replication id of its own), or else the last
//! committed version before the statement: an earlier run's, or a
//! snapshot's, whose range may sit past the run's start (ranges are read
//! ahead of the stream).

use std::collections::HashMap;
use std::sync::Arc;

use binlog_cdc::contracts::{Chunk, SchemaVersion};
use binlog_cdc::decoder::column_rules::ColumnRules;
use binlog_cdc::decoder::definition::{Baseline, Known, Version};
use binlog_cdc::decoder::reader::{DecodeOptions, Decoder};
use binlog_cdc::decoder::server_replay::ServerReplay;
use binlog_cdc::decoder::source::server::ServerSource;
use binlog_cdc::decoder::source::EventSource;
use binlog_cdc::error::{Error, Result};
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::{get_json, put_json, ObjectStore};
use binlog_cdc::BinlogPosition;

/// Added to a chunk's replication id for the read of the run before it:
/// apart from every chunk's id (at most a few hundred a run).
const PREFIX_SERVER_ID_OFFSET: u32 = 1000;

/// The definitions in force before a chunk's statements.
pub struct StoredHistory {
    store: Arc<dyn ObjectStore>,
    layout: binlog_cdc::layout::Layout,
    /// The run's start: versions from it on are not yet committed.
    run_from: BinlogPosition,
    prefix: Option<Prefix>,
}

/// The run's range before the chunk, read once when first needed.
struct Prefix {
    deps: Deps,
    to: BinlogPosition,
    server_id: u32,
    known: Option<HashMap<(String, String), Known>>,
}

impl StoredHistory {
    /// For `chunk` (which starts at `run_from` when it has none).
    pub fn for_chunk(chunk: &Chunk, deps: &Deps) -> Self {
        let run_from = chunk.run_from.clone().unwrap_or_else(|| chunk.from.clone());
        let prefix = (run_from != chunk.from).then(|| Prefix {
            deps: deps.clone(),
            to: chunk.from.clone(),
            server_id: chunk.server_id.wrapping_add(PREFIX_SERVER_ID_OFFSET),
            known: None,
        });
        Self {
            store: deps.store.clone(),
            layout: deps.layout.clone(),
            run_from,
            prefix,
        }
    }

    fn committed(&self) -> Self {
        Self {
            store: self.store.clone(),
            layout: self.layout.clone(),
            run_from: self.run_from.clone(),
            prefix: None,
        }
    }

    /// The definition before the statement at `at`: what the run's own
    /// statements before the chunk left, or else the last committed version
    /// before `at` (an earlier run's; or a snapshot's, which may sit past
    /// the run's start: a range is read ahead of the stream).
    async fn lookup(
        &mut self,
        schema: &str,
        table: &str,
        at: Option<&BinlogPosition>,
    ) -> Result<Option<Known>> {
        if self.prefix.is_some() {
            let committed = self.committed();
            if let Some(prefix) = self.prefix.as_mut() {
                let known = prefix.read(committed, &self.run_from).await?;
                match known.get(&(schema.to_string(), table.to_string())) {
                    Some(Known::Unknown(_)) | None => {}
                    Some(k) => return Ok(Some(k.clone())),
                }
            }
        }
        let upto = at.unwrap_or(&self.run_from).clone();
        self.last_committed(schema, table, &upto).await
    }

    /// The last committed version before `upto`, if any.
    async fn last_committed(
        &self,
        schema: &str,
        table: &str,
        upto: &BinlogPosition,
    ) -> Result<Option<Known>> {
        let store = self.store.as_ref();
        let before = self.layout.schema_version(schema, table, upto);
        let keys = store
            .list(&self.layout.schema_history(schema, table))
            .await?;
        let Some(last) = keys.iter().rfind(|k| **k < before) else {
            return Ok(None);
        };
        let v: SchemaVersion = get_json(store, last).await?;
        Ok(Some(v.known()))
    }
}

impl Baseline for StoredHistory {
    fn before<'a>(
        &'a mut self,
        schema: &'a str,
        table: &'a str,
        at: Option<&'a BinlogPosition>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = binlog_cdc::decoder::Result<Option<Known>>>
                + Send
                + 'a,
        >,
    > {
        Box::pin(async move { Ok(self.lookup(schema, table, at).await?) })
    }
}

impl Prefix {
    /// What the run's statements before the chunk left of each table they
    /// touched (from `committed`'s definitions before them).
    async fn read(
        &mut self,
        committed: StoredHistory,
        run_from: &BinlogPosition,
    ) -> Result<&HashMap<(String, String), Known>> {
        if self.known.is_none() {
            let deps = &self.deps;
            let db = deps.db();
            let opts = DecodeOptions {
                view: deps.config.view,
                filter: deps.config.table_filter()?,
                rules: deps.column_rules().await?,
            };
            let mut source =
                ServerSource::open(&db, run_from, Some(self.to.clone()), self.server_id).await?;
            let replay = ServerReplay::new(&db);
            let mut decoder = Decoder::new(opts)
                .statements_only()
                .with_definitions(Box::new(replay), Some(Box::new(committed)));
            let mut ignore = binlog_cdc::decoder::reader::Discard;
            while let Some(ev) = source.next_event().await? {
                decoder.handle(ev, &mut ignore).await?;
            }
            tracing::debug!(from = %run_from, to = %self.to, "the run's statements before the chunk read");
            let known = decoder
                .definitions()
                .known()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            self.known = Some(known);
        }
        Ok(self.known.get_or_insert_with(HashMap::new))
    }
}

/// Stages each version a chunk's statements left (the last at a position
/// wins: a statement that swaps names leaves each name's last state), as
/// the column rules write definitions (no ruled column's default);
/// returns their output keys, in binlog order.
pub async fn stage(versions: Vec<Version>, chunk: &Chunk, deps: &Deps) -> Result<Vec<String>> {
    let rules = ColumnRules::for_planning(&deps.config.column_rules).map_err(Error::Config)?;
    let mut keys: Vec<String> = Vec::with_capacity(versions.len());
    for v in versions {
        let key = deps.layout.schema_version(&v.schema, &v.table, &v.position);
        let after = rules.known(&v.schema, &v.table, &v.after);
        let body = SchemaVersion::new(&v.schema, &v.table, v.position, v.kind.name(), &after);
        put_json(
            deps.store.as_ref(),
            &deps.layout.staged_output(&chunk.run_id, &key),
            &body,
        )
        .await?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}
