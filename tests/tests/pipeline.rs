//! The pipeline's handlers in order, in-process, on a local directory store:
//! two runs commit every row event exactly once; a replay moves nothing; a
//! commit on a stale ETag is refused; a purged checkpoint is BinlogPurged.

use std::sync::Arc;

use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::{CommitInput, FanOutOutput, RunInput, RunStatus};
use binlog_cdc::event::View;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::reader::DecodeOptions;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc::Error;
use binlog_cdc_tests::{collect, pipeline, MariaDb};

#[tokio::test]
async fn two_runs_commit_every_event_exactly_once() {
    let db = MariaDb::start();
    let dir = db.dir.join("out");
    let config = PipelineConfig {
        chunk_bytes: 4096,
        view: View::Both,
        part_bytes: 4096,
        max_buffer_bytes: 16384,
        ..Default::default()
    };
    let deps = Deps::new(Arc::new(LocalStore::new(&dir)), config, db.url());
    let first_file = db.position();
    db.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(100));
         CREATE TABLE shop.items (order_id INT, n INT, PRIMARY KEY (order_id, n));
         INSERT INTO shop.orders SELECT seq, CONCAT('order ', seq) FROM shop.seq_1_to_300;
         INSERT INTO shop.items SELECT seq DIV 3, seq FROM shop.seq_1_to_600;",
    );
    let (plan1, commit1) = pipeline::run(&deps, RunInput::default()).await.unwrap();
    assert!(
        plan1.chunks.len() > 1,
        "small CHUNK_BYTES splits the file: {}",
        plan1.chunks.len()
    );
    assert!(commit1.unwrap().committed);
    let (meta1, etag1) = pipeline::meta(&deps).await.unwrap();
    assert_eq!(meta1.position.position, plan1.to);

    // More writes, a rotation, a large transaction.
    db.sql(
        "UPDATE shop.orders SET note = 'changed' WHERE id <= 50; DELETE FROM shop.items WHERE order_id < 10;
         FLUSH BINARY LOGS;
         START TRANSACTION; INSERT INTO shop.orders SELECT seq, 'big' FROM shop.seq_1001_to_6000; COMMIT;",
    );
    let (plan2, commit2) = pipeline::run(&deps, RunInput::default()).await.unwrap();
    assert_eq!(
        plan2.from, plan1.to,
        "run 2 resumes exactly where run 1 ended"
    );
    assert!(commit2.unwrap().committed);
    let (meta2, etag2) = pipeline::meta(&deps).await.unwrap();

    // Committed outputs, run by run, against one independent parse of the whole range.
    let mut committed = pipeline::committed_events(&deps, &meta1).await;
    for (t, evs) in pipeline::committed_events(&deps, &meta2).await {
        committed.entry(t).or_default().extend(evs);
    }
    let (all, _) = collect::from_server(
        &db.url(),
        &first_file,
        Some(plan2.to.clone()),
        DecodeOptions {
            view: View::Both,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let independent = pipeline::by_table(all);
    pipeline::assert_same_events(&committed, &independent);
    assert_eq!(independent["shop.orders"].len(), 300 + 50 + 5000);
    // Staging is gone after commits.
    assert!(deps.store.list("staging/").await.unwrap().is_empty());

    // Nothing new: nothing to do.
    let (plan3, _) = pipeline::run(&deps, RunInput::default()).await.unwrap();
    assert_eq!(plan3.status, RunStatus::Nothing);

    // A replay with commit: false writes outputs and moves nothing.
    let replay = RunInput {
        from: Some(plan1.from.clone()),
        to: Some(plan1.to.clone()),
        commit: Some(false),
    };
    let (rplan, rcommit) = pipeline::run(&deps, replay).await.unwrap();
    assert_eq!(
        rplan.run_id, plan1.run_id,
        "the same range has the same run id and keys"
    );
    assert!(!rcommit.unwrap().committed);
    assert_eq!(
        pipeline::meta(&deps).await.unwrap().1,
        etag2,
        "meta.json untouched"
    );
    let again = deps.store.get(&meta1.outputs[0]).await.unwrap().unwrap();
    assert!(!again.body.is_empty());

    // A commit on a stale ETag is refused, and nothing changes.
    let mut stale = plan2.clone();
    stale.meta_etag = Some(etag1);
    let err = commit_checkpoint::handle(
        CommitInput {
            plan: stale,
            fan_out: FanOutOutput::default(),
        },
        &deps,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::ConcurrentRun(_)), "{err}");
    assert_eq!(err.name(), "ConcurrentRun");
    assert_eq!(pipeline::meta(&deps).await.unwrap().1, etag2);

    // A committed replay that does not start at the checkpoint is refused.
    let bad = RunInput {
        from: Some(plan1.from.clone()),
        to: None,
        commit: Some(true),
    };
    assert!(matches!(
        pipeline::run(&deps, bad).await,
        Err(Error::Config(_))
    ));

    // Binlogs purged past the checkpoint: BinlogPurged, nothing committed.
    db.sql("INSERT INTO shop.orders VALUES (99999, 'x'); FLUSH BINARY LOGS; INSERT INTO shop.orders VALUES (99998, 'y');");
    let newest = db.position();
    db.sql(&format!("PURGE BINARY LOGS TO '{}';", newest.file()));
    let err = pipeline::run(&deps, RunInput::default()).await.unwrap_err();
    assert!(matches!(err, Error::BinlogPurged { .. }), "{err}");
    assert!(
        err.to_string().contains(meta2.position.file.as_str()),
        "{err}"
    );
    assert_eq!(pipeline::meta(&deps).await.unwrap().1, etag2);
}
