//! Where the database is and how to reach it: a URL or a Secrets Manager
//! secret ([`DbSource`]), the endpoint a managed secret lacks
//! ([`Endpoint`]), TLS ([`DbTls`]), and the URL a secret composes
//! ([`url_from_secrets`]), from the environment (`DATABASE_URL`,
//! `DB_SECRET_ARN`, `DB_HOST`, `DB_PORT`, `DB_TLS`, `DB_CA_FILE`, ...: see
//! the table in [`crate::config`]).

use serde::Deserialize;

use super::env;
use crate::error::{Error, Result};
use binlog_decoder::source::connect::ConnectOptions;

/// How to reach the database.
#[derive(Debug, Clone)]
pub enum DbSource {
    Url(String),
    /// An RDS-format secret (host, port, username, password, dbname); the
    /// optional second secret supplies `username` and `password` instead (the
    /// least-privilege user init-db creates, whose secret holds no host).
    Secret {
        arn: String,
        credentials: Option<String>,
        endpoint: Endpoint,
    },
}

/// The database's host and port when the secret does not hold them: RDS's
/// managed master secrets (`ManageMasterUserPassword`, `rds!cluster-…`) have
/// only `username` and `password`. The secret's own `host` and `port` win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub host: Option<String>,
    pub port: Option<u16>,
}

impl Endpoint {
    /// `DB_HOST` and `DB_PORT`.
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            host: env("DB_HOST"),
            port: env("DB_PORT")
                .map(|p| {
                    p.trim()
                        .parse()
                        .map_err(|_| Error::Config(format!("DB_PORT={p:?}: not a port number")))
                })
                .transpose()?,
        })
    }
}

/// TLS to the database.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DbTls {
    #[default]
    Off,
    /// Encrypt, without verifying the certificate.
    Require,
    /// Encrypt and verify the certificate (and the host name) against the
    /// built-in web roots, Amazon RDS's root CAs (shipped with the build) and
    /// `ca_file` (`DB_CA_FILE`) when given.
    Verify { ca_file: Option<std::path::PathBuf> },
}

impl DbSource {
    /// The admin connection for init-db: `ADMIN_DATABASE_URL` or
    /// `ADMIN_SECRET_ARN` when set, else the pipeline's own.
    pub fn admin_from_env() -> Result<Self> {
        match (env("ADMIN_DATABASE_URL"), env("ADMIN_SECRET_ARN")) {
            (Some(u), _) => Ok(Self::Url(u)),
            (None, Some(a)) => Ok(Self::Secret {
                arn: a,
                credentials: None,
                endpoint: Endpoint::from_env()?,
            }),
            (None, None) => Self::from_env(),
        }
    }

    pub fn from_env() -> Result<Self> {
        match (env("DATABASE_URL"), env("DB_SECRET_ARN")) {
            (Some(u), _) => Ok(Self::Url(u)),
            (None, Some(a)) => Ok(Self::Secret {
                arn: a,
                credentials: env("DB_CREDENTIALS_SECRET_ARN"),
                endpoint: Endpoint::from_env()?,
            }),
            (None, None) => Err(Error::Config("set DATABASE_URL or DB_SECRET_ARN".into())),
        }
    }
}

impl DbTls {
    pub fn from_env() -> Result<Self> {
        match env("DB_TLS").as_deref() {
            None | Some("off") => Ok(Self::Off),
            Some("require") => Ok(Self::Require),
            Some("verify") => Ok(Self::Verify {
                ca_file: env("DB_CA_FILE").map(Into::into),
            }),
            Some(o) => Err(Error::Config(format!(
                "DB_TLS={o:?}: expected off, require or verify"
            ))),
        }
    }

    /// How to connect to `url` with this TLS: mysql_async's TLS parameters
    /// added to the URL, and the CA file beside it.
    pub fn options(&self, url: String) -> ConnectOptions {
        let sep = if url.contains('?') { '&' } else { '?' };
        match self {
            DbTls::Off => url.into(),
            DbTls::Require => {
                format!("{url}{sep}require_ssl=true&verify_ca=false&verify_identity=false").into()
            }
            DbTls::Verify { ca_file } => ConnectOptions {
                url: format!("{url}{sep}require_ssl=true&verify_ca=true&verify_identity=true"),
                ca_file: ca_file.clone(),
            },
        }
    }
}

