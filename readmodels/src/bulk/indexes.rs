//! A loaded generation's indexes, built before its partitions are
//! attached. `ATTACH PARTITION` would build every missing index itself,
//! one after another in one backend: on one core, while the others idle.
//! Built here on several connections at once, each index is found by
//! `ATTACH`, which then only checks that it matches and links it to the
//! parent's.

use crate::error::ReadError;
use crate::generations::partition_name;
use crate::projection::Projection;
use crate::store::PG_SCHEMA;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor, Row};
use std::sync::{Mutex, PoisonError};
use tokio::sync::Semaphore;

/// Indexes built at once, over every projection of a rebuild. Each build
/// is one sort, bound by one core of the database server; two keep a
/// two-core server busy and leave a larger one room for the queries it
/// serves meanwhile.
pub(super) const BUILDERS: usize = 2;

/// The parent table's indexes, each with the kind of constraint it
/// enforces (`p` primary key, `u` unique, none for a plain index), and its
/// definition, of which the part after `USING` (method, columns, storage
/// parameters, predicate) is built on the partition.
const PARENT_INDEXES: &str = "SELECT con.contype::text, pg_get_indexdef(i.indexrelid) \
     FROM pg_index i \
     JOIN pg_class c ON c.oid = i.indrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid \
     WHERE n.nspname = $1 AND c.relname = $2 \
     ORDER BY i.indexrelid";

/// What [`build`] leaves for the attaching transaction: an index that
/// must become its partition's constraint before `ATTACH` accepts it in
/// place of the parent's (a primary key matches only a primary key).
pub(super) struct Constraint {
    partition: String,
    index: String,
    kind: &'static str,
}

impl Constraint {
    /// `ALTER TABLE ... ADD CONSTRAINT ... USING INDEX`: no scan, no build.
    pub(super) fn sql(&self) -> String {
        format!("ALTER TABLE {0} ADD CONSTRAINT {1} {2} USING INDEX {1}", self.partition, self.index, self.kind)
    }
}

/// Builds, on the loaded and committed partitions of `generation`, every
/// index their parent tables have, each once it gets one of `builders`'
/// permits ([`BUILDERS`] of them, shared by the projections of a rebuild).
/// Returns the constraints to add before attaching.
pub(super) async fn build(
    url: &str,
    projection: Projection,
    generation: i64,
    builders: &Semaphore,
) -> Result<Vec<Constraint>, ReadError> {
    let mut conn = connect(url).await?;
    let (mut builds, mut constraints) = (Vec::new(), Vec::new());
    for table in projection.tables() {
        let partition = partition_name(table, generation);
        let rows = sqlx::query(PARENT_INDEXES).bind(PG_SCHEMA).bind(table).fetch_all(&mut conn).await?;
        for (n, row) in rows.iter().enumerate() {
            let constraint: Option<String> = row.try_get(0)?;
            let definition: String = row.try_get(1)?;
            let (unique, method) = definition
                .split_once(" USING ")
                .map(|(head, rest)| (head.starts_with("CREATE UNIQUE"), rest))
                .ok_or_else(|| ReadError::Corrupt(format!("an index definition without USING: {definition}")))?;
            let index = format!("{partition}_build{n}");
            let unique = if unique { "UNIQUE " } else { "" };
            builds.push(format!("CREATE {unique}INDEX {index} ON {partition} USING {method}"));
            let kind = match constraint.as_deref() {
                Some("p") => Some("PRIMARY KEY"),
                Some("u") => Some("UNIQUE"),
                _ => None,
            };
            if let Some(kind) = kind {
                constraints.push(Constraint { partition: partition.clone(), index, kind });
            }
        }
    }
    drop(conn);
    let queue = Mutex::new(builds);
    let next = || queue.lock().unwrap_or_else(PoisonError::into_inner).pop();
    let builder = || async {
        let mut conn = connect(url).await?;
        // Each index is sorted in memory instead of in temporary files.
        conn.execute("SET maintenance_work_mem = '256MB'").await?;
        // When a rebuild fails or is stopped, its connections close, but a
        // server only notices at its next read or write: a build under way
        // would sort on to its end, holding the table, and the next
        // rebuild would wait for it to drop the table. (PostgreSQL 14 and
        // later; on an older server the check is simply not made.)
        if let Err(e) = conn.execute("SET client_connection_check_interval = '1s'").await {
            tracing::debug!(error = %e, "no client connection checks during index builds");
        }
        while let Some(sql) = next() {
            let _turn = builders.acquire().await.map_err(|e| ReadError::Corrupt(e.to_string()))?;
            conn.execute(sql.as_str()).await?;
        }
        Ok::<_, ReadError>(())
    };
    futures::future::try_join_all((0..BUILDERS).map(|_| builder())).await?;
    Ok(constraints)
}

async fn connect(url: &str) -> Result<PgConnection, ReadError> {
    let mut conn = PgConnection::connect(url).await?;
    conn.execute(format!("SET search_path TO {PG_SCHEMA}").as_str()).await?;
    Ok(conn)
}
