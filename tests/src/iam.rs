//! IAM as the stack deploys it, on a moto server that enforces it: an
//! administrator for the test's own setup and checks, and one role per
//! function carrying that function's policy from `infra/template.yaml`
//! (rendered for the test's parameters by `tests/e2e/iam_roles.py`), whose
//! credentials that function's process gets. A call its policy does not
//! allow is `AccessDenied` naming the role (the function), the action and
//! the resource.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::workspace_root;

/// How many requests moto answers before it checks them: the bootstrap's
/// three (create the administrator, its policy, its key).
pub const UNCHECKED_REQUESTS: u32 = 3;

/// Static credentials (a session token for an assumed role).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    #[serde(default)]
    pub session_token: Option<String>,
}

impl Credentials {
    /// As the script takes them.
    fn json(&self) -> String {
        serde_json::json!({
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
        })
        .to_string()
    }

    /// As a process's environment.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
        ];
        if let Some(t) = &self.session_token {
            env.push(("AWS_SESSION_TOKEN", t.clone()));
        }
        env
    }
}

/// One function's role: its credentials and the policy they carry.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Role {
    pub credentials: Credentials,
    pub policy: Value,
}

fn script(args: &[&str]) -> Vec<u8> {
    let python = workspace_root().join(".venv/infra/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test.sh, which installs it",
        python.display()
    );
    let path: PathBuf = workspace_root().join("tests/e2e/iam_roles.py");
    let out = Command::new(python)
        .arg(path)
        .args(args)
        .output()
        .expect("run tests/e2e/iam_roles.py");
    assert!(
        out.status.success(),
        "iam_roles.py {}: {}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The administrator, made with the requests moto leaves unchecked.
pub fn bootstrap(endpoint: &str) -> Credentials {
    serde_json::from_slice(&script(&["bootstrap", endpoint])).expect("credentials")
}

/// An IAM user carrying only `policy` (an operator's, for `binlog-cdc status`).
pub fn user(endpoint: &str, admin: &Credentials, name: &str, policy: &Value) -> Credentials {
    let out = script(&["user", endpoint, &admin.json(), name, &policy.to_string()]);
    serde_json::from_slice(&out).expect("credentials")
}

/// A role per function binary (`list-binlogs`, ...), its policy rendered
/// from `template` for `parameters` (the stack's) and `resources` (what a
/// `Ref` or `GetAtt` of a resource gives: `{"OutputBucket": {"Ref": ...,
/// "Arn": ...}}`).
pub fn roles(
    endpoint: &str,
    admin: &Credentials,
    template: &std::path::Path,
    parameters: &Value,
    resources: &Value,
) -> BTreeMap<String, Role> {
    let out = script(&[
        "roles",
        endpoint,
        &admin.json(),
        &template.display().to_string(),
        &parameters.to_string(),
        &resources.to_string(),
    ]);
    serde_json::from_slice(&out).expect("roles")
}

/// Each function's environment of its own: its role's credentials.
pub fn credentials_env(
    roles: &BTreeMap<String, Role>,
) -> BTreeMap<String, Vec<(&'static str, String)>> {
    roles
        .iter()
        .map(|(f, r)| (f.clone(), r.credentials.env()))
        .collect()
}

/// What one function's policy grants and its calls needed.
#[derive(Debug, Clone, Deserialize)]
pub struct Usage {
    pub granted: Vec<String>,
    pub needed: Vec<String>,
    /// Granted, and needed by no call.
    pub unused: Vec<String>,
    /// Calls its policy's conditions refuse (moto evaluates none): a
    /// ListBucket of a prefix no `s3:prefix` condition allows.
    pub refused: Vec<String>,
}

/// Per function, the actions its calls needed, from the requests `record`
/// holds (the proxy's, each with its caller's access key).
pub fn usage(roles: &BTreeMap<String, Role>, record: &std::path::Path) -> BTreeMap<String, Usage> {
    let file = record.with_extension("roles.json");
    std::fs::write(&file, serde_json::to_vec(roles).expect("json")).expect("roles file");
    let out = script(&[
        "used",
        &file.display().to_string(),
        &record.display().to_string(),
    ]);
    serde_json::from_slice(&out).expect("usage")
}
