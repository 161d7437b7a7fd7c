//! PostgreSQL test databases: each test gets a fresh database with a random
//! name on the server named by `TOLLGATE_TEST_DATABASE_URL`, dropped at the
//! end. Without the variable the PostgreSQL tests skip (and say so); the
//! `postgres_is_configured_in_ci` test keeps CI from skipping silently.

use sqlx::{Connection as _, PgConnection};

pub const URL_VAR: &str = "TOLLGATE_TEST_DATABASE_URL";

/// A database created for one test.
pub struct PgDb {
    /// URL of the test's own database.
    pub url: String,
    pub name: String,
    server: String,
}

/// The server URL, or `None` after printing why the test is skipped.
pub fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipped {test}: no PostgreSQL configured ({URL_VAR} is not set)");
            None
        }
    }
}

/// Creates a fresh database, or returns `None` (skipped) without a server.
pub async fn fresh(test: &str) -> Option<PgDb> {
    let server = server_url(test)?;
    let name = format!("tollgate_test_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut admin = PgConnection::connect(&server).await.unwrap();
    // template0 + C collation: UTF-8 whatever the server's default locale is.
    let sql = format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'");
    sqlx::query(&sql).execute(&mut admin).await.unwrap();
    let url = with_database(&server, &name, None);
    Some(PgDb { url, name, server })
}

impl PgDb {
    /// A raw connection that bypasses the log, as an operator with psql would.
    pub async fn raw(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.unwrap()
    }

    /// A raw connection to the server's own database (for roles and such).
    pub async fn admin(&self) -> PgConnection {
        PgConnection::connect(&self.server).await.unwrap()
    }

    /// This database's URL for another role.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        with_database(&self.server, &self.name, Some((user, password)))
    }

    /// Drops the database; FORCE ends sessions the log may still hold.
    pub async fn drop_db(self) {
        let mut admin = self.admin().await;
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::query(&sql).execute(&mut admin).await.unwrap();
    }
}

/// `postgres://[user@]host[:port][/db][?query]` with the database (and
/// optionally the credentials) replaced.
fn with_database(server: &str, db: &str, credentials: Option<(&str, &str)>) -> String {
    let (base, query) = server.split_once('?').unwrap_or((server, ""));
    let (scheme, rest) = base.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let authority = match credentials {
        Some((user, password)) => format!("{user}:{password}@{host}"),
        None => authority.to_owned(),
    };
    let query = if query.is_empty() { String::new() } else { format!("?{query}") };
    format!("{scheme}://{authority}/{db}{query}")
}
