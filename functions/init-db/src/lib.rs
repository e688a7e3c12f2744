//! InitDb: the CloudFormation custom resource that checks and prepares the
//! database, and records `serverId.json`.
//!
//! On Create and Update: preflight checks (each a clear, named failure),
//! binlog retention, optionally a least-privilege replication user and the
//! original's demo data, then `serverId.json`. On Delete: nothing is touched.
//! Every time, on errors too, it PUTs its own response to the ResponseURL
//! before its own timeout, so a stack never hangs.

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest as Request;
use binlog_cdc::decoder::error::server_codes::{ER_BAD_DB_ERROR, ER_SP_DOES_NOT_EXIST};
use binlog_cdc::decoder::source::server;
use binlog_cdc::error::{Error, Result};
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::PutCondition;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};

/// The resource's properties (CloudFormation passes every value as a string).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Properties {
    #[serde(default)]
    pub retention_hours: Option<String>,
    #[serde(default)]
    pub create_replication_user: Option<String>,
    #[serde(default)]
    pub replication_user_name: Option<String>,
    /// The new user's password: the plain value (for local runs) or resolved
    /// from `ReplicationPasswordSecretArn` by the caller.
    #[serde(default, skip_serializing)]
    pub replication_password: Option<String>,
    #[serde(default)]
    pub replication_password_secret_arn: Option<String>,
    #[serde(default)]
    pub demo_data: Option<String>,
    #[serde(default)]
    pub demo_schema: Option<String>,
}

fn flag(v: &Option<String>) -> bool {
    matches!(
        v.as_deref().map(str::to_ascii_lowercase).as_deref(),
        Some("true" | "yes" | "1" | "on")
    )
}

/// The response CloudFormation reads from the ResponseURL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    pub status: String,
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub data: HashMap<String, String>,
}

/// What Create/Update did, reported as the resource's `Data`.
pub type Outcome = HashMap<String, String>;

struct Common {
    response_url: String,
    stack_id: String,
    request_id: String,
    logical_id: String,
    physical_id: Option<String>,
}

fn common(req: &Request<Properties, Properties>) -> Result<Common> {
    Ok(match req {
        Request::Create(r) => Common {
            response_url: r.response_url.clone(),
            stack_id: r.stack_id.clone(),
            request_id: r.request_id.clone(),
            logical_id: r.logical_resource_id.clone(),
            physical_id: None,
        },
        Request::Update(r) => Common {
            response_url: r.response_url.clone(),
            stack_id: r.stack_id.clone(),
            request_id: r.request_id.clone(),
            logical_id: r.logical_resource_id.clone(),
            physical_id: Some(r.physical_resource_id.clone()),
        },
        Request::Delete(r) => Common {
            response_url: r.response_url.clone(),
            stack_id: r.stack_id.clone(),
            request_id: r.request_id.clone(),
            logical_id: r.logical_resource_id.clone(),
            physical_id: Some(r.physical_resource_id.clone()),
        },
        _ => return Err(Error::Config("unknown custom resource request type".into())),
    })
}

/// Handles the request within `budget`, then always PUTs the response.
///
/// `deps` is an error when the settings or the database secret could not be
/// read at start-up: Create and Update then answer FAILED with that error
/// (the stack must not wait an hour for a response), and Delete still
/// succeeds, since it touches nothing.
pub async fn handle(
    req: Request<Properties, Properties>,
    deps: std::result::Result<&Deps, &Error>,
    budget: Duration,
) -> Result<Response> {
    let c = common(&req)?;
    let setup_failed = |e: &Error| Error::Config(format!("init-db could not start: {e}"));
    let work = async {
        match &req {
            Request::Create(r) => {
                prepare(&r.resource_properties, deps.map_err(setup_failed)?).await
            }
            Request::Update(r) => {
                prepare(&r.resource_properties, deps.map_err(setup_failed)?).await
            }
            Request::Delete(_) => Ok(Outcome::from([(
                "deleted".to_string(),
                "nothing touched".to_string(),
            )])),
            _ => Err(Error::Config("unknown custom resource request type".into())),
        }
    };
    let result = match tokio::time::timeout(budget, work).await {
        Ok(r) => r,
        Err(_) => Err(Error::Config(format!(
            "init-db did not finish within {} s",
            budget.as_secs()
        ))),
    };
    let physical = c.physical_id.clone().unwrap_or_else(|| {
        let prefix = deps.map(|d| d.layout.prefix()).unwrap_or_default();
        format!("binlog-cdc-init-{}", prefix.trim_end_matches('/'))
    });
    let response = match result {
        Ok(data) => Response {
            status: "SUCCESS".into(),
            reason: "ok".into(),
            physical_resource_id: physical,
            stack_id: c.stack_id.clone(),
            request_id: c.request_id.clone(),
            logical_resource_id: c.logical_id.clone(),
            data,
        },
        Err(e) => {
            tracing::error!(error = %e, "init-db failed");
            Response {
                status: "FAILED".into(),
                reason: format!("[{}] {e}", e.name()),
                physical_resource_id: physical,
                stack_id: c.stack_id.clone(),
                request_id: c.request_id.clone(),
                logical_resource_id: c.logical_id.clone(),
                data: HashMap::new(),
            }
        }
    };
    send(&c.response_url, &response).await?;
    Ok(response)
}

