//! A rebuild's swap racing the live projector, with the race's steps run in
//! order by hand, on a real log and real read models: on SQLite, and on
//! PostgreSQL too when `TOLLGATE_TEST_DATABASE_URL` names a server (each
//! test then creates a database of its own there).

use crate::apply::{apply_batch, Target};
use crate::projection::{Decoded, Projection};
use crate::rebuild::{rebuild_many, swap};
use crate::store::ReadStore;
use crate::Projector;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tollgate_domain::{Event, GateName, UnitKey};
use tollgate_eventlog::{load_or_create_key, AppendRequest, EventLog, ExpectedVersion, NewEvent, Signer};

const UNIT: &str = "openssl@3.0.13-1/x86_64/rpm";

/// A log and its read models, and how to open the read models again (as
/// another process would).
struct Fixture {
    dir: tempfile::TempDir,
    log: EventLog,
    store: ReadStore,
    /// `(server, this test's database)` on PostgreSQL.
    pg: Option<(String, String)>,
}

impl Fixture {
    async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open_sqlite(&dir.path().join("log.db"), signer(&dir)).await.unwrap();
        let store = ReadStore::open_sqlite(&dir.path().join("readmodels.db")).await.unwrap();
        Fixture { dir, log, store, pg: None }
    }

    /// `None` (and a note saying the test is skipped) without a server.
    async fn postgres(test: &str) -> Option<Fixture> {
        let Ok(server) = std::env::var("TOLLGATE_TEST_DATABASE_URL") else {
            eprintln!("{test} skipped on PostgreSQL: TOLLGATE_TEST_DATABASE_URL is not set");
            return None;
        };
        static TESTS: AtomicU32 = AtomicU32::new(0);
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let name = format!("tollgate_rm_{}_{nanos}_{}", std::process::id(), TESTS.fetch_add(1, Ordering::Relaxed));
        let mut admin = PgConnection::connect(&server).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
        let (base, _) = server.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open_postgres(&url, signer(&dir)).await.unwrap();
        let store = ReadStore::open_postgres(&url).await.unwrap();
        Some(Fixture { dir, log, store, pg: Some((server, name)) })
    }

    /// The same read models through a pool of their own.
    async fn reopen(&self) -> ReadStore {
        match &self.pg {
            Some(_) => ReadStore::open_postgres(self.store.pg_url().unwrap()).await.unwrap(),
            None => ReadStore::open_sqlite(&self.dir.path().join("readmodels.db")).await.unwrap(),
        }
    }

    async fn finish(self) {
        if let Some((server, name)) = self.pg {
            self.store.pool().close().await;
            let mut admin = PgConnection::connect(&server).await.unwrap();
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut admin).await.unwrap();
        }
    }
}

fn signer(dir: &tempfile::TempDir) -> Signer {
    Signer::new(load_or_create_key(&dir.path().join("key")).unwrap())
}

/// Appends unit events `from..=to` (the gate passes on odd ones and is
/// invalidated on even ones); returns them as the log recorded them.
async fn append(log: &EventLog, from: u64, to: u64) -> Vec<Decoded> {
    let unit_key = UnitKey::parse(UNIT).unwrap();
    let gate = GateName::parse("build").unwrap();
    let mut out = Vec::new();
    for n in from..=to {
        let event = if n % 2 == 1 {
            Event::GatePassed { unit_key: unit_key.clone(), gate: gate.clone(), receipts: Vec::new() }
        } else {
            Event::GateInvalidated { unit_key: unit_key.clone(), gate: gate.clone() }
        };
        let new = NewEvent {
            event_id: format!("event-{n}"),
            stream: String::new(),
            event_type: event.type_name().to_owned(),
            schema_version: event.schema_version(),
            data: event.data(),
            metadata: json!({}),
        };
        let request = AppendRequest {
            stream: event.stream(),
            expected: ExpectedVersion::Any,
            events: vec![new],
            idempotency: None,
        };
        let outcome = log.append(request).await.unwrap();
        out.extend(outcome.events().iter().cloned().map(|r| Decoded::decode(r).unwrap()));
    }
    out
}

