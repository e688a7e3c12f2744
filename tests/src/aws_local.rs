//! The local AWS stand-ins for end-to-end tests: moto server (S3 and Secrets
//! Manager) and `cargo lambda watch` serving the real function binaries.
//! `scripts/test.sh` installs both into `.venv/e2e`.

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{free_port, workspace_root};

fn venv_bin(name: &str) -> PathBuf {
    let p = workspace_root().join(".venv/e2e/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/test.sh, which installs it",
        p.display()
    );
    p
}

/// Kills a child process (and its process group) when dropped.
pub struct Proc(pub Child, pub String);

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        // The process group: cargo lambda watch starts children of its own.
        // Signal the whole group (cargo lambda watch starts children of
        // its own). The child leads its own group (process_group(0)), so
        // -pid is exactly that group; never 0 or -1.
        if pid > 1 {
            // SAFETY: kill(2) with a negative pid signals one process group.
            unsafe {
                libc::kill(-pid, libc::SIGTERM);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_group(mut cmd: Command, name: &str, log: &std::path::Path) -> Proc {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    cmd.stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0);
    Proc(
        cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}")),
        name.to_string(),
    )
}

/// A moto server on a free port.
pub struct Moto {
    pub endpoint: String,
    _proc: Proc,
}

impl Moto {
    pub fn start(log_dir: &std::path::Path) -> Self {
        Self::start_with(log_dir, false)
    }

    /// `enforce`: every request after the first
    /// [`crate::iam::UNCHECKED_REQUESTS`] is checked against its
    /// caller's IAM policies.
    pub fn start_with(log_dir: &std::path::Path, enforce: bool) -> Self {
        let port = free_port();
        let mut cmd = Command::new(venv_bin("moto_server"));
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        if enforce {
            cmd.env(
                "INITIAL_NO_AUTH_ACTION_COUNT",
                crate::iam::UNCHECKED_REQUESTS.to_string(),
            );
        }
        let proc = spawn_group(cmd, "moto_server", &log_dir.join("moto.log"));
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if http("GET", &endpoint, "/moto-api/", b"").is_ok() {
                return Self {
                    endpoint,
                    _proc: proc,
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "moto_server did not start; see {}",
            log_dir.join("moto.log").display()
        );
    }
}

/// moto server with what every end-to-end test needs in it: the
/// process's AWS settings pointed at it, a bucket, and the state machine
/// as Step Functions knows it (for ListExecutions; executions run locally
/// do not show there, one started in moto stays RUNNING).
pub struct LocalAws {
    pub moto: Moto,
    /// Whose credentials the test's own calls use: an administrator
    /// when moto enforces IAM ([`LocalAws::start_enforcing`]).
    pub admin: Option<crate::iam::Credentials>,
    pub sdk: aws_config::SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub machine_arn: String,
}

impl LocalAws {
    pub async fn start(log_dir: &std::path::Path, bucket: &str) -> Self {
        Self::start_on(Moto::start(log_dir), None, bucket).await
    }

    /// moto enforcing IAM: this process calls as an administrator;
    /// the functions get roles of their own ([`LocalAws::function_roles`]).
    pub async fn start_enforcing(log_dir: &std::path::Path, bucket: &str) -> Self {
        let moto = Moto::start_with(log_dir, true);
        let admin = crate::iam::bootstrap(&moto.endpoint);
        Self::start_on(moto, Some(admin), bucket).await
    }

