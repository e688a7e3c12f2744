use std::time::Duration;

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    binlog_cdc_lambda::init_tracing();
    // Kept as a Result: init-db must answer CloudFormation even when its
    // settings or secret are wrong, or the stack waits an hour.
    let deps = binlog_cdc::pipeline::Deps::from_env_admin().await;
    if let Err(e) = &deps {
        tracing::error!(error = %e, "init-db could not start; every Create/Update will answer FAILED");
    }
    let sdk = binlog_cdc::aws::sdk_config().await;
    lambda_runtime::run(service_fn(
        |ev: LambdaEvent<
            CloudFormationCustomResourceRequest<init_db::Properties, init_db::Properties>,
        >| {
            let deps = &deps;
            let sdk = &sdk;
            async move {
                // Leave 10 s of the Lambda's time to send the response.
                let left = ev
                    .context
                    .deadline()
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default();
                let budget = left
                    .saturating_sub(Duration::from_secs(10))
                    .max(Duration::from_secs(1));
                let mut req = ev.payload;
                let password = init_db::resolve_password(&mut req, sdk).await;
                let deps = match (deps, &password) {
                    (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                    (Ok(d), Ok(())) => Ok(d),
                };
                init_db::handle(req, deps, budget)
                    .await
                    .map_err(binlog_cdc_lambda::diagnostic)
            }
        },
    ))
    .await
}
