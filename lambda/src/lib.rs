//! The Lambda glue the five functions share: JSON logs ([`init_tracing`]),
//! the error Step Functions sees ([`diagnostic`]: its `errorType` is the
//! error's stable name), and [`serve`], which runs a pipeline step with its
//! [`Deps`] built once per process. Only the functions link the Lambda
//! runtime: the pipeline library and the CLI do not.

use binlog_cdc::error::{Error, Result};
use binlog_cdc::pipeline::Deps;

/// Sets up JSON logs for a Lambda (level from `RUST_LOG`, default info).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .without_time()
        .try_init();
}

/// The Lambda error for Step Functions: `errorType` is the stable name.
pub fn diagnostic(e: Error) -> lambda_runtime::Diagnostic {
    tracing::error!(error_type = e.name(), error = %e, "step failed");
    lambda_runtime::Diagnostic {
        error_type: e.name().to_string(),
        error_message: e.to_string(),
    }
}

/// The process's dependencies, built by [`serve`] on the first call.
static DEPS: tokio::sync::OnceCell<Deps> = tokio::sync::OnceCell::const_new();

/// Runs a pipeline step as a Lambda: `handle` answers each event with the
/// [`Deps`] that `build` makes on the first call (and again after a failed
/// build, so a start-up failure such as a missing secret answers that call
/// with its error name, ConfigError or Transient, instead of ending the
/// process); errors reach Step Functions by their stable names.
pub async fn serve<I, O, B, BF, H, HF>(build: B, handle: H) -> Result<(), lambda_runtime::Error>
where
    I: serde::de::DeserializeOwned + Send + 'static,
    O: serde::Serialize + Send + 'static,
    B: Fn() -> BF,
    BF: std::future::Future<Output = Result<Deps>>,
    H: Fn(I, &'static Deps) -> HF,
    HF: std::future::Future<Output = Result<O>>,
{
    init_tracing();
    lambda_runtime::run(lambda_runtime::service_fn(
        |ev: lambda_runtime::LambdaEvent<I>| async {
            let deps = DEPS.get_or_try_init(&build).await.map_err(diagnostic)?;
            handle(ev.payload, deps).await.map_err(diagnostic)
        },
    ))
    .await
}