    async fn start_on(moto: Moto, admin: Option<crate::iam::Credentials>, bucket: &str) -> Self {
        let (key, secret) = admin.as_ref().map_or(("testing", "testing"), |a| {
            (a.access_key_id.as_str(), a.secret_access_key.as_str())
        });
        for (k, v) in [
            ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", key),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_REGION", "us-east-1"),
        ] {
            std::env::set_var(k, v);
        }
        let sdk = binlog_cdc::aws::sdk_config().await;
        let s3 = binlog_cdc::aws::s3_client(&sdk);
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("create bucket");
        let sfn = aws_sdk_sfn::Client::new(&sdk);
        let definition =
            std::fs::read_to_string(workspace_root().join("statemachine/binlog-pipeline.asl.json"))
                .expect("definition");
        let machine = sfn
            .create_state_machine()
            .name("binlog-cdc-pipeline")
            .definition(definition)
            .role_arn("arn:aws:iam::123456789012:role/binlog-cdc")
            .send()
            .await
            .expect("create state machine in moto");
        Self {
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            machine_arn: machine.state_machine_arn().to_string(),
            moto,
            admin,
            sdk,
            s3,
            sfn,
        }
    }

    /// An SQS queue that receives what matches `pattern` (an
    /// EventBridge event pattern) on the default bus; returns its URL.
    pub async fn events_to_queue(&self, name: &str, pattern: &str) -> String {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("create queue")
            .queue_url()
            .unwrap_or_default()
            .to_string();
        let events = aws_sdk_eventbridge::Client::new(&self.sdk);
        events
            .put_rule()
            .name(name)
            .event_pattern(pattern)
            .send()
            .await
            .expect("put rule");
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("queue")
            .arn(format!("arn:aws:sqs:us-east-1:123456789012:{name}"))
            .build()
            .expect("target");
        events
            .put_targets()
            .rule(name)
            .targets(target)
            .send()
            .await
            .expect("put targets");
        url
    }

    /// Every event waiting in the queue at `url` (EventBridge's envelope:
    /// `source`, `detail-type`, `detail`, ...), removed from it.
    pub async fn drain_queue(&self, url: &str) -> Vec<serde_json::Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let mut out = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            if got.messages().is_empty() {
                return out;
            }
            for m in got.messages() {
                out.push(serde_json::from_str(m.body().unwrap_or("null")).expect("an event"));
                sqs.delete_message()
                    .queue_url(url)
                    .set_receipt_handle(m.receipt_handle().map(str::to_string))
                    .send()
                    .await
                    .expect("delete message");
            }
        }
    }

    /// The function settings that point at this moto (`endpoint`: moto
    /// itself, or a proxy in front of it).
    pub fn lambda_env(&self, endpoint: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// A role per function, its policy rendered from
    /// `infra/template.yaml` for `parameters`, with the bucket and the
    /// state machine as this moto has them and `secrets` (resource name
    /// to ARN: `ReplicationSecret`); needs [`LocalAws::start_enforcing`].
    pub fn function_roles(
        &self,
        bucket: &str,
        parameters: &serde_json::Value,
        secrets: &[(&str, &str)],
    ) -> std::collections::BTreeMap<String, crate::iam::Role> {
        let admin = self.admin.as_ref().expect("moto enforcing IAM");
        let mut resources = serde_json::json!({
            "OutputBucket": {"Ref": bucket, "Arn": format!("arn:aws:s3:::{bucket}")},
        });
        for (name, arn) in secrets {
            resources[*name] = serde_json::json!({ "Ref": arn });
        }
        crate::iam::roles(
            &self.moto.endpoint,
            admin,
            &workspace_root().join("infra/template.yaml"),
            parameters,
            &resources,
        )
    }

    /// A secret in the RDS format; returns its ARN.
    pub async fn db_secret(&self, name: &str, port: u16, user: &str, password: &str) -> String {
        self.secrets
            .create_secret()
            .name(name)
            .secret_string(
                serde_json::json!({"host": "127.0.0.1", "port": port, "username": user, "password": password})
                    .to_string(),
            )
            .send()
            .await
            .expect("create secret")
            .arn()
            .unwrap_or_default()
            .to_string()
    }
}

/// A fault-injecting proxy in front of moto (tests/e2e/s3-fault-proxy.py):
/// off until [`S3FaultProxy::fail_every`] turns it on.
pub struct S3FaultProxy {
    pub endpoint: String,
    _proc: Proc,
}

