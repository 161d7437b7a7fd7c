//! A Tollgate server for a benchmark: the release binary, on its own
//! database of the benchmark's PostgreSQL server.

use anyhow::{anyhow, bail, Context};
use serde_json::json;
use sqlx::Connection;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Server {
    pub url: String,
    pub token: String,
    _child: Child,
    _data_dir: tempdir::Dir,
}

/// A temporary directory removed on drop (no extra crate for one folder).
pub mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Creates a fresh database on the server at `server_url`.
pub async fn fresh_database(server_url: &str, name: &str) -> anyhow::Result<String> {
    let mut conn = sqlx::PgConnection::connect(server_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    database_url(server_url, name)
}

/// The URL of database `name` on the server `server_url` points to.
pub fn database_url(server_url: &str, name: &str) -> anyhow::Result<String> {
    let (base, _) = server_url.rsplit_once('/').ok_or_else(|| anyhow!("not a database URL: {server_url}"))?;
    Ok(format!("{base}/{name}"))
}

impl Server {
    pub async fn start(binary: &Path, database_url: &str) -> anyhow::Result<Server> {
        Server::start_with(binary, database_url, &[]).await
    }

    /// [`Server::start`] with extra `serve` arguments.
    pub async fn start_with(binary: &Path, database_url: &str, args: &[&str]) -> anyhow::Result<Server> {
        let dir = std::env::temp_dir().join(format!("tollgate-bench-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir)?;
        let data_dir = tempdir::Dir(dir.clone());
        let token = mint_token(binary, &dir)?;
        let mut serve_args = vec!["--database-url", database_url];
        serve_args.extend_from_slice(args);
        let (child, url) = serve(binary, &dir, &serve_args, "warn").await?;
        let server = Server { url, token, _child: child, _data_dir: data_dir };
        server.define_release().await?;
        Ok(server)
    }

    /// The catalog the load runs against: two gates and a stage of both.
    async fn define_release(&self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let bodies = [
            ("/v1/gates", json!({"name": "build", "required_actions": ["compile", "package"]})),
            ("/v1/gates", json!({"name": "test", "required_actions": ["unit-tests"]})),
            ("/v1/stages", json!({"name": "release", "gates": ["build", "test"]})),
        ];
        for (path, body) in bodies {
            let r = http.post(format!("{}{path}", self.url)).bearer_auth(&self.token).json(&body).send().await?;
            if !r.status().is_success() {
                bail!("defining {path} failed: {}", r.status());
            }
        }
        Ok(())
    }
}

/// An admin token minted with the instance key of `data_dir` (created when absent).
pub fn mint_token(binary: &Path, data_dir: &Path) -> anyhow::Result<String> {
    let mint = std::process::Command::new(binary)
        .args(["token", "mint", "--subject", "bench", "--role", "admin", "--data-dir"])
        .arg(data_dir)
        .output()
        .context("running tollgate token mint")?;
    if !mint.status.success() {
        bail!("token mint failed: {}", String::from_utf8_lossy(&mint.stderr));
    }
    Ok(String::from_utf8(mint.stdout)?.trim().to_owned())
}

/// Starts `tollgate serve` on a free loopback port with `data_dir` and
/// `args`, logging at `log_level`; returns the process (killed on drop)
/// and its base URL.
pub async fn serve(binary: &Path, data_dir: &Path, args: &[&str], log_level: &str) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env("TOLLGATE_LOG", log_level)
        .env_remove("TOLLGATE_DATABASE_URL")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let line = BufReader::new(stdout).lines().next_line().await?.ok_or_else(|| anyhow!("server printed nothing"))?;
    let url =
        line.strip_prefix("tollgate listening on ").ok_or_else(|| anyhow!("unexpected line {line:?}"))?.to_owned();
    Ok((child, url))
}
