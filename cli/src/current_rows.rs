//! `binlog-cdc current-rows`: the SQL of a table's current rows
//! (`binlog_cdc::current_rows`), generated from its `parquet` objects'
//! columns, key and statements.

use binlog_cdc::layout::Layout;
use binlog_cdc::{Error, Result};

use crate::args::CurrentRowsArgs;
use crate::run::open_store;

pub(crate) async fn print(args: CurrentRowsArgs) -> Result<()> {
    let Some((schema, table)) = args.table.split_once('.') else {
        return Err(Error::Config(format!(
            "{:?} is not schema.table",
            args.table
        )));
    };
    let (store, prefix) = open_store(&args.out).await;
    let config = binlog_cdc::config::PipelineConfig {
        prefix: binlog_cdc::config::normalize_prefix(&prefix),
        ..Default::default()
    };
    let objects = Layout::new(&config).table_objects(schema, table);
    let keys = store.list(&objects).await?;
    let t = fan_out_by_table::parquet::read::table_statements(store, schema, table, &keys).await?;
    if t.columns.is_empty() {
        return Err(Error::Config(format!(
            "{}: no parquet objects under {objects} in {}",
            args.table, args.out
        )));
    }
    let source = args.source.unwrap_or_else(|| {
        // The objects' keys are under the bucket (with the prefix), or
        // under the directory.
        let base = match args.out.strip_prefix("s3://") {
            Some(rest) => format!("s3://{}", rest.split('/').next().unwrap_or(rest)),
            None => args.out.trim_end_matches('/').to_string(),
        };
        binlog_cdc::current_rows::duckdb_source(&format!("{base}/{objects}dt=*/*.parquet"))
    });
    print!("{}", binlog_cdc::current_rows::sql(&source, &t));
    Ok(())
}
