use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    binlog_cdc::pipeline::init_lambda_tracing();
    let deps = binlog_cdc::pipeline::Deps::from_env_storage_only().await?;
    lambda_runtime::run(service_fn(
        |ev: LambdaEvent<binlog_cdc::contracts::CommitInput>| async {
            commit_checkpoint::handle(ev.payload, &deps)
                .await
                .map_err(binlog_cdc::pipeline::diagnostic)
        },
    ))
    .await
}
