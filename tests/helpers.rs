//! Shared by the integration tests: start the real `tollgate` binary on a
//! random port with its own data dir, mint tokens, call it over HTTP.

#![allow(dead_code)]

use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_tollgate");
pub const UNIT: &str = "openssl@3.0.13-1/x86_64/rpm";

/// A running server; stopped when dropped.
pub struct TestApp {
    pub url: String,
    pub data_dir: TempDir,
    /// The PostgreSQL database of this test, when the suite runs on
    /// PostgreSQL (`TOLLGATE_TEST_BACKEND=postgres`); SQLite otherwise.
    pub database_url: Option<String>,
    pub admin: String,
    pub submitter: String,
    pub reader: String,
    pub auditor: String,
    pub http: reqwest::Client,
    /// With [`spawn_app_with_kafka`]: this test's own topic prefix.
    pub topic_prefix: Option<String>,
    /// Extra `serve` arguments, kept across [`TestApp::crash_and_restart`].
    pub serve_args: Vec<String>,
    child: Child,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Vec::new()).await
}

/// Whether this run keeps the log in PostgreSQL (`TOLLGATE_TEST_BACKEND`).
pub fn postgres_backend() -> bool {
    match std::env::var("TOLLGATE_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("TOLLGATE_TEST_BACKEND must be sqlite or postgres, not {other}"),
    }
}

/// [`spawn_app`] with extra `serve` arguments.
pub async fn spawn_app_with(serve_args: Vec<String>) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let database_url = if postgres_backend() { Some(fresh_database().await) } else { None };
    spawn_app_in(data_dir, database_url, serve_args).await
}

/// A server on a data dir (and database) of its own, possibly left by an
/// earlier server; tokens are minted afresh.
pub async fn spawn_app_in(data_dir: TempDir, database_url: Option<String>, serve_args: Vec<String>) -> TestApp {
    let (child, url) = start_with(data_dir.path(), database_url.as_deref(), &serve_args).await;
    let admin = mint(data_dir.path(), "alice", "admin");
    let submitter = mint(data_dir.path(), "ci-build", "submitter");
    let reader = mint(data_dir.path(), "dashboard", "reader");
    let auditor = mint(data_dir.path(), "auditor", "auditor");
    let http = reqwest::Client::new();
    TestApp {
        url,
        data_dir,
        database_url,
        admin,
        submitter,
        reader,
        auditor,
        http,
        topic_prefix: None,
        serve_args,
        child,
    }
}

/// The Kafka broker the test script started, if any.
pub fn kafka_brokers() -> Option<String> {
    std::env::var("TOLLGATE_TEST_KAFKA_BROKERS").ok().filter(|b| !b.is_empty())
}

/// The broker, or a note that the test is skipped (each Kafka suite also
/// has a test that fails in CI when no broker is configured).
pub fn brokers_or_skip(test: &str) -> Option<String> {
    let brokers = kafka_brokers();
    if brokers.is_none() {
        println!("{test} skipped: TOLLGATE_TEST_KAFKA_BROKERS is not set (scripts/test starts Kafka)");
    }
    brokers
}

/// A topic prefix no other test uses: every test gets topics of its own.
pub fn fresh_topic_prefix() -> String {
    format!("it{}.", ulid::Ulid::new().to_string().to_lowercase())
}

/// A server whose relay publishes to `brokers` under a fresh topic prefix
/// (in [`TestApp::topic_prefix`]), with extra `serve` arguments.
pub async fn spawn_app_with_kafka(brokers: &str, extra: &[&str]) -> TestApp {
    let prefix = fresh_topic_prefix();
    let mut args: Vec<String> =
        vec!["--kafka-brokers".into(), brokers.into(), "--kafka-topic-prefix".into(), prefix.clone()];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let mut app = spawn_app_with(args).await;
    app.topic_prefix = Some(prefix);
    app
}

/// The PostgreSQL server the test script started, if any.
pub fn postgres_server() -> Option<String> {
    let url = std::env::var("TOLLGATE_TEST_DATABASE_URL").ok();
    if url.is_none() && std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI must run the tests with PostgreSQL: use scripts/test");
    }
    url
}

