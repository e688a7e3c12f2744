//! `meta.json`, the checkpoint: read with its ETag, committed with a
//! conditional write so that of two runs that read the same checkpoint, only
//! one moves it.

use crate::contracts::Meta;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::store::{ObjectStore, PutCondition};

/// The committed checkpoint and its ETag, or `None` before the first commit.
pub async fn read(store: &dyn ObjectStore, layout: &Layout) -> Result<Option<(Meta, String)>> {
    let key = layout.meta();
    // Found by listing it (see `store::find`): the first run sees "absent",
    // never AccessDenied.
    let Some(obj) = crate::store::find(store, &key).await? else {
        return Ok(None);
    };
    let meta: Meta = serde_json::from_slice(&obj.body).map_err(|e| {
        Error::Config(format!(
            "{}/{key} is not a binlog-cdc checkpoint ({e}); move it away to start over",
            store.describe()
        ))
    })?;
    Ok(Some((meta, obj.etag)))
}

/// Writes `meta` if the checkpoint is still the one read (`expected_etag`),
/// or still absent (`None`). A lost race is [`Error::ConcurrentRun`].
pub async fn commit(
    store: &dyn ObjectStore,
    layout: &Layout,
    meta: &Meta,
    expected_etag: Option<&str>,
) -> Result<String> {
    let body = serde_json::to_vec_pretty(meta).map_err(|e| Error::encode("meta.json", e))?;
    let cond = match expected_etag {
        Some(etag) => PutCondition::IfMatch(etag.to_string()),
        None => PutCondition::IfAbsent,
    };
    match store.put(&layout.meta(), body, cond).await {
        Err(Error::PreconditionFailed { key }) => Err(Error::ConcurrentRun(format!(
            "{key} changed since this run read it: another run committed first; this run commits nothing \
             (its range will be read again from the new checkpoint)"
        ))),
        other => other,
    }
}
