//! What every pipeline step needs, built once per process (a Lambda cold
//! start, or `binlog-cdc run`): the object store and layout, the settings, the
//! database URL (from Secrets Manager or a URL), a Step Functions client
//! where concurrent executions are checked, and the EventBridge bus commits
//! are announced on.
//!
//! A database URL from Secrets Manager is read at start-up and read again
//! when the server refuses its password: the secret was rotated since (RDS
//! rotates managed secrets on a schedule), and a warm Lambda must follow.

use std::sync::Arc;

use crate::config::{DbSource, DbTls, PipelineConfig};
use binlog_decoder::error::{server_codes, Error as DecoderError};

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::store::s3::S3Store;
use crate::store::ObjectStore;
use binlog_decoder::column_rules::{ColumnRules, HashKey};
use binlog_decoder::source::connect::{connect, ConnectOptions};

/// Cheap to clone: a clone shares the store, and the connection options as
/// the secret is read again.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn ObjectStore>,
    pub layout: Layout,
    pub config: PipelineConfig,
    /// How to connect to the database, as last read (see [`Deps::connect`]).
    db: Arc<std::sync::Mutex<ConnectOptions>>,
    /// Where the URL comes from, when it can be read again.
    db_secret: Option<(aws_config::SdkConfig, DbSource, DbTls)>,
    pub sfn: Option<aws_sdk_sfn::Client>,
    /// Where CommitCheckpoint announces each commit (`EVENT_BUS_NAME`).
    pub events: Option<crate::notify::EventBus>,
    /// Where CommitCheckpoint keeps a Glue table per source table
    /// (`GLUE_DATABASE`, `parquet` only).
    pub catalog: Option<crate::catalog::Catalog>,
    /// The key of `hash` column rules, as given (`--hash-key-file`).
    pub hash_key: Option<HashKey>,
    /// The secret holding it (parse-chunk's `HASH_KEY_SECRET_ARN`), read
    /// anew for every chunk: a rotated key applies from the next chunk on.
    hash_key_secret: Option<String>,
}

impl Deps {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        config: PipelineConfig,
        db: impl Into<ConnectOptions>,
    ) -> Self {
        Self {
            layout: Layout::new(&config),
            store,
            config,
            db: Arc::new(std::sync::Mutex::new(db.into())),
            db_secret: None,
            sfn: None,
            events: None,
            catalog: None,
            hash_key: None,
            hash_key_secret: None,
        }
    }

    /// Sets the key of `hash` rules, checking the rules have what they need.
    pub async fn column_rules_keyed(&mut self, key: Option<HashKey>) -> Result<()> {
        self.hash_key = key;
        self.column_rules().await.map(|_| ())
    }

    /// The column rules events are written under (see [`ColumnRules`]),
    /// `hash` keyed by the key as it is now.
    pub async fn column_rules(&self) -> Result<ColumnRules> {
        let key = match &self.hash_key_secret {
            Some(arn) => Some(crate::aws::hash_key(arn).await?),
            None => self.hash_key.clone(),
        };
        self.config.column_rules(key)
    }

    /// How to connect to the database, as last read.
    pub fn db(&self) -> ConnectOptions {
        self.db
            .lock()
            .map(|u| u.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// A connection to the database. When the server refuses the password
    /// and the URL came from a secret, the secret is read again and, if it
    /// changed (rotated), the connection is tried once more with it.
    pub async fn connect(&self) -> Result<mysql_async::Conn> {
        let db = self.db();
        let err = match connect(&db).await {
            Ok(conn) => return Ok(conn),
            Err(e) => e,
        };
        let refused = matches!(&err, DecoderError::Mysql { source: mysql_async::Error::Server(s), .. } if s.code == server_codes::ER_ACCESS_DENIED_ERROR);
        let Some((sdk, source, tls)) = self.db_secret.as_ref().filter(|_| refused) else {
            return Err(err.into());
        };
        let fresh = crate::aws::database(sdk, source, tls).await?;
        if fresh == db {
            return Err(err.into());
        }
        tracing::info!("the database refused the password: the secret was read again (rotated)");
        let conn = connect(&fresh).await?;
        if let Ok(mut u) = self.db.lock() {
            *u = fresh;
        }
        Ok(conn)
    }

    /// Connection options the server accepted just now, for readers that
    /// open their own connections (see [`Deps::connect`]).
    pub async fn checked_db(&self) -> Result<ConnectOptions> {
        let conn = self.connect().await?;
        let _ = conn.disconnect().await;
        Ok(self.db())
    }

    /// For a Lambda: settings from the environment, S3 bucket `BUCKET`.
    pub async fn from_env() -> Result<Self> {
        Self::from_env_with(DbSource::from_env()?).await
    }

    /// For parse-chunk: [`Deps::from_env`], and the key of `hash` column
    /// rules in the secret `HASH_KEY_SECRET_ARN` names, if set (read at
    /// start-up, so that a missing key fails there, and for every chunk).
    pub async fn from_env_with_hash_key() -> Result<Self> {
        let mut deps = Self::from_env().await?;
        deps.hash_key_secret = std::env::var("HASH_KEY_SECRET_ARN")
            .ok()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty());
        deps.column_rules().await?;
        Ok(deps)
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
        let tls = DbTls::from_env()?;
        let options = match &db {
            Some(db) => crate::aws::database(&sdk, db, &tls).await?,
            None => ConnectOptions::default(),
        };
        let mut deps = Self::new(store, config, options);
        deps.sfn = Some(aws_sdk_sfn::Client::new(&sdk));
        deps.events = crate::notify::EventBus::from_env(&sdk);
        deps.catalog = crate::catalog::Catalog::from_env(&sdk);
        deps.db_secret = db
            .filter(|d| matches!(d, DbSource::Secret { .. }))
            .map(|d| (sdk, d, tls));
        Ok(deps)
    }
}
