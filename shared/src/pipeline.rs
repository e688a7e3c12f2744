//! What every pipeline step needs, built once per process (a Lambda cold
//! start, or `binlog-cdc run`): the object store and layout, the settings, the
//! database URL (from Secrets Manager or a URL), and a Step Functions client
//! where concurrent executions are checked.

use std::sync::Arc;

use crate::config::{DbSource, DbTls, PipelineConfig};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::store::s3::S3Store;
use crate::store::ObjectStore;

pub struct Deps {
    pub store: Arc<dyn ObjectStore>,
    pub layout: Layout,
    pub config: PipelineConfig,
    pub db_url: String,
    pub sfn: Option<aws_sdk_sfn::Client>,
}

impl Deps {
    pub fn new(store: Arc<dyn ObjectStore>, config: PipelineConfig, db_url: String) -> Self {
        Self {
            layout: Layout::new(&config),
            store,
            config,
            db_url,
            sfn: None,
        }
    }

    /// For a Lambda: settings from the environment, S3 bucket `BUCKET`.
    pub async fn from_env() -> Result<Self> {
        Self::from_env_with(DbSource::from_env()?).await
    }

    /// For init-db: the admin database account (see `DbSource::admin_from_env`).
    pub async fn from_env_admin() -> Result<Self> {
        Self::from_env_with(DbSource::admin_from_env()?).await
    }

    /// For the steps that never connect to the database (fan-out-by-table,
    /// commit-checkpoint): no secret is read, so they need no access to it.
    pub async fn from_env_storage_only() -> Result<Self> {
        Self::build(None).await
    }

    async fn from_env_with(db: DbSource) -> Result<Self> {
        Self::build(Some(db)).await
    }

    async fn build(db: Option<DbSource>) -> Result<Self> {
        let config = PipelineConfig::from_env()?;
        let sdk = crate::aws::sdk_config().await;
        let bucket = std::env::var("BUCKET").map_err(|_| Error::Config("set BUCKET".into()))?;
        let store: Arc<dyn ObjectStore> =
            Arc::new(S3Store::new(crate::aws::s3_client(&sdk), bucket));
        let db_url = match db {
            Some(db) => crate::aws::database_url(&sdk, &db, DbTls::from_env()?).await?,
            None => String::new(),
        };
        let mut deps = Self::new(store, config, db_url);
        deps.sfn = Some(aws_sdk_sfn::Client::new(&sdk));
        Ok(deps)
    }
}

/// Sets up JSON logs for a Lambda (level from `RUST_LOG`, default info).
pub fn init_lambda_tracing() {
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