/// PUTs the response (no content type: the URL is presigned without one).
async fn send(url: &str, response: &Response) -> Result<()> {
    let body = serde_json::to_vec(response)
        .map_err(|e| Error::encode("the custom resource response", e))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
    let mut last = String::new();
    for attempt in 0..3 {
        match client
            .put(url)
            .header("content-type", "")
            .body(body.clone())
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.without_url().to_string(),
        }
        tokio::time::sleep(Duration::from_millis(300 * (attempt + 1))).await;
    }
    Err(Error::storage(
        "PUT to the custom resource ResponseURL",
        last,
        true,
    ))
}

/// The most binlog retention each managed engine allows
/// (`mysql.rds_set_configuration('binlog retention hours', N)`).
const AURORA_MAX_RETENTION_HOURS: u32 = 2160;
const RDS_MAX_RETENTION_HOURS: u32 = 168;

/// Refuses a retention the engine would not keep: Aurora MySQL allows up to
/// 2,160 hours (90 days), RDS MySQL up to 168 (7 days). A self-managed
/// server (no RDS procedure) has no such limit.
fn check_retention(hours: u32, rds: bool, aurora: bool) -> Result<()> {
    let (limit, engine) = match (rds, aurora) {
        (_, true) => (AURORA_MAX_RETENTION_HOURS, "Aurora MySQL"),
        (true, false) => (RDS_MAX_RETENTION_HOURS, "RDS MySQL"),
        (false, false) => return Ok(()),
    };
    if hours > limit {
        return Err(Error::Config(format!(
            "BinlogRetentionHours is {hours}, but {engine} keeps binlogs for at most {limit} hours: set BinlogRetentionHours to {limit} or less"
        )));
    }
    Ok(())
}

/// Sets binlog retention: RDS/Aurora's procedure, else the server's own setting.
async fn retention(conn: &mut mysql_async::Conn, hours: u32) -> Result<String> {
    let aurora = server::variable(conn, "aurora_version").await?.is_some();
    let rds = rds_procedure(conn, "rds_set_configuration").await?;
    check_retention(hours, rds, aurora)?;
    match conn
        .query_drop(format!(
            "CALL mysql.rds_set_configuration('binlog retention hours', {hours})"
        ))
        .await
    {
        Ok(()) => return Ok(format!("{hours} hours (mysql.rds_set_configuration)")),
        // No such procedure, or no `mysql` schema to find it in: not RDS.
        Err(mysql_async::Error::Server(e))
            if e.code == ER_SP_DOES_NOT_EXIST || e.code == ER_BAD_DB_ERROR => {}
        // On RDS and Aurora the retention defaults to NULL: the binlog is
        // purged within hours, and the first late run would find its
        // position gone. The stack must not come up like that.
        Err(e) => {
            return Err(Error::Config(format!(
                "could not set the binlog retention to {hours} hours \
                 (CALL mysql.rds_set_configuration('binlog retention hours', {hours})): {e}; \
                 run it as the master user, or give init-db's user EXECUTE on it"
            )))
        }
    }
    let secs = hours as u64 * 3600;
    for stmt in [
        format!("SET PERSIST binlog_expire_logs_seconds = {secs}"),
        format!("SET GLOBAL binlog_expire_logs_seconds = {secs}"),
        format!("SET GLOBAL expire_logs_days = {}", hours.div_ceil(24)),
    ] {
        if conn.query_drop(&stmt).await.is_ok() {
            return Ok(format!(
                "{hours} hours ({stmt}; not persisted across restarts unless SET PERSIST)"
            ));
        }
    }
    Ok(
        "could not set retention (no privilege?): set binlog_expire_logs_seconds on the server"
            .to_string(),
    )
}