/// The RDS secret format (an RDS-managed secret has only username and password).
#[derive(Deserialize)]
struct RdsSecret {
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<serde_json::Value>,
    username: String,
    password: String,
    #[serde(default)]
    dbname: Option<String>,
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// Builds a `mysql://` URL from an RDS-format secret (host, port, username,
/// password, dbname), with `username` and `password` taken from a second
/// secret when one is given (JSON with those two fields), and the host and
/// port from `endpoint` when the secret has none. The password never appears
/// in an error.
pub fn url_from_secrets(
    secret_json: &str,
    credentials_json: Option<&str>,
    endpoint: &Endpoint,
) -> Result<String> {
    let mut s: RdsSecret = serde_json::from_str(secret_json).map_err(|e| {
        Error::Config(format!(
            "the database secret is not RDS-format JSON (host, port, username, password): {}",
            e.classify_name()
        ))
    })?;
    let host = s.host.take().or_else(|| endpoint.host.clone()).ok_or_else(|| {
        Error::Config(
            "the database secret has no host (an RDS-managed master secret holds only username and password): set the stack's DatabaseHost parameter (DB_HOST) to the cluster (writer) endpoint".into(),
        )
    })?;
    let port = match s.port {
        None => endpoint.port.map_or(3306, u64::from),
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(3306),
        Some(serde_json::Value::String(p)) => p
            .parse()
            .map_err(|_| Error::Config("the secret's port is not a number".into()))?,
        Some(_) => return Err(Error::Config("the secret's port is not a number".into())),
    };
    if let Some(c) = credentials_json {
        let c: Credentials = serde_json::from_str(c).map_err(|e| {
            Error::Config(format!(
                "the database credentials secret is not JSON with username and password: {}",
                e.classify_name()
            ))
        })?;
        s.username = c.username;
        s.password = c.password;
    }
    let db = s
        .dbname
        .map(|d| format!("/{}", pct(&d)))
        .unwrap_or_default();
    Ok(format!(
        "mysql://{}:{}@{}:{port}{db}",
        pct(&s.username),
        pct(&s.password),
        host
    ))
}

/// Percent-encodes everything but unreserved characters.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "missing or wrong fields",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_to_url_encodes_and_hides_nothing_it_should_not() {
        let u = url_from_secrets(
            r#"{"host":"db","port":3306,"username":"u@x","password":"p:/?#","dbname":"shop"}"#,
            None,
            &Endpoint::default(),
        )
        .unwrap();
        assert_eq!(u, "mysql://u%40x:p%3A%2F%3F%23@db:3306/shop");
        let e = url_from_secrets(
            r#"{"host":"db","username":"u","password":"hunter2""#,
            None,
            &Endpoint::default(),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
        let u = url_from_secrets(
            r#"{"host":"db","port":"3307","username":"u","password":"p"}"#,
            None,
            &Endpoint::default(),
        )
        .unwrap();
        assert_eq!(u, "mysql://u:p@db:3307");
    }

    #[test]
    fn tls_adds_url_parameters_and_keeps_the_ca_file_beside_the_url() {
        let url = || "mysql://u:p@db:3307".to_string();
        let off = DbTls::Off.options(url());
        assert_eq!(
            (off.url.as_str(), off.ca_file),
            ("mysql://u:p@db:3307", None)
        );
        let required = DbTls::Require.options(url());
        assert!(required
            .url
            .ends_with("@db:3307?require_ssl=true&verify_ca=false&verify_identity=false"));
        let verify = DbTls::Verify {
            ca_file: Some("/etc/ca.pem".into()),
        }
        .options(format!("{}?prefer_socket=false", url()));
        assert!(verify.url.ends_with(
            "?prefer_socket=false&require_ssl=true&verify_ca=true&verify_identity=true"
        ));
        assert_eq!(verify.ca_file, Some("/etc/ca.pem".into()));
    }

    #[test]
    fn a_credentials_secret_replaces_user_and_password_only() {
        let admin = r#"{"host":"db.example","port":3306,"username":"admin","password":"root-pw","dbname":"shop"}"#;
        let repl = r#"{"username":"binlog_cdc","password":"r&pw"}"#;
        let u = url_from_secrets(admin, Some(repl), &Endpoint::default()).unwrap();
        assert_eq!(u, "mysql://binlog_cdc:r%26pw@db.example:3306/shop");
        assert!(!u.contains("root-pw"));
        let e =
            url_from_secrets(admin, Some(r#"{"username":"x"}"#), &Endpoint::default()).unwrap_err();
        assert!(e.to_string().contains("credentials secret"), "{e}");
        assert!(!e.to_string().contains("root-pw"));
    }

    #[test]
    fn a_managed_secret_takes_host_and_port_from_the_endpoint() {
        let managed = r#"{"username":"admin","password":"pw"}"#;
        let e = url_from_secrets(managed, None, &Endpoint::default()).unwrap_err();
        assert!(e.to_string().contains("DatabaseHost"), "{e}");
        let endpoint = Endpoint {
            host: Some("shop.cluster-abc.eu-west-1.rds.amazonaws.com".into()),
            port: Some(3307),
        };
        let u = url_from_secrets(managed, None, &endpoint).unwrap();
        assert_eq!(
            u,
            "mysql://admin:pw@shop.cluster-abc.eu-west-1.rds.amazonaws.com:3307"
        );
        // The secret's own host and port win.
        let full = r#"{"host":"db","port":3306,"username":"u","password":"p"}"#;
        let u = url_from_secrets(full, None, &endpoint).unwrap();
        assert_eq!(u, "mysql://u:p@db:3306");
    }
}