/// Folds `batch` into `generation` of every projection.
async fn fold(store: &ReadStore, generation: i64, batch: &[Decoded]) {
    for projection in Projection::ALL {
        apply_batch(store, projection, Target::Generation(generation), batch).await.unwrap();
    }
}

/// Makes `generation` the serving one of every projection, as a swap does.
async fn serve(store: &ReadStore, generation: i64) {
    sqlx::query("UPDATE rm_projections SET active_generation = $1")
        .bind(generation)
        .execute(store.pool())
        .await
        .unwrap();
}

/// The serving timeline's positions.
async fn timeline(store: &ReadStore) -> Vec<u64> {
    store.timelines(&[UNIT.to_owned()]).await.unwrap().iter().map(|row| row.position).collect()
}

#[tokio::test]
async fn a_batch_read_before_a_swap_does_not_skip_what_the_new_generation_lacks_on_sqlite() {
    a_batch_read_before_a_swap_does_not_skip_what_the_new_generation_lacks(Fixture::sqlite().await).await;
}

#[tokio::test]
async fn a_batch_read_before_a_swap_does_not_skip_what_the_new_generation_lacks_on_postgres() {
    if let Some(fixture) = Fixture::postgres("a_batch_read_before_a_swap").await {
        a_batch_read_before_a_swap_does_not_skip_what_the_new_generation_lacks(fixture).await;
    }
}

#[tokio::test]
async fn a_swap_covers_what_the_live_projector_folded_while_it_waited_for_the_lock_on_sqlite() {
    a_swap_covers_what_the_live_projector_folded_while_it_waited_for_the_lock(Fixture::sqlite().await).await;
}

#[tokio::test]
async fn a_swap_covers_what_the_live_projector_folded_while_it_waited_for_the_lock_on_postgres() {
    if let Some(fixture) = Fixture::postgres("a_swap_covers_what_the_live_projector_folded").await {
        a_swap_covers_what_the_live_projector_folded_while_it_waited_for_the_lock(fixture).await;
    }
}

async fn a_batch_read_before_a_swap_does_not_skip_what_the_new_generation_lacks(fixture: Fixture) {
    let (log, store) = (&fixture.log, &fixture.store);
    let first = append(log, 1, 8).await;
    fold(store, 1, &first).await;
    // A rebuild folded generation 2 up to 4 only, then swapped it in after
    // the live projector had read the log from 9 on.
    fold(store, 2, &first[..4]).await;
    let read_before_the_swap = append(log, 9, 12).await;
    serve(store, 2).await;

    for projection in Projection::ALL {
        let applied = apply_batch(store, projection, Target::Active, &read_before_the_swap).await.unwrap();
        assert_eq!((applied.generation, applied.events, applied.position), (2, 0, 4), "{projection}");
    }
    assert_eq!(timeline(store).await, [1, 2, 3, 4]);

    // The projector reads again from the new generation's checkpoint.
    Projector::new(store.clone(), log.clone()).catch_up().await.unwrap();
    assert_eq!(timeline(store).await, (1..=12).collect::<Vec<_>>());
    let positions = store.positions().await.unwrap();
    assert!(positions.iter().all(|(_, at)| *at == 12), "{positions:?}");
    let gate = store.gate_statuses(&[UNIT.to_owned()]).await.unwrap();
    assert_eq!((gate[0].passed, gate[0].position), (false, 12));
    fixture.finish().await;
}

