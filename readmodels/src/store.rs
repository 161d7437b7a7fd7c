//! Where the read models live: a SQLite file of their own beside the log
//! (the embedded default), or the schema `tollgate_read` in the log's
//! PostgreSQL database. One pool, one set of queries (`$1`-style
//! placeholders work on both).

use crate::error::ReadError;
use crate::projection::Projection;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, Row};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

static SQLITE: Migrator = sqlx::migrate!("../migrations/readmodels/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("../migrations/readmodels/postgres");

/// The PostgreSQL schema of the read models.
pub const PG_SCHEMA: &str = "tollgate_read";

/// Which database the read models are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The read models' database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReadStore {
    pool: AnyPool,
    backend: Backend,
    /// The PostgreSQL URL, for LISTEN and bulk copies.
    pg_url: Option<String>,
    /// Read queries run, shared by clones: lets a test (and `/metrics`)
    /// see that a page of units costs a fixed number of queries, not one
    /// per unit.
    queries: Arc<AtomicU64>,
    /// Generations whose PostgreSQL partitions this process has seen
    /// exist, so folding into them costs no catalog query.
    pub(crate) partitions: Arc<Mutex<HashSet<(Projection, i64)>>>,
}

impl ReadStore {
    /// Opens (creating) the SQLite file at `path` and runs the migrations.
    pub async fn open_sqlite(path: &Path) -> Result<ReadStore, ReadError> {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // Readers never wait for the projector's writes.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000")
                        .await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        SQLITE.run(&pool).await?;
        let store = ReadStore {
            pool,
            backend: Backend::Sqlite,
            pg_url: None,
            queries: Arc::default(),
            partitions: Arc::default(),
        };
        store.ensure_projections().await?;
        Ok(store)
    }

    /// Opens the schema `tollgate_read` of the PostgreSQL database at `url`
    /// (creating it) and runs the migrations.
    pub async fn open_postgres(url: &str) -> Result<ReadStore, ReadError> {
        sqlx::any::install_default_drivers();
        let setup = AnyPoolOptions::new().max_connections(1).connect(url).await?;
        setup.execute(format!("CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}").as_str()).await?;
        setup.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // Read models are rebuildable and each transaction moves
                    // its rows and its checkpoint together: a crash may lose
                    // the last few, which the projector folds again. So they
                    // need not wait for the WAL flush the log's commits wait
                    // for, and do not compete with them for it.
                    let setup = format!("SET search_path TO {PG_SCHEMA}; SET synchronous_commit TO off");
                    conn.execute(setup.as_str()).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        POSTGRES.run(&pool).await?;
        let store = ReadStore {
            pool,
            backend: Backend::Postgres,
            pg_url: Some(url.to_owned()),
            queries: Arc::default(),
            partitions: Arc::default(),
        };
        store.ensure_projections().await?;
        Ok(store)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Read queries run so far through [`crate::queries`].
    pub fn queries_run(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    pub(crate) fn count_query(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The PostgreSQL URL (for LISTEN), `None` on SQLite.
    pub fn pg_url(&self) -> Option<&str> {
        self.pg_url.as_deref()
    }

    /// Every projection has a serving generation, 1 at first, with its
    /// partitions on PostgreSQL.
    async fn ensure_projections(&self) -> Result<(), ReadError> {
        for projection in Projection::ALL {
            sqlx::query(
                "INSERT INTO rm_projections (name, active_generation) VALUES ($1, 1) ON CONFLICT (name) DO NOTHING",
            )
            .bind(projection.name())
            .execute(&self.pool)
            .await?;
            let active = self.active_generation(projection).await?;
            self.ensure_generation(projection, active).await?;
        }
        Ok(())
    }

    /// The serving generation of `projection`.
    pub async fn active_generation(&self, projection: Projection) -> Result<i64, ReadError> {
        let row: AnyRow = sqlx::query("SELECT active_generation FROM rm_projections WHERE name = $1")
            .bind(projection.name())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// How far `generation` of `projection` has folded the log (0: not at all).
    pub async fn checkpoint(&self, projection: Projection, generation: i64) -> Result<u64, ReadError> {
        let mut conn = self.pool.acquire().await?;
        crate::apply::checkpoint_in(&mut conn, projection, generation).await
    }

    /// The serving checkpoint of every projection, in one query.
    pub async fn positions(&self) -> Result<Vec<(Projection, u64)>, ReadError> {
        let rows = sqlx::query(
            "SELECT p.name, COALESCE(c.position, 0) FROM rm_projections p \
             LEFT JOIN rm_checkpoints c ON c.name = p.name AND c.generation = p.active_generation",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let name: String = row.try_get(0)?;
            let position: i64 = row.try_get(1)?;
            out.push((Projection::parse(&name)?, u64::try_from(position).unwrap_or(0)));
        }
        out.sort();
        Ok(out)
    }
}
