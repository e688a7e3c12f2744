// The lazily built Deps nests the AWS SDK futures deeper than the default
// query depth allows (rustc suggests this limit).
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    binlog_cdc_lambda::serve(
        binlog_cdc::pipeline::Deps::from_env_with_hash_key,
        parse_chunk::handle,
    )
    .await
}