/// A SQL string literal.
fn quote_literal(s: &str, backslash_escapes: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if backslash_escapes => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

async fn prepare(props: &Properties, deps: &Deps) -> Result<Outcome> {
    let mut out = Outcome::new();
    let mut conn = deps.connect().await?;
    let notes = server::preflight(&mut conn).await?;
    if !notes.is_empty() {
        out.insert("preflightNotes".into(), notes.join("; "));
    }
    let hours: u32 = props
        .retention_hours
        .as_deref()
        .unwrap_or("24")
        .parse()
        .map_err(|_| Error::Config("RetentionHours must be a whole number".into()))?;
    out.insert("retention".into(), retention(&mut conn, hours).await?);
    // The snapshot's watermarks (see binlog_cdc::decoder::snapshot): a one-row-per-
    // range table in binlog-cdc's own schema, never streamed.
    binlog_cdc::decoder::snapshot::read::create_signal_table(&mut conn).await?;
    // The demo schema first: the replication user may read the schemas
    // that exist when it is granted.
    if flag(&props.demo_data) {
        let schema = quote_ident(props.demo_schema.as_deref().unwrap_or("binlog_cdc_demo"));
        load_demo_data(&mut conn, &schema).await?;
        out.insert("demoData".into(), format!("{schema}.tasks"));
    }
    if flag(&props.create_replication_user) {
        let user = create_replication_user(&mut conn, props, deps).await?;
        out.insert("replicationUser".into(), user);
    }
    let server_id = write_server_id(&mut conn, deps).await?;
    out.insert("serverId".into(), server_id.to_string());
    // Where the database is, for the functions that run the pipeline as
    // the replication user: they never read the admin secret that says it.
    let (host, port) = deps.db().endpoint()?;
    out.insert("Host".into(), host);
    out.insert("Port".into(), port.to_string());
    let _ = conn.disconnect().await;
    Ok(out)
}

/// Creates (or updates) the least-privilege replication user; returns its name.
async fn create_replication_user(
    conn: &mut mysql_async::Conn,
    props: &Properties,
    deps: &Deps,
) -> Result<String> {
    let user = props
        .replication_user_name
        .clone()
        .unwrap_or_else(|| "binlog_cdc".into());
    let password = props.replication_password.clone().ok_or_else(|| {
        Error::Config("CreateReplicationUser needs ReplicationPasswordSecretArn".into())
    })?;
    // Account statements take no placeholders: quote the literals by the
    // server's own rules (backslash escapes unless NO_BACKSLASH_ESCAPES).
    let mode: Option<String> = conn
        .query_first("SELECT @@SESSION.sql_mode")
        .await
        .map_err(|e| Error::mysql("SELECT @@sql_mode", e))?;
    let backslash = !mode.unwrap_or_default().contains("NO_BACKSLASH_ESCAPES");
    let u = format!("{}@'%'", quote_literal(&user, backslash));
    let pw = quote_literal(&password, backslash);
    conn.query_drop(format!("CREATE USER IF NOT EXISTS {u} IDENTIFIED BY {pw}"))
        .await
        .map_err(|e| Error::mysql(format!("creating user {user}"), e))?;
    conn.query_drop(format!("ALTER USER {u} IDENTIFIED BY {pw}"))
        .await
        .map_err(|e| Error::mysql(format!("setting the password of {user}"), e))?;
    let filter = deps.config.table_filter()?;
    for grant in replication_grants(conn, &filter, &u).await? {
        conn.query_drop(&grant)
            .await
            .map_err(|e| Error::mysql(format!("granting {user}: {grant}"), e))?;
    }
    Ok(user)
}

/// Schemas no include pattern gives the replication user to read.
const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "sys", "performance_schema", "information_schema"];

/// The replication user's grants, from nothing (an update narrows them
/// too): reading the binlog; CREATE TEMPORARY TABLES, since a table
/// statement's definition is the server's own, replayed on a temporary
/// table (docs/EVENTS.md); SELECT on each schema the include patterns
/// reach, never the system schemas (a snapshot of a table in a schema
/// created later fails naming the GRANT to run); the snapshot's
/// watermark table; and on RDS and Aurora, reading the binlog retention
/// (`mysql.rds_show_configuration`) for the headroom metric.
async fn replication_grants(
    conn: &mut mysql_async::Conn,
    filter: &binlog_cdc::decoder::filter::TableFilter,
    u: &str,
) -> Result<Vec<String>> {
    let mut grants = vec![
        format!("REVOKE ALL PRIVILEGES, GRANT OPTION FROM {u}"),
        format!(
            "GRANT REPLICATION CLIENT, REPLICATION SLAVE, CREATE TEMPORARY TABLES ON *.* TO {u}"
        ),
    ];
    let schemas: Vec<String> = conn
        .query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1")
        .await
        .map_err(|e| Error::mysql("listing the schemas", e))?;
    for schema in schemas {
        let system = SYSTEM_SCHEMAS.contains(&schema.to_ascii_lowercase().as_str());
        if !system && filter.keeps_some_table_of(&schema) {
            grants.push(format!("GRANT SELECT ON {}.* TO {u}", quote_ident(&schema)));
        }
    }
    let signal = format!(
        "{}.{}",
        quote_ident(binlog_cdc::decoder::filter::SIGNAL_SCHEMA),
        binlog_cdc::decoder::snapshot::read::SIGNAL_TABLE
    );
    grants.push(format!("GRANT SELECT, INSERT, UPDATE ON {signal} TO {u}"));
    if rds_procedure(conn, "rds_show_configuration").await? {
        grants.push(format!(
            "GRANT EXECUTE ON PROCEDURE mysql.rds_show_configuration TO {u}"
        ));
    }
    Ok(grants)
}

