//! The database read models: the live projector follows the log, `/metrics`
//! reports its lag, and `tollgate rebuild` swaps in generations whose every
//! query result equals, byte for byte, the live one: after folding event by
//! event, and after a rebuild that ran while the server took receipts.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;

use helpers::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tollgate_readmodels::queries::{Page, ReceiptFilter, UnitFilter};
use tollgate_readmodels::{Projection, ReadStore};

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn unit(i: u64) -> String {
    format!("lib{}@{}.{}-1/x86_64/rpm", i % 7, i / 7, i % 3)
}

async fn define(app: &TestApp) {
    for (gate, actions) in
        [("build", json!(["compile", "package"])), ("test", json!(["unit", "lint"])), ("scan", json!(["cve"]))]
    {
        let r = app.post("/v1/gates", &app.admin, &json!({"name": gate, "required_actions": actions})).await;
        assert_eq!(r.status(), 201);
    }
    for (stage, gates) in [("candidate", json!(["build", "test"])), ("release", json!(["build", "test", "scan"]))] {
        let r = app.post("/v1/stages", &app.admin, &json!({"name": stage, "gates": gates})).await;
        assert_eq!(r.status(), 201);
    }
}

/// Receipts over 24 units, mostly passing, with revocations and a
/// gate switched off and on again along the way.
/// Receipts number `from..to` of one history: the gate toggles follow the
/// running number, so they alternate across calls.
async fn history(app: &TestApp, rng: &mut Lcg, from: usize, to: usize) {
    let actions = [("build", "compile"), ("build", "package"), ("test", "unit"), ("test", "lint"), ("scan", "cve")];
    let mut ids = Vec::new();
    for n in from..to {
        let (gate, action) = actions[rng.next(actions.len() as u64) as usize];
        let pass = rng.next(10) < 8;
        let body = json!({"unit": unit(rng.next(24)), "gate": gate, "action": action, "multipass": pass,
                          "custom": {"run": n}});
        let answer: Value = app.post("/v1/receipts", &app.submitter, &body).await.json().await.unwrap();
        ids.push(answer["id"].as_str().unwrap().to_owned());
        if n % 17 == 16 {
            let id = &ids[rng.next(ids.len() as u64) as usize];
            // A receipt revoked twice is refused the second time: fine.
            app.post(&format!("/v1/receipts/{id}/revoke"), &app.admin, &json!({"reason": "flaky runner"})).await;
        }
        if n % 40 == 20 {
            let toggle = if n % 80 == 20 { "disable" } else { "enable" };
            let r = app.post(&format!("/v1/gates/scan/{toggle}"), &app.admin, &json!({})).await;
            assert_eq!(r.status(), 201, "{toggle} gate scan");
        }
    }
}

