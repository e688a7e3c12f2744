//! AWS clients, built on one HTTPS stack (rustls with ring). The endpoint
//! comes from the standard `AWS_ENDPOINT_URL` (moto server for local runs
//! and tests); S3 then uses path-style addressing.

use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

use crate::error::{Error, Result};

/// A failed AWS call's error code that a retry can outlive: throttling, or a
/// fault on the service's side. One list for every service the pipeline
/// calls (S3, Secrets Manager, Step Functions, EventBridge).
const RETRYABLE_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestTimeout",
    "InternalError",
    "InternalFailure",
    "InternalException",
    "InternalServiceError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// Maps any AWS SDK error to ours, naming what was being done and keeping
/// the SDK's error as its source: throttling,
/// a fault on the service's side (one of [`RETRYABLE_CODES`], or a 5xx), a
/// timeout or a network fault is retryable; any other refusal (access, a
/// missing resource, a bad request) is definite.
///
/// (`SdkError`, `HttpResponse` and `ProvideErrorMetadata` are the smithy
/// runtime's, which every SDK crate re-exports; named here through S3's.)
pub fn sdk_error<E>(context: impl Into<String>, e: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (retryable, msg) = match &e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("unknown");
            let server_fault = se.raw().status().as_u16() >= 500;
            (
                server_fault || RETRYABLE_CODES.contains(&code),
                format!("{code}: {}", se.err().message().unwrap_or_default()),
            )
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (true, e.to_string())
        }
        _ => (false, e.to_string()),
    };
    Error::Storage {
        context: context.into(),
        msg,
        retryable,
        source: Some(Box::new(e)),
    }
}

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

/// How to connect to the database: its URL (given, or built from a Secrets
/// Manager secret in the RDS format) with `tls` applied.
pub async fn database(
    conf: &SdkConfig,
    source: &crate::config::DbSource,
    tls: &crate::config::DbTls,
) -> Result<binlog_decoder::source::connect::ConnectOptions> {
    let url = match source {
        crate::config::DbSource::Url(u) => u.clone(),
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
            crate::config::url_from_secrets(&connection, creds.as_deref(), endpoint)?
        }
    };
    Ok(tls.options(url))
}

/// The hash key of column rules: the `SecretString` of the secret `arn`.
pub async fn hash_key(arn: &str) -> Result<binlog_decoder::column_rules::HashKey> {
    let sdk = sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let key = secret_string(&client, arn, "the column hash key secret").await?;
    binlog_decoder::column_rules::HashKey::new(key.as_bytes()).map_err(Error::Config)
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
        .map_err(|e| sdk_error(format!("reading {what} {arn}"), e))?;
    out.secret_string()
        .map(str::to_string)
        .ok_or_else(|| Error::Config(format!("{what} {arn} has no SecretString")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::get_object::GetObjectError;

    fn refused(code: &str, status: u16) -> Error {
        let err = GetObjectError::generic(ErrorMetadata::builder().code(code).build());
        let raw = HttpResponse::new(
            status.try_into().unwrap(),
            aws_sdk_s3::primitives::SdkBody::empty(),
        );
        sdk_error("GET s3://b/k", SdkError::service_error(err, raw))
    }

    #[test]
    fn throttling_and_server_faults_are_retryable_refusals_are_not() {
        assert!(refused("SlowDown", 503).is_retryable());
        assert!(refused("ThrottlingException", 400).is_retryable());
        assert!(refused("SomethingNew", 500).is_retryable(), "any 5xx");
        assert!(!refused("AccessDenied", 403).is_retryable());
        assert!(!refused("StateMachineDoesNotExist", 400).is_retryable());
        let e = refused("NoSuchBucket", 404);
        assert!(e.to_string().contains("GET s3://b/k") && e.to_string().contains("NoSuchBucket"));
    }
}
