//! Decodes with the decoder alone and collects every event as parsed JSON
//! (its errors are the decoder's own).

use binlog_cdc::decoder::reader::{DecodeOptions, Decoder, RowSink, Stats};
use binlog_cdc::decoder::schema::TableMeta;
use binlog_cdc::decoder::source::file::FileSource;
use binlog_cdc::decoder::source::server::{InformationSchema, ServerSource};
use binlog_cdc::decoder::{Error, Result};
use binlog_cdc::BinlogPosition;
use serde_json::Value;

#[derive(Default)]
pub struct Collect(pub Vec<Value>);

impl RowSink for Collect {
    fn row(&mut self, _: &TableMeta, _: u32, json: &[u8]) -> Result<()> {
        self.0
            .push(serde_json::from_slice(json).expect("every event is valid JSON"));
        Ok(())
    }

    /// A statement's event once (a rename comes under both names).
    fn statement(&mut self, _: &str, _: &str, _: u32, json: &[u8]) -> Result<()> {
        let event: Value = serde_json::from_slice(json).expect("every event is valid JSON");
        if self.0.last() != Some(&event) {
            self.0.push(event);
        }
        Ok(())
    }
}

/// Reads `[from, to)` from a server.
pub async fn from_server(
    url: &str,
    from: &BinlogPosition,
    to: Option<BinlogPosition>,
    opts: DecodeOptions,
) -> Result<(Vec<Value>, Stats)> {
    let db = url.into();
    let mut src = ServerSource::open(&db, from, to, 77).await?;
    let lookup = InformationSchema::connect(&db).await?;
    let replay = binlog_cdc::decoder::server_replay::ServerReplay::new(&db);
    let mut dec = Decoder::new(opts)
        .with_lookup(Box::new(lookup))
        .with_definitions(Box::new(replay), None);
    let mut sink = Collect::default();
    dec.run(&mut src, &mut sink).await?;
    Ok((sink.0, dec.stats().clone()))
}

/// Reads whole files, keeping the events decoded before an error.
pub async fn from_files_until_error(
    files: &[std::path::PathBuf],
    opts: DecodeOptions,
) -> (Vec<Value>, Option<Error>) {
    let mut src = FileSource::new(files);
    let mut dec = Decoder::new(opts);
    let mut sink = Collect::default();
    let res = dec.run(&mut src, &mut sink).await;
    (sink.0, res.err())
}

/// Reads whole files.
pub async fn from_files(
    files: &[std::path::PathBuf],
    opts: DecodeOptions,
) -> Result<(Vec<Value>, Stats)> {
    let mut src = FileSource::new(files);
    let mut dec = Decoder::new(opts);
    let mut sink = Collect::default();
    dec.run(&mut src, &mut sink).await?;
    Ok((sink.0, dec.stats().clone()))
}

/// A snapshot of the whole table (one range): each row's `newImage` by id.
pub async fn snapshot_images(
    url: &str,
    schema: &str,
    table: &str,
) -> std::collections::BTreeMap<i64, Value> {
    let range = binlog_cdc::decoder::snapshot::KeyRange {
        schema: schema.into(),
        table: table.into(),
        after: None,
        upto: None,
    };
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let got = binlog_cdc::decoder::snapshot::read::read_range(
        &url.into(),
        &range,
        &Default::default(),
        4_170_200_001,
        0,
        &mut lines,
    )
    .await
    .expect("snapshot read");
    assert!(
        got.superseded.is_empty(),
        "nothing changed while the range was read"
    );
    assert_eq!(got.read, lines.len() as u64);
    lines
        .iter()
        .map(|line| {
            let event: Value = serde_json::from_slice(line).expect("an event");
            assert_eq!(event["type"], "SnapshotRowEvent");
            let image = event["newImage"].clone();
            (image["id"].as_i64().expect("id"), image)
        })
        .collect()
}
