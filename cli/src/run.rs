//! `binlog-cdc run`: the pipeline in this process, until caught up, and its
//! report; and the store `--out` names (shared with `status`).

use std::time::Instant;

use binlog_cdc::{Error, Result};

use crate::args::RunArgs;

/// The store `--out` names, and its key prefix.
pub(crate) async fn open_store(
    out: &str,
) -> (std::sync::Arc<dyn binlog_cdc::store::ObjectStore>, String) {
    use binlog_cdc::store::{local::LocalStore, s3::S3Store};
    use std::sync::Arc;
    match out.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let sdk = binlog_cdc::aws::sdk_config().await;
            (
                Arc::new(S3Store::new(binlog_cdc::aws::s3_client(&sdk), bucket)),
                prefix.to_string(),
            )
        }
        None => (Arc::new(LocalStore::new(out)), String::new()),
    }
}

pub(crate) async fn run(args: RunArgs) -> Result<()> {
    use binlog_cdc::config::{PipelineConfig, StartAt};
    use binlog_cdc::contracts::RunInput;
    use binlog_cdc::pipeline::Deps;

    let (store, prefix) = open_store(&args.target.out).await;
    let hash_key = args.events.hash_key().await?;
    let config = PipelineConfig {
        prefix: binlog_cdc::config::normalize_prefix(&prefix),
        chunk_bytes: args.chunk_bytes,
        max_run_bytes: args.max_run_bytes,
        max_run_chunks: args.max_run_chunks,
        server_id_base: args.server_id_base,
        start_at: match args.start_at.as_str() {
            "oldest" => StartAt::Oldest,
            "latest" => StartAt::Latest,
            o => {
                return Err(Error::Config(format!(
                    "--start-at {o:?}: expected oldest or latest"
                )))
            }
        },
        format: args.format,
        view: args.events.view,
        include: args.events.include,
        exclude: args.events.exclude,
        column_rules: args.events.column_rules,
        max_concurrency: args.concurrency.max(1),
        snapshot_range_rows: args.snapshot_range_rows,
        snapshot_ranges_per_run: args.snapshot_ranges_per_run,
        ..Default::default()
    };
    config.validate()?;
    let glue = match &args.glue_database {
        Some(database) => Some(glue_catalog(database, &args.target.out, &config).await?),
        None => None,
    };
    let mut deps = Deps::new(store, config, args.target.options());
    deps.catalog = glue;
    deps.column_rules_keyed(hash_key).await?;
    let started = Instant::now();
    let input = RunInput {
        from: args.from,
        to: args.to,
        commit: args.no_commit.then_some(false),
        restart_at: args.restart_at,
        snapshot: (!args.snapshot.is_empty()).then_some(args.snapshot),
        ..Default::default()
    };
    let iterations = pipeline_driver::run_until_caught_up(&deps, input).await?;
    let report = run_report(&iterations, &deps.store.describe(), started.elapsed());
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    Ok(())
}
/// `--glue-database`: Glue tables over parquet objects on S3.
async fn glue_catalog(
    database: &str,
    out: &str,
    config: &binlog_cdc::config::PipelineConfig,
) -> Result<binlog_cdc::catalog::Catalog> {
    let bucket = out
        .strip_prefix("s3://")
        .map(|r| r.split('/').next().unwrap_or(r));
    match bucket {
        Some(bucket) if config.format == binlog_cdc::config::OutputFormat::Parquet => {
            let sdk = binlog_cdc::aws::sdk_config().await;
            Ok(binlog_cdc::catalog::Catalog::connect(&sdk, database, bucket))
        }
        _ => Err(Error::Config(format!(
            "--glue-database {database}: needs --format parquet and --out s3://BUCKET[/PREFIX] (Glue tables read objects on S3)"
        ))),
    }
}

/// What `binlog-cdc run` prints: the runs it made, and their totals (the
/// range from the first run's start to the last run's end).
fn run_report(
    iterations: &[pipeline_driver::Iteration],
    store: &str,
    elapsed: std::time::Duration,
) -> serde_json::Value {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    let mut statements = binlog_cdc::contracts::StatementCounts::default();
    let mut outputs = Vec::new();
    let mut steps = [0f64; 4];
    let runs: Vec<serde_json::Value> = iterations
        .iter()
        .map(|it| {
            for (t, n) in &it.counts {
                *counts.entry(t.clone()).or_default() += n;
            }
            statements.add(&it.statements);
            outputs.extend(it.outputs.iter().cloned());
            let s = &it.steps;
            let secs = [
                s.list_binlogs,
                s.parse_chunks,
                s.fan_out,
                s.commit_checkpoint,
            ];
            for (total, d) in steps.iter_mut().zip(secs) {
                *total += d.as_secs_f64();
            }
            let p = &it.plan;
            serde_json::json!({
                "status": p.status, "runId": p.run_id, "from": p.from, "to": p.to,
                "chunks": p.chunks.len(), "reason": p.reason,
                "committed": it.commit.as_ref().map(|c| c.committed),
                "progress": it.commit.as_ref().map(|c| c.progress),
                "counts": it.counts, "statements": it.statements,
            })
        })
        .collect();
    let first = iterations.first().map(|it| &it.plan);
    let last = iterations.last().map(|it| &it.plan);
    serde_json::json!({
        "status": last.map(|p| p.status), "from": first.and_then(|p| p.from.clone()),
        "to": last.and_then(|p| p.to.clone()),
        "chunks": iterations.iter().map(|it| it.plan.chunks.len()).sum::<usize>(),
        "committed": iterations.iter().any(|it| it.commit.as_ref().is_some_and(|c| c.committed)),
        "counts": counts, "statements": statements, "outputs": outputs, "runs": runs, "store": store,
        "seconds": elapsed.as_secs_f64(),
        "stepSeconds": {
            "listBinlogs": steps[0], "parseChunks": steps[1], "fanOut": steps[2], "commitCheckpoint": steps[3],
        },
    })
}