impl S3FaultProxy {
    pub fn start(upstream: &str, log_dir: &std::path::Path) -> Self {
        Self::start_with(upstream, log_dir, None)
    }

    /// `record`: every request forwarded is appended there (caller's
    /// access key, method, path; see the script).
    pub fn start_with(
        upstream: &str,
        log_dir: &std::path::Path,
        record: Option<&std::path::Path>,
    ) -> Self {
        let port = free_port();
        let mut cmd = Command::new(venv_bin("python3"));
        cmd.arg(workspace_root().join("tests/e2e/s3-fault-proxy.py"))
            .arg(port.to_string())
            .arg(upstream);
        if let Some(r) = record {
            cmd.arg(r);
        }
        let proc = spawn_group(cmd, "s3-fault-proxy", &log_dir.join("s3-fault-proxy.log"));
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let p = Self {
                    endpoint,
                    _proc: proc,
                };
                p.fail_every(0);
                return p;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("s3-fault-proxy did not start");
    }

    /// Fails every `n`th request from now on (0: none); returns the
    /// proxy's counters (`requests`, `faults`) so far.
    pub fn fail_every(&self, n: u32) -> serde_json::Value {
        self.control(serde_json::json!({ "every": n }))
    }

    /// Holds the answer to every request whose `X-Amz-Target` is `target`
    /// for `seconds` after moto gave it, from now on (no faults): calls
    /// sent together are all answered as of before any comes back. `None`
    /// ends it.
    pub fn delay(&self, target: Option<&str>, seconds: f64) -> serde_json::Value {
        let delay = target.map(|t| serde_json::json!({ "target": t, "seconds": seconds }));
        self.control(serde_json::json!({ "every": 0, "delay": delay }))
    }

    fn control(&self, control: serde_json::Value) -> serde_json::Value {
        let (status, body) = http(
            "POST",
            &self.endpoint,
            "/__faults",
            control.to_string().as_bytes(),
        )
        .expect("s3-fault-proxy control");
        assert_eq!(status, 200);
        serde_json::from_slice(&body).expect("counters")
    }
}

/// Runs the state machine definition once, locally (tests/e2e/
/// run-state-machine.mjs: aws-local-stepfunctions, each task invoking the
/// function through `lambda`). `options` as that script documents (faults
/// to inject, a state to start from). Returns its result line:
/// `{"status": "SUCCEEDED", "output"}` or `{"status": "FAILED", "error",
/// "cause", "failedState", "redriveInput"}`.
pub fn run_state_machine(
    lambda: &LambdaWatch,
    input: &serde_json::Value,
    execution: &str,
    options: &serde_json::Value,
) -> serde_json::Value {
    let definition = workspace_root().join("statemachine/binlog-pipeline.asl.json");
    run_definition(&definition, &lambda.url, input, execution, options)
}