/// A metric's value from `/metrics`.
async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app.get("/metrics", &app.reader).await.text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Waits until every projection has folded the whole log.
async fn caught_up(app: &TestApp) {
    let head = app.audit_log().await.lines().count() as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut behind = Vec::new();
        for p in Projection::ALL {
            let at = metric(app, &format!("tollgate_projection_position{{projection=\"{p}\"}}")).await;
            if at < head {
                behind.push((p, at));
            }
        }
        if behind.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "read models stuck below {head}: {behind:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The read models of a server's data dir (or database).
async fn open_dir(data_dir: &std::path::Path, database_url: Option<&str>) -> ReadStore {
    match database_url {
        Some(url) => ReadStore::open_postgres(url).await.unwrap(),
        None => ReadStore::open_sqlite(&data_dir.join("readmodels.db")).await.unwrap(),
    }
}

/// Every query result of the serving generations, as one JSON text.
async fn dump(store: &ReadStore) -> String {
    let mut units = Vec::new();
    let mut after = None;
    loop {
        let page = store.units(&UnitFilter::default(), &Page { first: 5, after: after.clone() }).await.unwrap();
        after = page.items.last().map(|u| u.unit_key.clone());
        units.extend(page.items);
        if !page.has_next {
            break;
        }
    }
    let keys: Vec<String> = units.iter().map(|u| u.unit_key.clone()).collect();
    let mut receipts = Vec::new();
    let mut after = None;
    loop {
        let page = store.receipts(&ReceiptFilter::default(), &Page { first: 50, after }).await.unwrap();
        after = page.items.last().map(|r| r.position);
        receipts.extend(page.items);
        if !page.has_next {
            break;
        }
    }
    let everything = Page { first: 500, after: None };
    let failing = ReceiptFilter { multipass: Some(false), ..Default::default() };
    let failing = store.receipts(&failing, &everything).await.unwrap();
    let revoked = ReceiptFilter { revoked: Some(true), ..Default::default() };
    let revoked = store.receipts(&revoked, &everything).await.unwrap();
    // Every history here revokes some receipts (one after every 17).
    assert!(!revoked.items.is_empty() && revoked.items.iter().all(|r| r.revoked && r.revoke_reason.is_some()));
    assert_eq!(revoked.items.len(), receipts.iter().filter(|r| r.revoked).count());
    let released = UnitFilter { stage_passed: Some("release".into()), ..Default::default() };
    let released = store.units(&released, &Page { first: 500, after: None }).await.unwrap();
    serde_json::to_string_pretty(&json!({
        "units": units,
        "gates": store.gate_statuses(&keys).await.unwrap(),
        "stages": store.stage_statuses(&keys).await.unwrap(),
        "receipts": receipts,
        "failing": failing,
        "revoked": revoked,
        "released": released,
        "receipts_of_units": store.receipts_of_units(&keys).await.unwrap(),
        "timelines": store.timelines(&keys).await.unwrap(),
        "gate_definitions": store.definitions("gate").await.unwrap(),
        "stage_definitions": store.definitions("stage").await.unwrap(),
    }))
    .unwrap()
}

/// `tollgate rebuild` of every projection.
fn rebuild(stopped_dir: &std::path::Path, database_url: Option<&str>) -> std::process::Child {
    rebuild_some(stopped_dir, database_url, &[])
}

/// `tollgate rebuild` of the named projections (every one when none is named).
fn rebuild_some(stopped_dir: &std::path::Path, database_url: Option<&str>, only: &[&str]) -> std::process::Child {
    let mut command = std::process::Command::new(BIN);
    command.arg("rebuild").args(only).arg("--data-dir").arg(stopped_dir).stdout(std::process::Stdio::null());
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    command.spawn().unwrap()
}

#[tokio::test]
async fn a_rebuild_during_writes_swaps_in_read_models_equal_to_a_fresh_rebuild() {
    let app = spawn_app().await;
    let mut rng = Lcg(7);
    define(&app).await;
    history(&app, &mut rng, 0, 150).await;
    caught_up(&app).await;
    assert_eq!(metric(&app, "tollgate_projection_lag_events{projection=\"receipts\"}").await, 0);

    // Folded event by event by the live projector, then rebuilt (in bulk,
    // on PostgreSQL) with nothing else running: the same answers.
    let store = open_dir(app.data_dir.path(), app.database_url.as_deref()).await;
    let folded_live = dump(&store).await;
    let status = rebuild(app.data_dir.path(), app.database_url.as_deref()).wait().unwrap();
    assert!(status.success());
    assert_eq!(dump(&store).await, folded_live, "rebuilt in one go equals folded event by event");

    // Rebuild every projection again while more receipts arrive.
    let mut rebuilding = rebuild(app.data_dir.path(), app.database_url.as_deref());
    history(&app, &mut rng, 150, 250).await;
    let status = tokio::task::spawn_blocking(move || rebuilding.wait()).await.unwrap().unwrap();
    assert!(status.success(), "rebuild failed: {status:?}");
    history(&app, &mut rng, 250, 270).await;
    caught_up(&app).await;

    let stopped = app.stop().await;
    for p in Projection::ALL {
        assert_eq!(store.active_generation(p).await.unwrap(), 3, "{p} was swapped twice");
    }
    let live = dump(&store).await;
    assert!(live.contains("\"unit_key\": \"lib0@0.0-1/x86_64/rpm\"") && live.contains("flaky runner"), "{live}");

    // From scratch, with nothing else running: the same bytes.
    let status = rebuild(stopped.data_dir.path(), stopped.database_url.as_deref()).wait().unwrap();
    assert!(status.success());
    for p in Projection::ALL {
        assert_eq!(store.active_generation(p).await.unwrap(), 4);
    }
    let rebuilt = dump(&store).await;
    assert_eq!(rebuilt, live, "a rebuilt read model answers exactly like the live one");

    // One projection alone: on PostgreSQL `units` then reads no receipt's
    // data (it needs only their positions), and still answers the same.
    let status = rebuild_some(stopped.data_dir.path(), stopped.database_url.as_deref(), &["units"]).wait().unwrap();
    assert!(status.success());
    assert_eq!(store.active_generation(Projection::Units).await.unwrap(), 5);
    assert_eq!(store.active_generation(Projection::Timeline).await.unwrap(), 4);
    assert_eq!(dump(&store).await, live, "units rebuilt alone answers like the live one");
    if stopped.database_url.is_some() {
        assert_eq!(
            partitions(&store).await,
            [
                "rm_definitions_g4",
                "rm_receipt_revocations_g4",
                "rm_receipts_g4",
                "rm_timeline_g4",
                "rm_unit_gates_g5",
                "rm_unit_stages_g5",
                "rm_units_g5"
            ],
            "one partition per table: the serving generation's"
        );
    }
}

/// Every table of the read-model schema that holds rows (PostgreSQL
/// partitions, attached or not), by name.
async fn partitions(store: &ReadStore) -> Vec<String> {
    let rows = sqlx::query(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'tollgate_read' AND c.relkind = 'r' AND c.relname ~ '^rm_.*_g[0-9]+$' ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    rows.iter().map(|row| sqlx::Row::get(row, 0)).collect()
}
