//! The output prefixes hold committed runs' objects only, at every moment a
//! reader can see them (every object under them is counted, not only what
//! `meta.json` names):
//! - a run that fails after fan-out leaves nothing under them;
//! - a commit that stops after writing `meta.json`, before publishing,
//!   shows nothing either, and the next commit finishes its publication
//!   before its own;
//! - then every event of the whole range is under them exactly once;
//! - a replay leaves them unchanged and publishes under `replay/{runId}/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::{
    ChunkAck, CommitInput, FanOutRequest, ListBinlogsInput, RunInput, RunPlan,
};
use binlog_cdc::decoder::event::View;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc::store::{Object, ObjectStore, ObjectWriter, PutCondition};
use binlog_cdc::{Error, Result};
use binlog_cdc_tests::{pipeline, MariaDb};
use serde_json::Value;

/// A real directory store whose promotions fail: a commit that stops after
/// `meta.json`, before its objects are published.
struct PublishingFails(LocalStore);

#[async_trait]
impl ObjectStore for PublishingFails {
    async fn get(&self, key: &str) -> Result<Option<Object>> {
        self.0.get(key).await
    }
    async fn put(&self, key: &str, body: Vec<u8>, cond: PutCondition) -> Result<String> {
        self.0.put(key, body, cond).await
    }
    async fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        self.0.writer(key).await
    }
    async fn promote(&self, from: &str, _: &str) -> Result<bool> {
        Err(Error::storage(
            from.to_string(),
            "injected: the commit stops here",
            true,
        ))
    }
    async fn duplicate(&self, from: &str, to: &str) -> Result<bool> {
        self.0.duplicate(from, to).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.0.exists(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.0.list(prefix).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        self.0.delete_prefix(prefix).await
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

fn config() -> PipelineConfig {
    PipelineConfig {
        chunk_bytes: 4096,
        part_bytes: 4096,
        view: View::Both,
        ..Default::default()
    }
}

/// ListBinlogs, ParseChunks and the three fan-out steps: a run up to its
/// commit.
async fn up_to_commit(deps: &Deps) -> RunPlan {
    let plan = list_binlogs::handle(
        ListBinlogsInput {
            input: RunInput::default(),
            ..Default::default()
        },
        deps,
    )
    .await
    .unwrap();
    for chunk in plan.chunks.clone() {
        let _: ChunkAck = parse_chunk::handle(chunk, deps).await.unwrap();
    }
    let planned = fan_out_by_table::plan::handle(&plan, deps).await.unwrap();
    for shard in planned.shards {
        let request = FanOutRequest::Shard { shard };
        fan_out_by_table::handle(request, deps).await.unwrap();
    }
    fan_out_by_table::join::handle(&plan.run_id, deps)
        .await
        .unwrap();
    plan
}

/// Every object under the per-table prefixes (not staging, replays,
/// manifests, the all-tables objects, the schema history or the checkpoint),
/// by key.
async fn live_objects(store: &LocalStore) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for key in store.list("").await.unwrap() {
        let top = key.split('/').next().unwrap_or_default();
        let not_tables = ["staging", "replay", "manifests", "all", "schemas"];
        if key.contains('/') && !not_tables.contains(&top) {
            out.insert(key.clone(), store.get(&key).await.unwrap().unwrap().body);
        }
    }
    out
}

/// The events of per-table objects (`json` format), by `schema.table`, in
/// the order of `keys` (runs in commit order).
fn events_of(
    objects: &BTreeMap<String, Vec<u8>>,
    keys: &[&String],
) -> BTreeMap<String, Vec<Value>> {
    let mut all = Vec::new();
    for key in keys {
        let doc: Value = serde_json::from_slice(&objects[*key]).unwrap();
        all.extend(doc["events"].as_array().unwrap().iter().cloned());
    }
    pipeline::by_table(all)
}

#[tokio::test]
async fn prefixes_hold_committed_runs_only() {
    let db = MariaDb::start();
    let dir = db.dir.join("out");
    let store = LocalStore::new(&dir);
    let deps = Deps::new(Arc::new(store.clone()), config(), db.url());
    let first = db.position();
    let write = |round: u32| {
        db.sql(&format!(
            "INSERT INTO s.a SELECT seq + {round}000, 'round {round}' FROM s.seq_1_to_200;
             UPDATE s.b SET n = n + {round}; DELETE FROM s.b WHERE id = {round};"
        ))
    };
    db.sql(
        "CREATE DATABASE s; CREATE TABLE s.a (id INT PRIMARY KEY, v VARCHAR(40));
         CREATE TABLE s.b (id INT PRIMARY KEY, n INT);
         INSERT INTO s.b SELECT seq, 0 FROM s.seq_1_to_50;",
    );
    write(1);

    // Run 1 fails after fan-out: nothing under the prefixes.
    let failed = up_to_commit(&deps).await;
    assert!(!failed.chunks.is_empty());
    assert!(live_objects(&store).await.is_empty());

    // Run 2 commits, then stops before publishing: still nothing visible.
    write(2);
    let stopping = Deps::new(Arc::new(PublishingFails(store.clone())), config(), db.url());
    let plan2 = up_to_commit(&stopping).await;
    assert_ne!(plan2.run_id, failed.run_id, "run 2 plans a longer range");
    let err = commit_checkpoint::handle(
        CommitInput {
            plan: plan2.clone(),
            loop_state: Default::default(),
        },
        &stopping,
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let (meta2, _) = pipeline::meta(&deps).await.unwrap();
    assert_eq!(meta2.run_id, plan2.run_id, "run 2 committed");
    assert!(live_objects(&store).await.is_empty());

    // Run 3 publishes run 2's objects, then its own.
    write(3);
    let plan3 = up_to_commit(&deps).await;
    let commit3 = commit_checkpoint::handle(
        CommitInput {
            plan: plan3.clone(),
            loop_state: Default::default(),
        },
        &deps,
    )
    .await
    .unwrap();
    assert!(commit3.committed);
    let (meta3, etag3) = pipeline::meta(&deps).await.unwrap();
    let live = live_objects(&store).await;
    let names: Vec<&String> = (meta2.outputs.iter().chain(&meta3.outputs))
        .filter(|k| !k.starts_with("all/") && !k.starts_with("schemas/"))
        .collect();
    assert_eq!(
        live.keys().collect::<std::collections::BTreeSet<_>>(),
        names.iter().copied().collect(),
        "the objects under the prefixes are exactly runs 2 and 3's"
    );
    let want = pipeline::independent(&db.url(), &first, &meta3.position.position).await;
    pipeline::assert_same_events(&events_of(&live, &names), &want);
    assert!(store
        .list(&deps.layout.staging_run(&plan2.run_id))
        .await
        .unwrap()
        .is_empty());

    // A replay of run 3: the live prefixes do not change; its objects are
    // under replay/{runId}/, the same bytes as the committed ones.
    let replay = RunInput {
        from: plan3.from.clone(),
        to: plan3.to.clone(),
        commit: Some(false),
        ..Default::default()
    };
    let it = pipeline_driver::run_iteration(&deps, replay, Default::default())
        .await
        .unwrap();
    assert_eq!(live_objects(&store).await, live);
    assert_eq!(pipeline::meta(&deps).await.unwrap().1, etag3);
    assert_eq!(it.outputs.len(), meta3.outputs.len());
    for (replayed, committed) in it.outputs.iter().zip(&meta3.outputs) {
        assert_eq!(
            *replayed,
            deps.layout.replay_output(&plan3.run_id, committed)
        );
        let a = store.get(replayed).await.unwrap().unwrap().body;
        let b = store.get(committed).await.unwrap().unwrap().body;
        assert!(a == b, "{replayed} differs from {committed}");
    }
}

/// The Glue table in `infra/template.yaml` over the line formats: every field
/// an event of the all-tables object can carry is one of its columns, and the
/// objects sit under the `all/dt=YYYY-MM-DD/` its partition projection reads.
#[tokio::test]
async fn the_athena_table_has_a_column_for_every_field() {
    let template =
        std::fs::read_to_string(binlog_cdc_tests::workspace_root().join("infra/template.yaml"))
            .unwrap();
    let table = &template[template.find("ChangeEventsTable:").expect("the Glue table")..];
    let columns: Vec<String> = table
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.trim().strip_prefix("- {Name: "))
        .filter_map(|l| l.split(',').next())
        .map(str::to_string)
        .collect();
    assert!(
        table.contains("all/dt=${!dt}/"),
        "the projection's location"
    );

    let db = MariaDb::start();
    let dir = db.dir.join("out");
    let store = LocalStore::new(&dir);
    let config = PipelineConfig {
        format: binlog_cdc::config::OutputFormat::Jsonl,
        view: View::Both,
        ..Default::default()
    };
    let deps = Deps::new(Arc::new(store.clone()), config, db.url());
    db.sql(
        "CREATE DATABASE s; CREATE TABLE s.a (id INT PRIMARY KEY, v VARCHAR(40));
         INSERT INTO s.a VALUES (1, 'x'), (2, 'y'); UPDATE s.a SET v = 'z' WHERE id = 1;
         DELETE FROM s.a WHERE id = 2;",
    );
    let it = pipeline_driver::run_iteration(&deps, RunInput::default(), Default::default())
        .await
        .unwrap();
    let all = it
        .outputs
        .iter()
        .find(|k| k.starts_with("all/"))
        .expect("an all-tables object");
    let day = binlog_cdc::clock::date(i64::from(
        pipeline::meta(&deps).await.unwrap().0.timestamp.unwrap(),
    ));
    assert!(all.starts_with(&format!("all/dt={day}/")), "{all}");
    let body = store.get(all).await.unwrap().unwrap().body;
    // One table: the all-tables object is the table's object, duplicated.
    let table_key = it
        .outputs
        .iter()
        .find(|k| k.starts_with("s/a/"))
        .expect("s.a's object");
    assert_eq!(store.get(table_key).await.unwrap().unwrap().body, body);
    let mut seen = std::collections::BTreeSet::new();
    for line in String::from_utf8(body).unwrap().lines() {
        let event: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
        seen.extend(event.keys().map(|k| k.to_lowercase()));
    }
    assert!(
        seen.contains("delta") && seen.contains("oldimage"),
        "{seen:?}"
    );
    for field in &seen {
        assert!(
            columns.contains(field),
            "no column for {field}: {columns:?}"
        );
    }
}