/// Runs any definition through run-state-machine.mjs (see
/// [`run_state_machine`]); `lambda_url` serves its functions.
pub fn run_definition(
    definition: &std::path::Path,
    lambda_url: &str,
    input: &serde_json::Value,
    execution: &str,
    options: &serde_json::Value,
) -> serde_json::Value {
    let root = workspace_root();
    // One argument may not pass 128 KiB: a large input goes in a file.
    let mut input = input.to_string();
    if input.len() > 64 << 10 {
        let path = std::env::temp_dir().join(format!("binlog-cdc-input-{execution}.json"));
        std::fs::write(&path, &input).expect("input file");
        input = format!("@{}", path.display());
    }
    let mut child = Command::new("node")
        .arg(root.join("tests/e2e/run-state-machine.mjs"))
        .arg(definition)
        .arg(lambda_url)
        .arg(input)
        .arg(format!(
            "arn:aws:states:us-east-1:123456789012:execution:binlog-cdc-pipeline:{execution}"
        ))
        .arg(options.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    // Read while it runs: a line larger than the pipe would block it.
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    // An execution that never ends is a failure to report, not a hang.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().ok().flatten() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(900) {
            let _ = child.kill();
            panic!("execution {execution} did not end within 900 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let line = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    assert!(status.success(), "runner failed: {err}");
    serde_json::from_str(line.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("runner output {line:?}: {e}"))
}

/// `cargo lambda watch` serving every function binary of the workspace
/// (or, per function, one each behind a router: [`LambdaWatch::per_function`]).
pub struct LambdaWatch {
    pub url: String,
    _procs: Vec<Proc>,
}

impl LambdaWatch {
    pub fn start(env: &[(&str, String)], log_dir: &std::path::Path) -> Self {
        let (port, proc) = Self::watch(env, log_dir, "lambda");
        Self {
            url: format!("http://127.0.0.1:{port}"),
            _procs: vec![proc],
        }
    }

    /// One `cargo lambda watch` per function binary, each with `env`
    /// and that function's own (its role's credentials), behind one URL
    /// that routes each invocation to its function's process.
    pub fn per_function(
        env: &[(&str, String)],
        own: &std::collections::BTreeMap<String, Vec<(&'static str, String)>>,
        log_dir: &std::path::Path,
    ) -> Self {
        let mut routes = std::collections::HashMap::new();
        let mut procs = Vec::new();
        for (function, extra) in own {
            let mut all: Vec<(&str, String)> = env.to_vec();
            all.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
            all.extend(extra.iter().cloned());
            let (port, proc) = Self::watch(&all, log_dir, &format!("lambda-{function}"));
            routes.insert(function.clone(), format!("http://127.0.0.1:{port}"));
            procs.push(proc);
        }
        Self {
            url: route_invocations(routes),
            _procs: procs,
        }
    }

    /// Starts one watcher with `env`; logs to `{log_dir}/{name}.log`.
    fn watch(env: &[(&str, String)], log_dir: &std::path::Path, name: &str) -> (u16, Proc) {
        let port = free_port();
        let env_file = log_dir.join(format!("{name}.env"));
        // Single quotes: taken as they are (a session token or a secret
        // key holds `/`, `+` and `=`, which the file's parser refuses bare).
        let text: String = env
            .iter()
            .map(|(k, v)| {
                assert!(!v.contains('\''), "{k}'s value has a single quote");
                format!("{k}='{v}'\n")
            })
            .collect();
        std::fs::write(&env_file, text).expect("env file");
        let mut cmd = Command::new(venv_bin("cargo-lambda"));
        cmd.current_dir(workspace_root())
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .arg("--env-file")
            .arg(&env_file)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    venv_bin("cargo-lambda").parent().unwrap().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            );
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = log_dir.join(format!("{name}.log"));
        let proc = spawn_group(cmd, "cargo lambda watch", &log);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (port, proc);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("cargo lambda watch did not start; see {}", log.display());
    }

    /// Invokes a function; returns (HTTP status, body as JSON).
    pub fn invoke(&self, function: &str, payload: &serde_json::Value) -> (u16, serde_json::Value) {
        let body = serde_json::to_vec(payload).expect("json");
        let (status, resp) = http(
            "POST",
            &self.url,
            &format!("/2015-03-31/functions/{function}/invocations"),
            &body,
        )
        .unwrap_or_else(|e| panic!("invoke {function}: {e}"));
        (
            status,
            serde_json::from_slice(&resp).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// A local URL that passes `POST /2015-03-31/functions/{name}/invocations`
/// on to `routes[name]` (status and body as they come back).
fn route_invocations(routes: std::collections::HashMap<String, String>) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
    let addr = server.server_addr().to_ip().expect("an IP address");
    // Several at once: a Map state invokes its items in parallel.
    let server = Arc::new(server);
    for _ in 0..8 {
        let (server, routes) = (server.clone(), routes.clone());
        std::thread::spawn(move || {
            for mut req in server.incoming_requests() {
                let path = req.url().to_string();
                let function = path
                    .strip_prefix("/2015-03-31/functions/")
                    .and_then(|p| p.split('/').next())
                    .unwrap_or_default()
                    .to_string();
                let mut body = Vec::new();
                let _ = req.as_reader().read_to_end(&mut body);
                let answer = match routes.get(&function) {
                    Some(base) => http("POST", base, &path, &body)
                        .unwrap_or_else(|e| (502, e.to_string().into_bytes())),
                    None => (404, format!("no function {function}").into_bytes()),
                };
                let _ = req
                    .respond(tiny_http::Response::from_data(answer.1).with_status_code(answer.0));
            }
        });
    }
    format!("http://{addr}")
}

impl LocalAws {
    /// The functions, each under its own role ([`LocalAws::function_roles`])
    /// in a `cargo lambda watch` of its own ([`LambdaWatch::per_function`]),
    /// with `env` besides; and the roles.
    pub fn lambda_under_roles(
        &self,
        env: &[(&str, String)],
        bucket: &str,
        parameters: &serde_json::Value,
        secrets: &[(&str, &str)],
        log_dir: &std::path::Path,
    ) -> (
        LambdaWatch,
        std::collections::BTreeMap<String, crate::iam::Role>,
    ) {
        let roles = self.function_roles(bucket, parameters, secrets);
        let own = crate::iam::credentials_env(&roles);
        (LambdaWatch::per_function(env, &own, log_dir), roles)
    }
}

/// Every function's log under `log_dir` (a [`LambdaWatch::per_function`]'s
/// `lambda-{function}.log`, or a shared watcher's `lambda.log`), joined.
pub fn function_logs(log_dir: &std::path::Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(log_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("lambda") && n.ends_with(".log"))
    });
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// One HTTP request (ureq): the status and the body, whatever the status.
pub fn http(method: &str, base: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let res = ureq::request(method, &format!("{base}{path}"))
        .set("Content-Type", "application/json")
        .timeout(Duration::from_secs(600))
        .send_bytes(body);
    let resp = match res {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(std::io::Error::other(e.to_string())),
    };
    let status = resp.status();
    let mut out = Vec::new();
    resp.into_reader().read_to_end(&mut out)?;
    Ok((status, out))
}

/// A local ResponseURL for custom resources: records every PUT body.
pub struct ResponseUrl {
    pub url: String,
    pub bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl ResponseUrl {
    pub fn start() -> Self {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
        let addr = server.server_addr().to_ip().expect("an IP address");
        let url = format!("http://{addr}/cfn-response");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let b = bodies.clone();
        std::thread::spawn(move || {
            for mut req in server.incoming_requests() {
                let mut body = Vec::new();
                let _ = req.as_reader().read_to_end(&mut body);
                if let Ok(v) = serde_json::from_slice(&body) {
                    b.lock().expect("lock").push(v);
                }
                let _ = req.respond(tiny_http::Response::empty(200));
            }
        });
        Self { url, bodies }
    }
}

/// init-db's answer (as PUT to a [`ResponseUrl`]) to a custom resource
/// Create on `deps`, with `RetentionHours` 24.
pub async fn init_db_create(deps: &binlog_cdc::pipeline::Deps) -> serde_json::Value {
    let cfn = ResponseUrl::start();
    let req = serde_json::from_value(serde_json::json!({
        "RequestType": "Create", "ServiceToken": "x", "ResponseURL": cfn.url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1", "RequestId": "r",
        "ResourceType": "Custom::InitDb", "LogicalResourceId": "InitDb",
        "ResourceProperties": {"ServiceToken": "x", "RetentionHours": "24"}
    }))
    .expect("a custom resource request");
    init_db::handle(req, Ok(deps), Duration::from_secs(60))
        .await
        .expect("init-db answers");
    let bodies = cfn.bodies.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1, "one answer");
    bodies[0].clone()
}
