//! How a connection to the database is made: [`ConnectOptions`] (mysql_async's
//! URL plus what a URL cannot carry), the certificate authorities trusted
//! over TLS, and the refusal of endpoints that cannot serve the binlog.
//! Every connection of the pipeline, the replication stream's included,
//! starts at [`connect`].

use std::path::PathBuf;

use mysql_async::{Conn, Opts};

use crate::error::{Error, Result};

/// Amazon RDS's root certificate authorities (`decoder/certs/`, with their
/// provenance): RDS and Aurora certificates chain to them, and they are not
/// among the built-in web roots, so every TLS connection trusts them too and
/// `DB_TLS=verify` works against RDS out of the box.
const RDS_CA_BUNDLE: &[u8] = include_bytes!("../../certs/rds-ca-bundle.pem");

/// Where the database is and how to reach it.
///
/// No `Debug`: the URL holds the password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ConnectOptions {
    /// mysql_async's URL: `mysql://USER:PASS@HOST:PORT/DB`, with its own
    /// parameters (`require_ssl`, `verify_ca`, `verify_identity`, ...).
    pub url: String,
    /// A CA certificate (PEM) to verify the server against, besides the
    /// built-in web roots and [`RDS_CA_BUNDLE`] (a self-managed server's own
    /// CA: `DB_CA_FILE`). mysql_async takes it only through its `SslOpts`,
    /// never from the URL.
    pub ca_file: Option<PathBuf>,
}

impl ConnectOptions {
    /// Trusts `ca_file` too.
    pub fn with_ca_file(mut self, ca_file: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(ca_file.into());
        self
    }
}

impl ConnectOptions {
    /// The host and port the URL names (no password: they may be shown).
    pub fn endpoint(&self) -> Result<(String, u16)> {
        let opts = Opts::from_url(&self.url)
            .map_err(|e| Error::Config(format!("bad database URL: {e}")))?;
        Ok((opts.ip_or_hostname().to_string(), opts.tcp_port()))
    }
}

impl From<String> for ConnectOptions {
    fn from(url: String) -> Self {
        Self { url, ca_file: None }
    }
}

impl From<&str> for ConnectOptions {
    fn from(url: &str) -> Self {
        url.to_string().into()
    }
}

/// Opens a connection. A reader or proxy endpoint is refused by its name
/// first ([`endpoint_kind_refusal`]). With TLS on, the trusted roots are the
/// built-in web roots, [`RDS_CA_BUNDLE`] and the options' `ca_file`.
pub async fn connect(db: &ConnectOptions) -> Result<Conn> {
    let opts =
        Opts::from_url(&db.url).map_err(|e| Error::Config(format!("bad database URL: {e}")))?;
    if let Some(e) = endpoint_kind_refusal(opts.ip_or_hostname()) {
        return Err(e);
    }
    let host = endpoint(&opts);
    let opts = match (&db.ca_file, opts.ssl_opts().cloned()) {
        (ca, Some(ssl)) => {
            let mut roots = vec![RDS_CA_BUNDLE.into()];
            if let Some(ca) = ca {
                roots.push(ca.clone().into());
            }
            mysql_async::OptsBuilder::from_opts(opts)
                .ssl_opts(ssl.with_root_certs(roots))
                .into()
        }
        (Some(_), None) => {
            return Err(Error::Config(
                "a CA file is given but TLS is not on (require_ssl=true, or DB_TLS=verify)".into(),
            ))
        }
        (None, _) => opts,
    };
    Conn::new(opts)
        .await
        .map_err(|e| Error::mysql(format!("connecting to {host}"), e))
}

/// `host:port`, as errors name the endpoint.
pub fn endpoint(opts: &Opts) -> String {
    format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port())
}

/// A reader endpoint or an RDS Proxy, told by the host name RDS gives it
/// (`name.cluster-ro-….rds.amazonaws.com`, `name.proxy-….rds.amazonaws.com`),
/// before any connection.
pub(crate) fn endpoint_kind_refusal(host: &str) -> Option<Error> {
    let h = host.to_ascii_lowercase();
    let reason = if h.contains(".cluster-ro-") {
        "it is an Aurora reader endpoint (cluster-ro)"
    } else if h.contains(".proxy-") {
        "it is an RDS Proxy endpoint, which binlog-cdc does not support: connect to the writer itself"
    } else {
        return None;
    };
    Some(Error::NotTheWriter {
        endpoint: host.to_string(),
        reason: reason.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rds_bundle_holds_each_regions_three_roots() {
        let text = std::str::from_utf8(RDS_CA_BUNDLE).expect("PEM is ASCII");
        let certs = text.matches("-----BEGIN CERTIFICATE-----").count();
        assert_eq!(certs, text.matches("-----END CERTIFICATE-----").count());
        for kind in ["RSA2048 G1", "RSA4096 G1", "ECC384 G1"] {
            assert_eq!(
                text.matches(&format!("Root CA {kind} (until")).count(),
                certs / 3,
                "{kind}"
            );
        }
        assert!(text.contains("# Amazon RDS us-east-1 Root CA RSA2048 G1"));
        assert!(certs >= 87, "{certs}");
    }

    #[test]
    fn reader_and_proxy_endpoints_are_refused_by_name() {
        for host in [
            "shop.cluster-ro-abc123.eu-west-1.rds.amazonaws.com",
            "shop-proxy.proxy-abc123.eu-west-1.rds.amazonaws.com",
        ] {
            let e = endpoint_kind_refusal(host).expect(host);
            assert_eq!(e.kind(), crate::error::ErrorKind::NotTheWriter);
            assert!(e.to_string().contains("cluster (writer) endpoint"), "{e}");
        }
        for host in [
            "shop.cluster-abc123.eu-west-1.rds.amazonaws.com",
            "shop-instance-1.abc123.eu-west-1.rds.amazonaws.com",
            "127.0.0.1",
        ] {
            assert!(endpoint_kind_refusal(host).is_none(), "{host}");
        }
    }

    #[test]
    fn a_ca_file_travels_beside_the_url_never_in_it() {
        let db =
            ConnectOptions::from("mysql://u:p@h:3306?require_ssl=true").with_ca_file("/etc/ca.pem");
        assert_eq!(db.url, "mysql://u:p@h:3306?require_ssl=true");
        assert_eq!(db.ca_file, Some(PathBuf::from("/etc/ca.pem")));
    }

    #[tokio::test]
    async fn a_ca_file_without_tls_is_refused_before_connecting() {
        let db = ConnectOptions::from("mysql://u:p@127.0.0.1:1").with_ca_file("/etc/ca.pem");
        let e = connect(&db).await.expect_err("no TLS");
        assert_eq!(e.kind(), crate::error::ErrorKind::Misconfigured, "{e}");
        assert!(e.to_string().contains("TLS is not on"), "{e}");
    }
}
