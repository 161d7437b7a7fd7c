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
    pub admin: String,
    pub submitter: String,
    pub reader: String,
    pub http: reqwest::Client,
    child: Child,
}

pub async fn spawn_app() -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (child, url) = start(data_dir.path()).await;
    let admin = mint(data_dir.path(), "alice", "admin");
    let submitter = mint(data_dir.path(), "ci-build", "submitter");
    let reader = mint(data_dir.path(), "auditor", "reader");
    TestApp {
        url,
        data_dir,
        admin,
        submitter,
        reader,
        http: reqwest::Client::new(),
        child,
    }
}

/// Starts `tollgate serve` on port 0 and reads the address it printed.
pub async fn start(data_dir: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("TOLLGATE_LOG", "warn")
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
    let url = line
        .strip_prefix("tollgate listening on ")
        .expect("listening line")
        .to_owned();
    (child, url)
}

pub fn mint(data_dir: &Path, subject: &str, role: &str) -> String {
    let out = std::process::Command::new(BIN)
        .args(["token", "mint", "--data-dir"])
        .arg(data_dir)
        .args(["--subject", subject, "--role", role])
        .output()
        .expect("run token mint");
    assert!(
        out.status.success(),
        "mint failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

impl TestApp {
    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(token)
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::POST, path, token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, token)
            .send()
            .await
            .expect("request")
    }

    /// The whole log as the audit endpoint streams it.
    pub async fn audit_log(&self) -> String {
        let response = self.get("/v1/audit/events", &self.reader).await;
        assert_eq!(response.status(), 200);
        response.text().await.expect("audit body")
    }

    /// A gate `build` (compile, package), a gate `test` (unit-tests) and a
    /// stage `release` of both.
    pub async fn define_release(&self) {
        for (gate, actions) in [
            ("build", json!(["compile", "package"])),
            ("test", json!(["unit-tests"])),
        ] {
            let r = self
                .post(
                    "/v1/gates",
                    &self.admin,
                    &json!({"name": gate, "required_actions": actions}),
                )
                .await;
            assert_eq!(r.status(), 201, "define gate {gate}");
        }
        let r = self
            .post(
                "/v1/stages",
                &self.admin,
                &json!({"name": "release", "gates": ["build", "test"]}),
            )
            .await;
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

    /// Stops the server and waits for it to exit.
    pub async fn stop(mut self) -> TempDir {
        let _ = self.child.kill().await;
        self.data_dir
    }
}

/// The event type names of a command answer.
pub fn event_types(answer: &Value) -> Vec<String> {
    answer["events"]
        .as_array()
        .expect("events array")
        .iter()
        .map(|e| e.as_str().expect("string").to_owned())
        .collect()
}
