// The lazily built Deps nests the AWS SDK futures deeper than the default
// query depth allows (rustc suggests this limit).
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    binlog_cdc::pipeline::init_lambda_tracing();
    // Built on the first call (and again after a failed build): a start-up
    // failure, such as a missing secret, answers that call with its error
    // name (ConfigError, or Transient to retry) instead of ending the process.
    let deps = tokio::sync::OnceCell::new();
    lambda_runtime::run(service_fn(
        |ev: LambdaEvent<binlog_cdc::contracts::FanOutRequest>| async {
            let deps = deps
                .get_or_try_init(binlog_cdc::pipeline::Deps::from_env_storage_only)
                .await
                .map_err(binlog_cdc::pipeline::diagnostic)?;
            fan_out_by_table::handle(ev.payload, deps)
                .await
                .map_err(binlog_cdc::pipeline::diagnostic)
        },
    ))
    .await
}