async fn a_swap_covers_what_the_live_projector_folded_while_it_waited_for_the_lock(fixture: Fixture) {
    let (log, store) = (&fixture.log, &fixture.store);
    let first = append(log, 1, 8).await;
    Projector::new(store.clone(), log.clone()).catch_up().await.unwrap();
    fold(store, 2, &first[..4]).await;

    // Another connection (the live projector) holds the lock while events
    // 9..=12 are appended and folded into the serving generation.
    let live = fixture.reopen().await;
    let mut locked = live.pool().begin().await.unwrap();
    sqlx::query("UPDATE rm_projections SET active_generation = active_generation").execute(&mut *locked).await.unwrap();
    let swapping = tokio::spawn({
        let (store, log) = (store.clone(), log.clone());
        async move { swap(&store, &log, Projection::Timeline, 2).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let more = append(log, 9, 12).await;
    crate::projections::timeline::apply(&mut locked, 1, &more).await.unwrap();
    crate::apply::save_checkpoint(&mut locked, Projection::Timeline, 1, 12).await.unwrap();
    locked.commit().await.unwrap();

    // Readers never see the serving timeline go back.
    assert_eq!(swapping.await.unwrap().unwrap(), 12);
    assert_eq!(store.active_generation(Projection::Timeline).await.unwrap(), 2);
    assert_eq!(timeline(store).await, (1..=12).collect::<Vec<_>>());
    live.pool().close().await;
    fixture.finish().await;
}

#[tokio::test]
async fn a_swap_folds_under_the_lock_only_what_the_serving_generation_covers_on_sqlite() {
    a_swap_folds_under_the_lock_only_what_the_serving_generation_covers(Fixture::sqlite().await).await;
}

#[tokio::test]
async fn a_swap_folds_under_the_lock_only_what_the_serving_generation_covers_on_postgres() {
    if let Some(fixture) = Fixture::postgres("a_swap_folds_under_the_lock_only").await {
        a_swap_folds_under_the_lock_only_what_the_serving_generation_covers(fixture).await;
    }
}

async fn a_swap_folds_under_the_lock_only_what_the_serving_generation_covers(fixture: Fixture) {
    let (log, store) = (&fixture.log, &fixture.store);
    let first = append(log, 1, 8).await;
    Projector::new(store.clone(), log.clone()).catch_up().await.unwrap();
    fold(store, 2, &first[..4]).await;
    // Appended but not folded yet when the swap takes the lock: the swap
    // brings the new generation as far as the serving one (8), no further.
    let second = append(log, 9, 12).await;
    assert_eq!(swap(store, log, Projection::Timeline, 2).await.unwrap(), 8);
    assert_eq!(store.active_generation(Projection::Timeline).await.unwrap(), 2);
    assert_eq!(timeline(store).await, (1..=8).collect::<Vec<_>>());
    // The live projector folds the rest into the new generation.
    Projector::new(store.clone(), log.clone()).catch_up().await.unwrap();
    assert_eq!(timeline(store).await, (1..=12).collect::<Vec<_>>());
    assert_eq!(store.checkpoint(Projection::Timeline, 2).await.unwrap(), 12);

    // A new generation ahead of the serving one (14 against 12) keeps
    // what it has.
    let third = append(log, 13, 16).await;
    fold(store, 3, &[first, second, third[..2].to_vec()].concat()).await;
    assert_eq!(swap(store, log, Projection::Timeline, 3).await.unwrap(), 14);
    assert_eq!(timeline(store).await, (1..=14).collect::<Vec<_>>());
    Projector::new(store.clone(), log.clone()).catch_up().await.unwrap();
    assert_eq!(timeline(store).await, (1..=16).collect::<Vec<_>>());
    fixture.finish().await;
}

#[tokio::test]
async fn a_rebuild_drops_what_a_stopped_one_left_on_sqlite() {
    a_rebuild_drops_what_a_stopped_one_left(Fixture::sqlite().await).await;
}

#[tokio::test]
async fn a_rebuild_drops_what_a_stopped_one_left_on_postgres() {
    if let Some(fixture) = Fixture::postgres("a_rebuild_drops_what_a_stopped_one_left").await {
        a_rebuild_drops_what_a_stopped_one_left(fixture).await;
    }
}

/// A rebuild that stopped after its load committed, while it built the
/// indexes, left partitions that are loaded, indexed or not, and not
/// attached. The next rebuild drops them too.
#[tokio::test]
async fn a_rebuild_drops_loaded_partitions_a_stopped_one_left_detached() {
    let Some(fixture) = Fixture::postgres("a_rebuild_drops_loaded_partitions").await else { return };
    let (log, store) = (&fixture.log, &fixture.store);
    append(log, 1, 4).await;
    Projector::new(store.clone(), log.clone()).catch_up().await.unwrap();
    let pool = store.pool();
    sqlx::query("CREATE TABLE tollgate_read.rm_timeline_g2 (LIKE tollgate_read.rm_timeline, CHECK (generation = 2))")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO tollgate_read.rm_timeline_g2 \
         SELECT 2, unit_key, position, event_type, recorded_at, summary FROM tollgate_read.rm_timeline",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("CREATE INDEX rm_timeline_g2_build0 ON tollgate_read.rm_timeline_g2 (unit_key)")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(store.stale_generations(Projection::Timeline).await.unwrap().into_iter().collect::<Vec<_>>(), [2]);

    let rebuilt = rebuild_many(store, log, &[Projection::Timeline], |_| {}).await.unwrap();
    assert_eq!((rebuilt[0].old_generation, rebuilt[0].new_generation, rebuilt[0].events), (1, 3, 4));
    assert!(store.stale_generations(Projection::Timeline).await.unwrap().is_empty());
    assert_eq!(timeline(store).await, (1..=4).collect::<Vec<_>>());
    fixture.finish().await;
}

/// A rebuild running in another process is not mistaken for one that
/// stopped: a second rebuild of the same projection is refused, and one of
/// another projection goes ahead.
#[tokio::test]
async fn a_second_rebuild_of_a_projection_being_rebuilt_is_refused() {
    let Some(fixture) = Fixture::postgres("a_second_rebuild_is_refused").await else { return };
    let (log, store) = (&fixture.log, &fixture.store);
    append(log, 1, 4).await;
    Projector::new(store.clone(), log.clone()).catch_up().await.unwrap();
    // What a rebuild of `timeline` holds while it runs.
    let mut other = PgConnection::connect(store.pg_url().unwrap()).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(7419, 104)").execute(&mut other).await.unwrap();

    let refused = rebuild_many(store, log, &[Projection::Units, Projection::Timeline], |_| {}).await;
    assert!(matches!(&refused, Err(crate::ReadError::RebuildRunning(p)) if p == "timeline"), "{refused:?}");
    assert_eq!(store.active_generation(Projection::Units).await.unwrap(), 1, "nothing was swapped");
    let units = rebuild_many(store, log, &[Projection::Units], |_| {}).await.unwrap();
    assert_eq!(units[0].new_generation, 2);

    sqlx::query("SELECT pg_advisory_unlock(7419, 104)").execute(&mut other).await.unwrap();
    let timeline = rebuild_many(store, log, &[Projection::Timeline], |_| {}).await.unwrap();
    assert_eq!(timeline[0].new_generation, 2);
    fixture.finish().await;
}

async fn a_rebuild_drops_what_a_stopped_one_left(fixture: Fixture) {
    let (log, store) = (&fixture.log, &fixture.store);
    let events = append(log, 1, 8).await;
    Projector::new(store.clone(), log.clone()).catch_up().await.unwrap();
    // A rebuild stopped after folding half of generation 2.
    fold(store, 2, &events[..4]).await;
    for projection in Projection::ALL {
        assert_eq!(store.stale_generations(projection).await.unwrap().into_iter().collect::<Vec<_>>(), [2]);
    }

    let rebuilt = rebuild_many(store, log, &Projection::ALL, |_| {}).await.unwrap();
    for done in rebuilt {
        assert_eq!((done.old_generation, done.new_generation, done.events), (1, 3, 8), "{}", done.projection);
        assert!(store.stale_generations(done.projection).await.unwrap().is_empty(), "{}", done.projection);
        assert_eq!(store.checkpoint(done.projection, 2).await.unwrap(), 0, "{}", done.projection);
    }
    assert_eq!(timeline(store).await, (1..=8).collect::<Vec<_>>());
    // A server that read generation 1 as serving before the swap does not
    // bring its tables back.
    store.ensure_generation(Projection::Timeline, 1).await.unwrap();
    assert!(store.stale_generations(Projection::Timeline).await.unwrap().is_empty());
    fixture.finish().await;
}
