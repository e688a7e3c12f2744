//! `binlog-cdc status`: where the stream stands, printed; healthy or not.

use binlog_cdc::Result;

use crate::args::StatusArgs;
use crate::run::open_store;

/// Prints the status; `Ok(healthy)`.
pub(crate) async fn status(args: StatusArgs) -> Result<bool> {
    use binlog_cdc::config::PipelineConfig;
    use binlog_cdc::pipeline::Deps;
    use pipeline_driver::status::Thresholds;

    let (store, prefix) = open_store(&args.target.out).await;
    // Its own replication server id, below the pipeline's: a server drops an
    // older dump when another connects with the same id, and status may run
    // while a scheduled run plans.
    let defaults = PipelineConfig::default();
    let config = PipelineConfig {
        prefix: binlog_cdc::config::normalize_prefix(&prefix),
        server_id_base: defaults.server_id_base - 1,
        ..defaults
    };
    let deps = Deps::new(store, config, args.target.options());
    let limits = Thresholds {
        max_lag_seconds: args.max_lag_seconds,
        min_headroom_percent: args.min_headroom_percent,
    };
    let st = pipeline_driver::status::status(&deps, limits).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
    } else {
        print_status(&st);
    }
    Ok(st.healthy)
}

fn print_status(st: &pipeline_driver::status::Status) {
    let or = |v: Option<String>, none: &str| v.unwrap_or_else(|| none.to_string());
    println!("{}", if st.healthy { "healthy" } else { "UNHEALTHY" });
    for p in &st.problems {
        println!("  {p}");
    }
    println!(
        "checkpoint          {}",
        or(
            st.checkpoint.as_ref().map(|c| c.to_string()),
            "(none: no run committed yet)"
        )
    );
    if let Some(r) = &st.last_run {
        let tables = if r.tables == 1 { "table" } else { "tables" };
        println!(
            "last run            {} at {}: {} events in {} {tables}",
            r.run_id, r.committed_at, r.events, r.tables
        );
    }
    println!(
        "lag                 {}",
        or(
            st.lag_seconds
                .map(|s| format!("{s} s (newest committed event)")),
            "-"
        )
    );
    println!(
        "bytes behind        {}",
        or(st.behind_bytes.map(|b| b.to_string()), "-")
    );
    println!(
        "retention headroom  {}",
        or(
            st.retention_headroom
                .map(|h| format!("{} s ({:.0}% of the retention)", h.seconds, h.percent)),
            "- (no time limit, or no recorded history)"
        )
    );
    println!(
        "schema history      {} ({} tables)",
        st.schema_history.location, st.schema_history.tables
    );
    if let Some(s) = &st.snapshot {
        println!(
            "snapshot            {}: {} of {} tables, {} ranges{}",
            s.id,
            s.tables_done,
            s.tables,
            s.ranges,
            if s.done() { ", done" } else { ", going on" }
        );
    }
    match &st.next_run {
        Some(n) => println!(
            "next run            {} .. {} in {} chunks{}",
            or(n.from.as_ref().map(|p| p.to_string()), "?"),
            or(n.to.as_ref().map(|p| p.to_string()), "?"),
            n.chunks,
            if n.more { ", then more (budget)" } else { "" }
        ),
        None => println!("next run            nothing to read"),
    }
}
