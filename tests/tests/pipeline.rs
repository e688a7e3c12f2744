//! The pipeline's handlers in order, in-process, on a local directory store:
//! two runs commit every row event exactly once; a replay moves nothing; a
//! commit on a stale ETag is refused; a purged checkpoint is BinlogPurged;
//! MySQL's executed GTID set goes from the chunks' summaries to `meta.json`.

use std::sync::Arc;

use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::{CommitInput, Progress, RunInput, RunStatus};
use binlog_cdc::decoder::event::View;
use binlog_cdc::decoder::reader::DecodeOptions;
use binlog_cdc::pipeline::Deps;
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
    assert_eq!(Some(meta1.position.position.clone()), plan1.to);

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
        plan2.to.clone(),
        DecodeOptions {
            view: View::Both,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let independent = pipeline::by_table(all);
    pipeline::assert_same_events(&committed, &independent);
    // Its CREATE TABLE, then the rows.
    assert_eq!(independent["shop.orders"].len(), 1 + 300 + 50 + 5000);
    // Staging is gone after commits.
    assert!(deps.store.list("staging/").await.unwrap().is_empty());

    // Nothing new: nothing to do.
    let (plan3, _) = pipeline::run(&deps, RunInput::default()).await.unwrap();
    assert_eq!(plan3.status, RunStatus::Nothing);

    // A replay with commit: false writes outputs and moves nothing.
    let replay = RunInput {
        from: plan1.from.clone(),
        to: plan1.to.clone(),
        commit: Some(false),
        ..Default::default()
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
    pipeline::stage_empty_fan_out(&deps, &stale.run_id).await;
    let err = commit_checkpoint::handle(
        CommitInput {
            plan: stale,
            loop_state: Default::default(),
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
        from: plan1.from.clone(),
        to: None,
        commit: Some(true),
        ..Default::default()
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
    assert!(
        matches!(
            err.decoder(),
            Some(binlog_cdc::decoder::Error::BinlogPurged { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(meta2.position.file.as_str()),
        "{err}"
    );
    assert_eq!(pipeline::meta(&deps).await.unwrap().1, etag2);
}

/// A backlog larger than the run budget drains over several iterations,
/// each a committed run that starts where the one before ended; every event
/// is committed once; the plans stay within the budget.
#[tokio::test]
async fn a_budget_splits_the_backlog_into_runs() {
    let db = MariaDb::start();
    let config = PipelineConfig {
        chunk_bytes: 4096,
        max_run_chunks: 2,
        max_run_bytes: 1 << 20,
        shard_tables: 2,
        view: View::Both,
        ..Default::default()
    };
    let store = Arc::new(LocalStore::new(db.dir.join("out")));
    let deps = Deps::new(store, config, db.url());
    let first_file = db.position();
    let mut sql = String::from("CREATE DATABASE b;");
    for t in 0..5 {
        sql += &format!(
            "CREATE TABLE b.t{t} (id INT PRIMARY KEY, v VARCHAR(50));
             INSERT INTO b.t{t} SELECT seq, CONCAT('v', seq) FROM b.seq_1_to_200; FLUSH BINARY LOGS;"
        );
    }
    db.sql(&sql);
    let end = db.position();
    let runs = pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .unwrap();
    assert!(runs.len() >= 3, "{} runs", runs.len());
    for w in runs.windows(2) {
        assert_eq!(
            w[1].plan.from, w[0].plan.to,
            "each run starts where the last ended"
        );
    }
    for r in &runs {
        assert!(r.plan.chunks.len() <= 2);
    }
    let last = runs.last().unwrap().commit.as_ref().unwrap();
    assert_eq!(last.progress, Progress::CaughtUp);
    assert_eq!(last.position, end);
    assert!(runs[0].commit.as_ref().unwrap().loop_state.again);

    // Every run's table objects, against one independent parse; each run's
    // all-tables object (joined from several shards) holds the same events.
    let mut committed = std::collections::BTreeMap::<String, Vec<serde_json::Value>>::new();
    let keys = deps.store.list("").await.unwrap();
    for r in &runs {
        let suffix = format!("-{}.json", r.plan.run_id);
        let mut mine = std::collections::BTreeMap::<String, Vec<serde_json::Value>>::new();
        let mut all = None;
        for key in keys.iter().filter(|k| k.ends_with(&suffix)) {
            let doc: serde_json::Value =
                serde_json::from_slice(&deps.store.get(key).await.unwrap().unwrap().body).unwrap();
            if key.starts_with("all/") {
                all = Some(doc);
                continue;
            }
            let evs = doc["events"].as_array().unwrap();
            let t = format!("b.{}", evs[0]["table"].as_str().unwrap());
            mine.entry(t).or_default().extend(evs.iter().cloned());
        }
        let all = all.expect("an all-tables object per run");
        for (t, evs) in &mine {
            assert_eq!(
                all["tables"][t].as_array().unwrap(),
                evs,
                "{t} in all-tables"
            );
            assert_eq!(all["counts"][t].as_u64(), Some(evs.len() as u64));
        }
        for (t, evs) in mine {
            committed.entry(t).or_default().extend(evs);
        }
    }
    let independent = pipeline::independent(&db.url(), &first_file, &end).await;
    pipeline::assert_same_events(&committed, &independent);

    // A replay of the whole range obeys the same budget: several
    // iterations, each resuming where the last ended, to the replay's end;
    // the checkpoint does not move.
    let (_, etag) = pipeline::meta(&deps).await.unwrap();
    let replay = RunInput {
        from: runs[0].plan.from.clone(),
        to: Some(end.clone()),
        commit: Some(false),
        ..Default::default()
    };
    let replays = pipeline_driver::run_until_caught_up(&deps, replay)
        .await
        .unwrap();
    assert_eq!(replays.len(), runs.len(), "the same budgeted runs");
    for (r, c) in replays.iter().zip(&runs) {
        assert_eq!(
            r.plan.run_id, c.plan.run_id,
            "the same ranges, the same keys"
        );
        assert!(!r.commit.as_ref().unwrap().committed);
    }
    assert_eq!(replays.last().unwrap().plan.to.as_ref(), Some(&end));
    assert_eq!(
        pipeline::meta(&deps).await.unwrap().1,
        etag,
        "meta.json untouched"
    );
}

/// MySQL's executed GTID set at the checkpoint travels from the chunks'
/// summaries (as ParseChunk stores them) through fan-out's plan to
/// `meta.json`, run after run: the real handlers on a local directory, no
/// server (MySQL's GTID events themselves are read in `fixtures.rs`).
#[tokio::test]
async fn mysqls_executed_gtid_set_reaches_the_checkpoint_run_after_run() {
    use binlog_cdc::contracts::{Chunk, ChunkKind, ChunkSummary, RunPlan};
    use binlog_cdc::decoder::gtid::GtidTrail;
    use binlog_cdc::BinlogPosition;

    const U: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    let dir = std::env::temp_dir().join(format!("binlog-cdc-gtid-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let deps = Deps::new(
        Arc::new(LocalStore::new(&dir)),
        PipelineConfig::default(),
        "mysql://cdc:cdc@127.0.0.1:1",
    );
    let pos = |s: &str| s.parse::<BinlogPosition>().unwrap();
    // Runs one range whose chunks read `trails` (file start, transactions).
    let run = |run_id: &'static str,
               from: &str,
               to: &str,
               etag: Option<String>,
               trails: Vec<(Option<&str>, &str)>| {
        let plan = RunPlan {
            status: RunStatus::Run,
            run_id: run_id.into(),
            from: Some(pos(from)),
            to: Some(pos(to)),
            more: false,
            commit: true,
            meta_etag: etag,
            to_gtid: None,
            to_history: None,
            planned_at_ms: None,
            behind_bytes: None,
            retention_headroom: None,
            chunks: (0..trails.len() as u32)
                .map(|index| Chunk {
                    run_id: run_id.into(),
                    index,
                    from: pos(from),
                    to: pos(to),
                    server_id: 1,
                    kind: ChunkKind::Binlog,
                    run_from: None,
                })
                .collect(),
            max_concurrency: 2,
            reason: None,
            execution: None,
            snapshot: None,
            follow: None,
            loop_state: None,
        };
        let summaries: Vec<ChunkSummary> = trails
            .iter()
            .enumerate()
            .map(|(i, (start, txns))| ChunkSummary {
                index: i as u32,
                gtids: Some(GtidTrail {
                    file_start: start.map(|s| s.parse().unwrap()),
                    transactions: txns.parse().unwrap(),
                }),
                ..Default::default()
            })
            .collect();
        let deps = &deps;
        async move {
            for s in &summaries {
                let key = deps.layout.chunk_summary(run_id, s.index);
                binlog_cdc::store::put_json(deps.store.as_ref(), &key, s)
                    .await
                    .unwrap();
            }
            fan_out_by_table::plan::handle(&plan, deps).await.unwrap();
            let input = CommitInput {
                plan,
                loop_state: Default::default(),
            };
            commit_checkpoint::handle(input, deps).await.unwrap();
            pipeline::meta(deps).await.unwrap()
        }
    };
    // The first run reads file 1 from its start, then file 2 from its start.
    let (meta, etag) = run(
        "r1",
        "binlog.000001:4",
        "binlog.000002:900",
        None,
        vec![
            (Some(""), &format!("{U}:1-3")),
            (Some(&format!("{U}:1-3")), &format!("{U}:4-5")),
        ],
    )
    .await;
    assert_eq!(
        meta.position.gtid.as_deref(),
        Some(format!("{U}:1-5").as_str())
    );
    // The next run goes on mid-file from the checkpoint: its set, plus 6-7.
    let (meta, _) = run(
        "r2",
        "binlog.000002:900",
        "binlog.000002:1500",
        Some(etag),
        vec![(None, &format!("{U}:6-7"))],
    )
    .await;
    assert_eq!(
        meta.position.gtid.as_deref(),
        Some(format!("{U}:1-7").as_str())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `jsonl.gz` objects are the `jsonl` ones compressed: each table's object
/// inflates to the same bytes, and so does the all-tables object, which
/// joins the tables' gzip streams as they are (one stream a table), in one
/// shard and across shards (JoinAllTables).
#[tokio::test]
async fn jsonl_gz_objects_inflate_to_the_jsonl_ones() {
    use binlog_cdc::config::OutputFormat;
    use binlog_cdc::store::ObjectStore;

    let db = MariaDb::start();
    db.sql(
        "CREATE DATABASE s;
         CREATE TABLE s.a (id INT PRIMARY KEY, v TEXT);
         CREATE TABLE s.b (id INT PRIMARY KEY, n BIGINT);
         CREATE TABLE s.c (id INT PRIMARY KEY, d DATETIME(3));
         INSERT INTO s.a SELECT seq, REPEAT(CONCAT('a', seq), seq % 9) FROM s.seq_1_to_400;
         INSERT INTO s.b SELECT seq, seq * seq FROM s.seq_1_to_300;
         INSERT INTO s.c SELECT seq, TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq SECOND FROM s.seq_1_to_200;
         UPDATE s.a SET v = 'changed' WHERE id % 7 = 0; DELETE FROM s.b WHERE id % 5 = 0;",
    );
    // Each run's objects by what they hold (`all`, `s/a`, ...), inflated.
    let mut runs = Vec::new();
    for (name, format, shard_tables) in [
        ("jsonl", OutputFormat::Jsonl, 1000),
        ("gz-one-shard", OutputFormat::JsonlGz, 1000),
        ("gz-three-shards", OutputFormat::JsonlGz, 1),
    ] {
        let store = LocalStore::new(db.dir.join(name));
        let config = PipelineConfig {
            format,
            shard_tables,
            view: View::Both,
            ..Default::default()
        };
        let deps = Deps::new(Arc::new(store.clone()), config, db.url());
        let it = pipeline_driver::run_iteration(&deps, RunInput::default(), Default::default())
            .await
            .unwrap();
        let mut objects = std::collections::BTreeMap::new();
        for key in it.outputs.iter().filter(|k| k.contains(".jsonl")) {
            let body = store.get(key).await.unwrap().unwrap().body;
            let (body, streams) = match format {
                OutputFormat::JsonlGz => inflate(&body),
                _ => (body, 0),
            };
            let holds = key.split("/dt=").next().unwrap().to_string();
            objects.insert(holds, (body, streams));
        }
        runs.push(objects);
    }
    let holds: Vec<&str> = runs[0].keys().map(String::as_str).collect();
    assert_eq!(holds, ["all", "s/a", "s/b", "s/c"]);
    let events = runs[0]["all"].0.iter().filter(|&&b| b == b'\n').count();
    // Each table's CREATE (a schema-change event), then its row events.
    assert_eq!(events, 3 + 400 + 300 + 200 + 400 / 7 + 300 / 5);
    for gz in &runs[1..] {
        for (what, (body, streams)) in gz {
            assert!(
                *body == runs[0][what].0,
                "{what}: the jsonl.gz object does not inflate to the jsonl one"
            );
            let tables = if what == "all" { 3 } else { 1 };
            assert_eq!(*streams, tables, "{what}: gzip streams");
        }
    }
}

/// A `jsonl.gz` object's bytes inflated, and how many gzip streams it joins.
fn inflate(mut gz: &[u8]) -> (Vec<u8>, usize) {
    use std::io::Read;
    let (mut out, mut streams) = (Vec::new(), 0);
    while !gz.is_empty() {
        // The decoder reads one stream, to its trailer, from the slice.
        flate2::bufread::GzDecoder::new(&mut gz)
            .read_to_end(&mut out)
            .unwrap();
        streams += 1;
    }
    (out, streams)
}
