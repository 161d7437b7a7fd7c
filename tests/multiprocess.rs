//! No acknowledged receipt is ever missing, duplicated or out of its
//! unit's order: with two `serve` processes on one PostgreSQL database, and
//! across a crash (`kill -9`) and restart.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;

use helpers::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// An acknowledged receipt: its id, unit and position.
type Ack = (String, String, u64);

async fn submit(http: &reqwest::Client, url: &str, token: &str, unit: &str, n: usize) -> Result<Ack, String> {
    let body = json!({"unit": unit, "gate": "build", "action": format!("step-{n}"), "multipass": true});
    let response = http
        .post(format!("{url}/v1/receipts"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status() != 201 {
        return Err(format!("status {}: {}", response.status(), response.text().await.unwrap_or_default()));
    }
    let answer: Value = response.json().await.map_err(|e| e.to_string())?;
    Ok((
        answer["id"].as_str().unwrap().to_owned(),
        answer["unit_key"].as_str().unwrap().to_owned(),
        answer["position"].as_u64().unwrap(),
    ))
}

fn unit(i: usize) -> String {
    format!("pkg{i}@1.0-1/x86_64/rpm")
}

/// Checks the log against the acknowledgements: each acknowledged receipt
/// once, at its position; each unit's versions gap-free in log order;
/// exactly one GatePassed and StagePassed per unit.
fn check_log(log: &str, acks: &[Ack]) {
    let events: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["position"].as_u64(), Some(i as u64 + 1), "positions are gap-free");
    }
    let receipts: HashMap<&str, u64> = events
        .iter()
        .filter(|e| e["event_type"] == "ReceiptSubmitted")
        .map(|e| (e["event_id"].as_str().unwrap(), e["position"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        receipts.len(),
        events.iter().filter(|e| e["event_type"] == "ReceiptSubmitted").count(),
        "no duplicates"
    );
    for (id, _, position) in acks {
        assert_eq!(
            receipts.get(id.as_str()),
            Some(position),
            "acknowledged receipt {id} is in the log where it was acknowledged"
        );
    }
    let mut versions: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut passes: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for e in &events {
        let stream = e["stream"].as_str().unwrap();
        versions.entry(stream).or_default().push(e["stream_version"].as_u64().unwrap());
        if matches!(e["event_type"].as_str(), Some("GatePassed" | "StagePassed")) {
            *passes.entry((stream, e["event_type"].as_str().unwrap())).or_default() += 1;
        }
    }
    for (stream, v) in &versions {
        assert_eq!(*v, (1..=v.len() as u64).collect::<Vec<_>>(), "{stream} versions in log order");
    }
    for ((stream, kind), count) in &passes {
        assert_eq!(*count, 1, "{stream} has {count} {kind}");
    }
}

#[tokio::test]
async fn two_servers_on_one_database_keep_one_chain() {
    if postgres_server().is_none() {
        println!("skipped: no PostgreSQL configured (scripts/test provides one)");
        return;
    }
    let database = fresh_database().await;
    let data_dir = tempfile::tempdir().unwrap();
    let admin = mint(data_dir.path(), "alice", "admin");
    let submitter = mint(data_dir.path(), "ci", "submitter");
    let (_a, url_a) = start(data_dir.path(), Some(&database)).await;
    let (_b, url_b) = start(data_dir.path(), Some(&database)).await;
    let http = reqwest::Client::new();
    let define =
        |url: &str, path: &str, body: Value| http.post(format!("{url}{path}")).bearer_auth(&admin).json(&body).send();
    assert_eq!(define(&url_a, "/v1/gates", json!({"name": "build"})).await.unwrap().status(), 201);
    // Defined through the other process: each sees the other's catalog.
    assert_eq!(define(&url_b, "/v1/stages", json!({"name": "ship", "gates": ["build"]})).await.unwrap().status(), 201);

    let mut tasks = Vec::new();
    for t in 0..8 {
        let (http, token) = (http.clone(), submitter.clone());
        let url = if t % 2 == 0 { url_a.clone() } else { url_b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for n in 0..40 {
                acks.push(submit(&http, &url, &token, &unit((t + n) % 5), t * 100 + n).await.expect("accepted"));
            }
            acks
        }));
    }
    let mut acks = Vec::new();
    for task in tasks {
        acks.extend(task.await.unwrap());
    }
    assert_eq!(acks.len(), 320);

    let log =
        http.get(format!("{url_b}/v1/audit/events")).bearer_auth(&admin).send().await.unwrap().text().await.unwrap();
    check_log(&log, &acks);
    let verify = std::process::Command::new(BIN)
        .args(["audit", "verify", "--server", &url_a, "--token", &admin])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}

#[tokio::test]
async fn acknowledged_receipts_survive_a_crash() {
    let mut app = spawn_app().await;
    assert_eq!(app.post("/v1/gates", &app.admin, &json!({"name": "build"})).await.status(), 201);
    assert_eq!(app.post("/v1/stages", &app.admin, &json!({"name": "ship", "gates": ["build"]})).await.status(), 201);

    let mut tasks = Vec::new();
    for t in 0..4 {
        let (http, url, token) = (app.http.clone(), app.url.clone(), app.submitter.clone());
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            // Submits until the server dies under it.
            for n in 0..10_000 {
                match submit(&http, &url, &token, &unit(t), n).await {
                    Ok(ack) => acks.push(ack),
                    Err(_) => break,
                }
            }
            acks
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    app.crash_and_restart().await;
    let mut acks = Vec::new();
    for task in tasks {
        acks.extend(task.await.unwrap());
    }
    assert!(acks.len() > 10, "the load ran before the crash ({} acknowledged)", acks.len());

    // After the restart the chain continues.
    let after = submit(&app.http, &app.url, &app.submitter, &unit(9), 0).await.expect("accepted after restart");
    acks.push(after);
    check_log(&app.audit_log().await, &acks);
    let verify = app.cli(&app.auditor, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}