/// Whether `mysql.{name}` exists (RDS and Aurora).
async fn rds_procedure(conn: &mut mysql_async::Conn, name: &str) -> Result<bool> {
    let n: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.ROUTINES \
             WHERE ROUTINE_SCHEMA = 'mysql' AND ROUTINE_NAME = ?",
            (name,),
        )
        .await
        .map_err(|e| Error::mysql(format!("looking for mysql.{name}"), e))?;
    Ok(n.unwrap_or(0) > 0)
}

/// The original's demo table (`{schema}.tasks`) and a few writes to it.
async fn load_demo_data(conn: &mut mysql_async::Conn, schema: &str) -> Result<()> {
    let stmts = [
        format!("CREATE DATABASE IF NOT EXISTS {schema}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {schema}.tasks (task_id INT AUTO_INCREMENT PRIMARY KEY, \
             title VARCHAR(255) NOT NULL, description TEXT, done TINYINT(1) NOT NULL DEFAULT 0)"
        ),
        format!("INSERT INTO {schema}.tasks (title, description) VALUES ('Task 1', 'first')"),
        format!("INSERT INTO {schema}.tasks (title, description) VALUES ('Task 2/2', 'second')"),
        format!("INSERT INTO {schema}.tasks (title, description) VALUES ('Task 3', 'x'), ('Task 4', 'y'), ('Task 5', 'z')"),
        format!("UPDATE {schema}.tasks SET title = 'Task 2/3' WHERE title = 'Task 2/2'"),
        format!("DELETE FROM {schema}.tasks WHERE title = 'Task 1' LIMIT 1"),
    ];
    for s in stmts {
        conn.query_drop(&s)
            .await
            .map_err(|e| Error::mysql("loading the demo data", e))?;
    }
    Ok(())
}

/// Writes `serverId.json` (`{"@@server_id": N}`); returns N.
async fn write_server_id(conn: &mut mysql_async::Conn, deps: &Deps) -> Result<u64> {
    let server_id: Option<u64> = conn
        .query_first("SELECT @@server_id")
        .await
        .map_err(|e| Error::mysql("SELECT @@server_id", e))?;
    let server_id = server_id.unwrap_or_default();
    let body = serde_json::to_vec(&serde_json::json!({ "@@server_id": server_id }))
        .map_err(|e| Error::encode("the server id", e))?;
    deps.store
        .put(&deps.layout.server_id(), body, PutCondition::None)
        .await?;
    Ok(server_id)
}

/// Reads the replication user's password from its secret (a JSON with
/// `password`, or the plain string). A secret that cannot be read (denied,
/// missing, a KMS key the function may not use) is the error, with the
/// service's own code, never a missing parameter later.
pub async fn resolve_password(
    req: &mut Request<Properties, Properties>,
    sdk: &binlog_cdc::aws::SdkConfig,
) -> Result<()> {
    let props = match req {
        Request::Create(r) => &mut r.resource_properties,
        Request::Update(r) => &mut r.resource_properties,
        _ => return Ok(()),
    };
    let Some(arn) = props.replication_password_secret_arn.clone() else {
        return Ok(());
    };
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let s = binlog_cdc::aws::secret_string(&client, &arn, "the replication user's secret").await?;
    let pw = serde_json::from_str::<serde_json::Value>(&s)
        .ok()
        .and_then(|v| {
            v.get("password")
                .and_then(|p| p.as_str())
                .map(str::to_string)
        })
        .unwrap_or(s);
    props.replication_password = Some(pw);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_quoted_by_the_servers_rules() {
        assert_eq!(quote_literal(r"a'b\c", true), r"'a''b\\c'");
        assert_eq!(quote_literal(r"a'b\c", false), r"'a''b\c'");
    }

    #[test]
    fn retention_is_refused_past_what_the_engine_keeps() {
        assert!(check_retention(2160, true, true).is_ok());
        assert!(check_retention(2161, true, true).is_err());
        assert!(check_retention(168, true, false).is_ok());
        let e = check_retention(169, true, false).unwrap_err();
        assert!(
            e.to_string().contains("RDS MySQL") && e.to_string().contains("168"),
            "{e}"
        );
        assert!(
            check_retention(10_000, false, false).is_ok(),
            "self-managed: no limit"
        );
    }

    #[test]
    fn flags() {
        assert!(flag(&Some("True".into())));
        assert!(!flag(&Some("false".into())));
        assert!(!flag(&None));
    }
}