/// A new, empty database on the test server, named for this test alone.
pub async fn fresh_database() -> String {
    use sqlx::Connection;
    let server = postgres_server().expect("TOLLGATE_TEST_DATABASE_URL must be set for PostgreSQL tests");
    let name = format!("tollgate_it_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut conn = sqlx::PgConnection::connect(&server).await.expect("connect to the test server");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
    let (base, _) = server.rsplit_once('/').expect("a database URL");
    format!("{base}/{name}")
}

/// Starts `tollgate serve` on port 0 and reads the address it printed.
pub async fn start(data_dir: &Path, database_url: Option<&str>) -> (Child, String) {
    start_with(data_dir, database_url, &[]).await
}

/// [`start`] with extra `serve` arguments.
pub async fn start_with(data_dir: &Path, database_url: Option<&str>, serve_args: &[String]) -> (Child, String) {
    let mut command = Command::new(BIN);
    command.args(["serve", "--data-dir"]).arg(data_dir).args(["--listen", "127.0.0.1:0"]);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    command.args(serve_args);
    // TOLLGATE_TEST_SERVER_LOG (e.g. `info`) shows more of a server's log.
    let log = std::env::var("TOLLGATE_TEST_SERVER_LOG").unwrap_or_else(|_| "warn".into());
    let mut child = command
        .env("TOLLGATE_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start tollgate serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("server started in time")
        .expect("read stdout")
        .expect("a line on stdout");
    let url = line.strip_prefix("tollgate listening on ").expect("listening line").to_owned();
    (child, url)
}

pub fn mint(data_dir: &Path, subject: &str, role: &str) -> String {
    let out = std::process::Command::new(BIN)
        .args(["token", "mint", "--data-dir"])
        .arg(data_dir)
        .args(["--subject", subject, "--role", role])
        .output()
        .expect("run token mint");
    assert!(out.status.success(), "mint failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
}

impl TestApp {
    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.url, path)).bearer_auth(token)
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::POST, path, token).json(body).send().await.expect("request")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, token).send().await.expect("request")
    }

    /// The whole log as the audit endpoint streams it.
    pub async fn audit_log(&self) -> String {
        let response = self.get("/v1/audit/events", &self.auditor).await;
        assert_eq!(response.status(), 200);
        response.text().await.expect("audit body")
    }

    /// The log as watchers receive it: every event as the relay
    /// publishes it, in log order.
    pub async fn published_events(&self) -> Vec<tollgate_watchers::TollgateEvent> {
        let log = self.audit_log().await;
        log.lines()
            .map(|line| {
                let recorded: tollgate_eventlog::RecordedEvent = serde_json::from_str(line).expect("recorded event");
                let cloudevent = tollgate_relay::envelope::cloudevent(&recorded, "tollgate");
                serde_json::from_value(cloudevent).expect("a Tollgate CloudEvent")
            })
            .collect()
    }

    /// The data of every receipt at `gate`, in log order.
    pub async fn receipts_at(&self, gate: &str) -> Vec<Value> {
        let events = self.published_events().await;
        events
            .into_iter()
            .filter(|e| e.event_type == "ReceiptSubmitted" && e.data["gate"] == gate)
            .map(|e| e.data)
            .collect()
    }

    /// A gate `build` (compile, package), a gate `test` (unit-tests) and a
    /// stage `release` of both.
    pub async fn define_release(&self) {
        for (gate, actions) in [("build", json!(["compile", "package"])), ("test", json!(["unit-tests"]))] {
            let r = self.post("/v1/gates", &self.admin, &json!({"name": gate, "required_actions": actions})).await;
            assert_eq!(r.status(), 201, "define gate {gate}");
        }
        let r = self.post("/v1/stages", &self.admin, &json!({"name": "release", "gates": ["build", "test"]})).await;
        assert_eq!(r.status(), 201, "define stage");
    }

    pub async fn submit(&self, gate: &str, action: &str, pass: bool) -> Value {
        let body = json!({"unit": UNIT, "gate": gate, "action": action, "multipass": pass});
        let response = self.post("/v1/receipts", &self.submitter, &body).await;
        assert_eq!(response.status(), 201, "submit {gate}/{action}");
        response.json().await.expect("json answer")
    }

    /// Runs a client command of the binary against this server.
    pub fn cli(&self, token: &str, args: &[&str]) -> std::process::Output {
        std::process::Command::new(BIN)
            .args(args)
            .env("TOLLGATE_SERVER", &self.url)
            .env("TOLLGATE_TOKEN", token)
            .output()
            .expect("run tollgate")
    }

    pub fn data_path(&self) -> PathBuf {
        self.data_dir.path().to_owned()
    }

    /// Kills the server with SIGKILL, as a crash would, and starts it
    /// again on the same data dir and database (on a new port).
    pub async fn crash_and_restart(&mut self) {
        self.child.kill().await.expect("kill -9 the server");
        let (child, url) = start_with(self.data_dir.path(), self.database_url.as_deref(), &self.serve_args).await;
        self.child = child;
        self.url = url;
    }

    /// Stops the server and waits for it to exit; the data dir and the
    /// database stay for inspection.
    pub async fn stop(mut self) -> Stopped {
        let _ = self.child.kill().await;
        Stopped { data_dir: self.data_dir, database_url: self.database_url }
    }
}

/// The event type names of a command answer.
pub fn event_types(answer: &Value) -> Vec<String> {
    answer["events"].as_array().expect("events array").iter().map(|e| e.as_str().expect("string").to_owned()).collect()
}

/// What a stopped server leaves behind.
pub struct Stopped {
    pub data_dir: TempDir,
    pub database_url: Option<String>,
}

impl Stopped {
    /// A new server on what this one left behind.
    pub async fn restart(self) -> TestApp {
        spawn_app_in(self.data_dir, self.database_url, Vec::new()).await
    }

    /// `tollgate audit verify --data-dir` (with `--database-url` on PostgreSQL).
    pub fn verify(&self) -> std::process::Output {
        self.verify_with(&[])
    }

    /// [`Stopped::verify`] with extra arguments.
    pub fn verify_with(&self, extra: &[&str]) -> std::process::Output {
        let mut command = std::process::Command::new(BIN);
        command.args(["audit", "verify", "--data-dir"]).arg(self.data_dir.path());
        if let Some(url) = &self.database_url {
            command.args(["--database-url", url]);
        }
        command.args(extra).output().expect("run audit verify")
    }
}
