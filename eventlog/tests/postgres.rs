//! The PostgreSQL backend against a real server. Each test creates its own
//! database on the server named by `TOLLGATE_TEST_DATABASE_URL` and skips
//! (saying so) without it:
//!
//! ```sh
//! export TOLLGATE_TEST_DATABASE_URL=$(scripts/pg start target/pg)
//! cargo test -p tollgate-eventlog --test postgres
//! scripts/pg stop target/pg
//! ```
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::pg::{self, PgDb};
use common::{event, key, keys_of, request, scenarios, signer};
use sqlx::{Connection as _, PgConnection};
use tollgate_eventlog::{AppendError, EventLog, ExpectedVersion};

async fn open(db: &PgDb, seed: u8) -> EventLog {
    EventLog::open_postgres(&db.url, signer(seed)).await.unwrap()
}

#[test]
fn postgres_is_configured_in_ci() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let configured = std::env::var(pg::URL_VAR).is_ok_and(|v| !v.is_empty());
    assert!(!ci || configured, "CI=true but {} is not set: every PostgreSQL test would be skipped", pg::URL_VAR);
}

#[tokio::test]
async fn round_trip() {
    let Some(db) = pg::fresh("round_trip").await else {
        return;
    };
    let log = open(&db, 42).await;
    scenarios::round_trip(&log, &signer(42)).await;
    drop(log);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_are_gap_free_and_group_committed() {
    let Some(db) = pg::fresh("concurrent_appends").await else {
        return;
    };
    let log = open(&db, 42).await;
    scenarios::concurrent_appends(&log, keys_of(&[&signer(42)])).await;
    drop(log);
    db.drop_db().await;
}

#[tokio::test]
async fn one_batch_checks_each_request_against_the_ones_before() {
    let Some(db) = pg::fresh("one_batch_checks_each_request").await else {
        return;
    };
    let log = open(&db, 42).await;
    scenarios::one_batch_checks_each_request(&log, keys_of(&[&signer(42)])).await;
    drop(log);
    db.drop_db().await;
}

#[tokio::test]
async fn reads_after_a_version_or_position() {
    let Some(db) = pg::fresh("reads_after").await else {
        return;
    };
    let log = open(&db, 42).await;
    scenarios::reads_after(&log).await;
    drop(log);
    db.drop_db().await;
}

#[tokio::test]
async fn reopening_continues_the_chain() {
    let Some(db) = pg::fresh("reopening_continues_the_chain").await else {
        return;
    };
    let url = db.url.clone();
    let reopen = || async move { EventLog::open_postgres(&url, signer(42)).await.unwrap() };
    scenarios::reopen_continues(open(&db, 42).await, reopen, keys_of(&[&signer(42)])).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_and_per_request_checks() {
    let Some(db) = pg::fresh("idempotency_and_per_request_checks").await else {
        return;
    };
    let log = open(&db, 42).await;
    scenarios::idempotent_replay(&log).await;
    drop(log);
    db.drop_db().await;
    for body in 0..2 {
        let db = pg::fresh("idempotency_and_per_request_checks").await.unwrap();
        let log = open(&db, 42).await;
        match body {
            0 => scenarios::same_key_in_flight_appends_once(&log).await,
            _ => scenarios::nul_is_refused_per_request(&log).await,
        }
        drop(log);
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_write_one_chain() {
    let Some(db) = pg::fresh("two_processes_write_one_chain").await else {
        return;
    };
    // The writer must not depend on the database's default isolation: under
    // REPEATABLE READ a snapshot taken before the lock would see a stale tip.
    let sql = format!("ALTER DATABASE {} SET default_transaction_isolation = 'repeatable read'", db.name);
    sqlx::query(&sql).execute(&mut db.admin().await).await.unwrap();
    // Two handles with their own sequencer, connection, pool and key, opened
    // concurrently (the migrations race too): two processes in all but name.
    let (a, b) = tokio::join!(open(&db, 1), open(&db, 2));
    let mut tasks = Vec::new();
    for w in 0..60u64 {
        let log = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(scenarios::retrying_writer(log, w)));
    }
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    assert_eq!(acked.len(), 600);

    let all = scenarios::verify_all(&b, keys_of(&[&signer(1), &signer(2)])).await;
    let positions: Vec<u64> = all.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=600).collect::<Vec<_>>());
    // Every acknowledged append is in the log, exactly as acknowledged.
    for e in &acked {
        assert_eq!(&all[(e.position - 1) as usize], e);
    }
    let mut total = 0;
    for s in 0..4 {
        let evs = a.read_stream(&format!("unit:u{s}")).await.unwrap();
        let versions: Vec<u64> = evs.iter().map(|e| e.stream_version).collect();
        assert_eq!(versions, (1..=evs.len() as u64).collect::<Vec<_>>());
        total += evs.len();
    }
    assert_eq!(total, 600);
    for seed in [1, 2] {
        let kid = signer(seed).key_id().to_owned();
        assert!(all.iter().any(|e| e.key_id == kid), "process {seed} wrote nothing");
    }
    let (sa, sb) = (a.stats(), b.stats());
    assert!(sa.max_batch > 1 || sb.max_batch > 1, "{sa:?} {sb:?}");
    drop((a, b));
    db.drop_db().await;
}

#[tokio::test]
async fn update_delete_and_truncate_are_refused_by_triggers() {
    let Some(db) = pg::fresh("triggers").await else {
        return;
    };
    let log = open(&db, 42).await;
    let mut req = request("s:x", ExpectedVersion::Any, vec![event("s:x", 1)]);
    req.idempotency = key("k", "h");
    log.append(req).await.unwrap();
    // The test's role owns the tables (a superuser, even): only the triggers stop it.
    let mut raw = db.raw().await;
    for sql in [
        "UPDATE events SET data = '{}' WHERE position = 1",
        "DELETE FROM events WHERE position = 1",
        "TRUNCATE events CASCADE",
        "UPDATE idempotency SET request_hash = 'x'",
        "DELETE FROM idempotency",
        "TRUNCATE idempotency",
    ] {
        let err = sqlx::query(sql).execute(&mut raw).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(log.head().await.unwrap(), 1);
    assert!(log.find_idempotent("ci", "k").await.unwrap().is_some());
    drop(log);
    db.drop_db().await;
}

#[tokio::test]
async fn a_writer_bypassing_the_lock_gets_a_typed_conflict() {
    let Some(db) = pg::fresh("conflict").await else {
        return;
    };
    let log = open(&db, 42).await;
    log.append(request("s:x", ExpectedVersion::Any, vec![event("s:x", 1)])).await.unwrap();
    // A rogue writer takes position 2 without the advisory lock and holds it uncommitted.
    let mut rogue = db.raw().await;
    sqlx::query("BEGIN").execute(&mut rogue).await.unwrap();
    sqlx::query(
        "INSERT INTO events VALUES (2, 'rogue', 'r:1', 'r', 1, 'Rogue', 1, '{}', '{}', \
         'then', 'p', 'h', 'k', 's')",
    )
    .execute(&mut rogue)
    .await
    .unwrap();
    let pending = tokio::spawn({
        let log = log.clone();
        async move { log.append(request("s:x", ExpectedVersion::Any, vec![event("s:x", 2)])).await }
    });
    // Commit only once the log's insert waits on the rogue row: deterministic.
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                   AND application_name = 'tollgate-eventlog' AND wait_event_type = 'Lock'";
    let mut probe = db.raw().await;
    for _ in 0..=500 {
        let n: i64 = sqlx::query_scalar(waiting).fetch_one(&mut probe).await.unwrap();
        if n > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query("COMMIT").execute(&mut rogue).await.unwrap();
    assert_eq!(pending.await.unwrap(), Err(AppendError::Conflict));
    // Nothing of the refused batch was written; the next batch re-reads the tip.
    let out = log.append(request("s:x", ExpectedVersion::Exactly(1), vec![event("s:x", 3)])).await.unwrap();
    assert_eq!((out.events()[0].position, out.events()[0].prev_hash.as_str()), (3, "h"));
    drop(log);
    db.drop_db().await;
}

#[tokio::test]
async fn a_restricted_service_role_can_append_but_not_rewrite() {
    let Some(db) = pg::fresh("restricted_role").await else {
        return;
    };
    let owner = open(&db, 42).await; // migrates as the owner
    owner.append(request("s:x", ExpectedVersion::Any, vec![event("s:x", 1)])).await.unwrap();
    drop(owner);
    let role = format!("svc_{}", db.name);
    let create = format!("CREATE ROLE {role} LOGIN PASSWORD 'svc-secret'");
    sqlx::query(&create).execute(&mut db.admin().await).await.unwrap();
    // The grants the migration recommends.
    let grants = format!(
        "GRANT CONNECT ON DATABASE {db} TO {role}; GRANT USAGE ON SCHEMA public TO {role}; \
         GRANT SELECT ON _sqlx_migrations TO {role}; \
         GRANT SELECT, INSERT ON events, idempotency TO {role};",
        db = db.name
    );
    sqlx::raw_sql(&grants).execute(&mut db.raw().await).await.unwrap();
    let url = db.url_as(&role, "svc-secret");
    let svc = EventLog::open_postgres(&url, signer(42)).await.unwrap();
    svc.append(request("s:x", ExpectedVersion::Exactly(1), vec![event("s:x", 2)])).await.unwrap();
    let mut raw = PgConnection::connect(&url).await.unwrap();
    for sql in ["UPDATE events SET data = '{}'", "DELETE FROM events", "TRUNCATE events"] {
        let err = sqlx::query(sql).execute(&mut raw).await.unwrap_err();
        assert!(err.to_string().contains("permission denied"), "{sql}: {err}");
    }
    drop((svc, raw));
    let mut admin = db.admin().await;
    db.drop_db().await;
    sqlx::query(&format!("DROP ROLE {role}")).execute(&mut admin).await.unwrap();
}
