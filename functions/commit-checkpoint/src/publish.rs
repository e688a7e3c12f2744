//! Publication: a run's objects go from its staging to their keys only after
//! `meta.json` names the run, so the output prefixes hold committed runs'
//! objects and nothing else, at every moment a reader can see them. A
//! replay's objects go under `replay/{runId}/`, never the live keys.
//!
//! Each object is one server-side copy (S3; a rename in a local directory),
//! and copying again is harmless: a retried or redriven commit, or the next
//! run's commit, finishes a publication that stopped part-way. Staging is
//! removed only after every object is published, so an object missing from
//! both places is a definite error, never skipped.
//!
//! Then [`announce`] sends the run's `RunCommitted` event (see
//! `binlog_cdc::notify`), before staging goes: a commit that stops before
//! sending it is finished, event included, by whichever commit comes next.

use binlog_cdc::contracts::{FanOutPlan, Meta};
use binlog_cdc::error::{Error, Result};
use binlog_cdc::layout::Publication;
use binlog_cdc::notify::RunCommitted;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::{find_json, put_json};
use futures_util::stream::{self, StreamExt, TryStreamExt};

/// Copies in flight at once: each is one request S3 serves by itself.
const PUBLISH_CONCURRENCY: usize = 16;

/// Publishes the run's objects (to their keys when `commit`, else under
/// `replay/{runId}/`); returns how many.
pub async fn publish(fan: &FanOutPlan, commit: bool, deps: &Deps) -> Result<usize> {
    let all = deps.layout.publications(fan, commit);
    let n = all.len();
    stream::iter(all)
        .map(|p| async move { promote(&p, deps).await })
        .buffer_unordered(PUBLISH_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    tracing::info!(run_id = %fan.run_id, objects = n, commit, "run published");
    Ok(n)
}

async fn promote(p: &Publication, deps: &Deps) -> Result<()> {
    let store = deps.store.as_ref();
    if store.promote(&p.staged, &p.key).await? || store.exists(&p.key).await? {
        return Ok(());
    }
    Err(Error::storage(
        p.key.clone(),
        format!(
            "a committed run's object is neither staged ({}) nor published: staging expired before \
             its publication finished; replay the run's range to write it again",
            p.staged
        ),
        false,
    ))
}

/// Sends the committed run's `RunCommitted` event, when the pipeline has a
/// bus; lists too large for the event go to a manifest object first.
pub async fn announce(meta: &Meta, fan: &FanOutPlan, deps: &Deps) -> Result<()> {
    let Some(bus) = &deps.events else {
        return Ok(());
    };
    let mut event = RunCommitted::new(&bus.pipeline, meta, fan);
    let key = deps.layout.manifest(&meta.run_id);
    if let Some(manifest) = event.split_if_large(&key)? {
        put_json(deps.store.as_ref(), &key, &manifest).await?;
    }
    bus.put(&event).await
}

/// Finishes the publication of the committed run `meta` names when its
/// staging is still there (its execution stopped after writing
/// `meta.json`): its objects, its Glue tables, its event, then its staging
/// goes. Returns whether there was anything to finish.
pub async fn finish_committed(meta: &Meta, deps: &Deps) -> Result<bool> {
    let key = deps.layout.fan_out_plan(&meta.run_id);
    let Some(fan) = find_json::<FanOutPlan>(deps.store.as_ref(), &key).await? else {
        return Ok(false);
    };
    tracing::warn!(run_id = %meta.run_id, "finishing the publication of a committed run");
    publish(&fan, true, deps).await?;
    crate::tables::follow(&fan, deps).await?;
    announce(meta, &fan, deps).await?;
    deps.store
        .delete_prefix(&deps.layout.staging_run(&meta.run_id))
        .await?;
    Ok(true)
}
