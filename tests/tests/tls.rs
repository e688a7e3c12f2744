//! TLS to the database (MariaDB, and MySQL requiring secure transport), with
//! certificates this test makes (openssl): with
//! `DB_TLS=verify` and the right CA the pipeline reads the binlog over TLS
//! (the replication stream included); against a certificate from another CA
//! it refuses to connect, with a definite error; `require` encrypts without
//! verifying. Every TLS connection also trusts the Amazon RDS root CAs the
//! build ships (`decoder/certs/`): the verified run below loads all of them,
//! and they do not make the other CA's certificate pass.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use binlog_cdc::config::{DbTls, PipelineConfig};
use binlog_cdc::contracts::RunInput;
use binlog_cdc::decoder::source::connect::ConnectOptions;
use binlog_cdc::error::names;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc_tests::mysql::MySql;
use binlog_cdc_tests::{pipeline, MariaDb, TestServer};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`{name}-ca.pem`) and a server certificate for 127.0.0.1 signed by
/// it (`{name}-server.pem`, `{name}-server.key`).
fn make_certs(dir: &Path, name: &str) {
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=binlog-cdc test CA {name}"),
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let key = format!("{name}-server.key");
    let csr = format!("{name}-server.csr");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext file");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            &format!("{name}-server.pem"),
        ],
    );
}

/// A directory with two CAs and their server certificates ("good", "other"),
/// and the server options that serve "good"'s.
fn certs(name: &str) -> (std::path::PathBuf, Vec<String>) {
    let certs = std::env::temp_dir().join(format!("binlog-cdc-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&certs).expect("cert dir");
    make_certs(&certs, "good");
    make_certs(&certs, "other");
    let p = |f: &str| certs.join(f).display().to_string();
    let options = vec![
        format!("--ssl-ca={}", p("good-ca.pem")),
        format!("--ssl-cert={}", p("good-server.pem")),
        format!("--ssl-key={}", p("good-server.key")),
    ];
    (certs, options)
}

#[tokio::test]
async fn tls_verified_refused_and_required() {
    let (certs, options) = certs("tls");
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let db = MariaDb::start_with(&options);
    verified_refused_and_required(&db, &certs).await;
}

/// The same against Oracle's MySQL that refuses unencrypted connections
/// (`require_secure_transport=ON`, as RDS for MySQL can be set), with its
/// default authentication (caching_sha2_password) over TLS.
#[tokio::test]
async fn tls_on_mysql_that_requires_secure_transport() {
    let (certs, mut options) = certs("tls-mysql");
    options.push("--require-secure-transport=ON".into());
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let db = MySql::start_with(&options);
    // Without TLS: refused by the server.
    let plain = Deps::new(
        Arc::new(LocalStore::new(certs.join("plain"))),
        PipelineConfig::default(),
        db.url(),
    );
    let e = pipeline::run(&plain, RunInput::default())
        .await
        .expect_err("the server requires TLS");
    assert!(e.to_string().contains("secure transport"), "{e}");
    assert_eq!(e.name(), names::CONFIG, "definite: {e}");
    verified_refused_and_required(&db, &certs).await;
}

async fn verified_refused_and_required(db: &impl TestServer, certs: &Path) {
    db.sql(
        "CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO s.t VALUES (1, 'over tls'), (2, 'b');",
    );
    let deps_for = |options: ConnectOptions, out: &str| {
        Deps::new(
            Arc::new(LocalStore::new(certs.join(out))),
            PipelineConfig::default(),
            options,
        )
    };
    let verify = |ca: &str| {
        DbTls::Verify {
            ca_file: Some(certs.join(ca)),
        }
        .options(db.url())
    };

    // Verified against the CA that signed the server's certificate: the
    // whole pipeline, replication stream included, runs over TLS.
    let deps = deps_for(verify("good-ca.pem"), "verified");
    let mut conn = deps.connect().await.expect("a verified TLS connection");
    let cipher: Option<(String, String)> = mysql_async::prelude::Queryable::query_first(
        &mut conn,
        "SHOW SESSION STATUS LIKE 'Ssl_cipher'",
    )
    .await
    .expect("status");
    drop(conn);
    assert!(
        cipher.is_some_and(|(_, c)| !c.is_empty()),
        "the session is encrypted"
    );
    let (plan, commit) = pipeline::run(&deps, RunInput::default())
        .await
        .expect("a run over TLS");
    assert!(commit.expect("committed").committed);
    let (meta, _) = pipeline::meta(&deps).await.expect("meta");
    // Its CREATE TABLE and its rows.
    assert_eq!(meta.counts.get("s.t"), Some(&3), "{plan:?}");

    // A certificate that the given CA did not sign: refused, definitely.
    let deps = deps_for(verify("other-ca.pem"), "refused");
    let e = pipeline::run(&deps, RunInput::default())
        .await
        .expect_err("an unverifiable certificate is refused");
    assert_eq!(e.name(), names::CONFIG, "{e}");
    assert!(pipeline::meta(&deps).await.is_none(), "nothing committed");

    // `require`: encrypted, not verified (for servers whose CA is not at hand).
    let deps = deps_for(DbTls::Require.options(db.url()), "required");
    let (_, commit) = pipeline::run(&deps, RunInput::default())
        .await
        .expect("require does not verify");
    assert!(commit.expect("committed").committed);
    let _ = std::fs::remove_dir_all(certs);
}
