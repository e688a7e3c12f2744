//! AWS clients, built on one HTTPS stack (rustls with ring). The endpoint
//! comes from the standard `AWS_ENDPOINT_URL` (moto server for local runs
//! and tests); S3 then uses path-style addressing.

use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

use crate::error::{Error, Result};

/// The shared SDK configuration: region, credentials and endpoint from the
/// standard environment and profiles.
pub async fn sdk_config() -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}

/// An S3 client; path-style when a custom endpoint is set.
pub fn s3_client(conf: &SdkConfig) -> aws_sdk_s3::Client {
    let custom = std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let s3 = aws_sdk_s3::config::Builder::from(conf)
        .force_path_style(custom)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// The database URL from a Secrets Manager secret in the RDS format.
pub async fn database_url(
    conf: &SdkConfig,
    source: &crate::config::DbSource,
    tls: crate::config::DbTls,
) -> Result<String> {
    match source {
        crate::config::DbSource::Url(u) => Ok(crate::config::with_tls(u.clone(), tls)),
        crate::config::DbSource::Secret {
            arn,
            credentials,
            endpoint,
        } => {
            let client = aws_sdk_secretsmanager::Client::new(conf);
            let connection = secret_string(&client, arn, "the database secret").await?;
            let creds = match credentials {
                Some(c) => {
                    Some(secret_string(&client, c, "the database credentials secret").await?)
                }
                None => None,
            };
            crate::config::url_from_secrets(&connection, creds.as_deref(), endpoint, tls)
        }
    }
}

/// A secret's `SecretString`. A missing secret or denied access is definite
/// (a ConfigError); throttling and network trouble are retryable.
pub async fn secret_string(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
    what: &str,
) -> Result<String> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
            let (code, retryable) = match &e {
                aws_sdk_secretsmanager::error::SdkError::ServiceError(se) => {
                    let code = se.err().code().unwrap_or("unknown").to_string();
                    let retry = matches!(
                        code.as_str(),
                        "InternalServiceError" | "ThrottlingException"
                    );
                    (code, retry)
                }
                _ => (e.to_string(), true),
            };
            Error::Storage {
                context: format!("reading {what} {arn}"),
                msg: code,
                retryable,
            }
        })?;
    out.secret_string()
        .map(str::to_string)
        .ok_or_else(|| Error::Config(format!("{what} {arn} has no SecretString")))
}
