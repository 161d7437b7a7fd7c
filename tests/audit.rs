//! `tollgate audit verify` from a data dir, a server and an export, and
//! its failure, naming the position, when the stored log is tampered with.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;

use helpers::*;
use sqlx::{Connection, Executor};

async fn populated() -> TestApp {
    let app = spawn_app().await;
    app.define_release().await;
    app.submit("build", "compile", true).await;
    app.submit("build", "package", true).await;
    app.submit("test", "unit-tests", false).await;
    app
}

#[tokio::test]
async fn verify_accepts_an_intact_log_from_every_source() {
    let app = populated().await;
    let from_server = app.cli(&app.auditor, &["audit", "verify"]);
    assert!(from_server.status.success(), "{}", String::from_utf8_lossy(&from_server.stderr));
    assert!(String::from_utf8_lossy(&from_server.stdout).contains("7 events verified"));

    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("log.ndjson");
    let keys = dir.path().join("keys.json");
    let out = app.cli(&app.auditor, &["audit", "export", "--file", export.to_str().unwrap()]);
    assert!(out.status.success());
    let jwks = app.http.get(format!("{}/v1/keys", app.url)).send().await.unwrap().text().await.unwrap();
    std::fs::write(&keys, jwks).unwrap();
    let from_file =
        app.cli("", &["audit", "verify", "--file", export.to_str().unwrap(), "--public-key", keys.to_str().unwrap()]);
    assert!(from_file.status.success(), "{}", String::from_utf8_lossy(&from_file.stderr));

    let stopped = app.stop().await;
    let out = stopped.verify();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Checked against a key the auditor holds...
    let pinned = stopped.verify_with(&["--public-key", keys.to_str().unwrap()]);
    assert!(pinned.status.success(), "{}", String::from_utf8_lossy(&pinned.stderr));
    // ...and refused under a key that did not sign it.
    let other = tempfile::tempdir().unwrap();
    let (_other_server, other_url) = start(other.path(), None).await;
    let foreign = reqwest::get(format!("{other_url}/v1/keys")).await.unwrap().text().await.unwrap();
    let foreign_keys = dir.path().join("foreign.json");
    std::fs::write(&foreign_keys, foreign).unwrap();
    let refused = stopped.verify_with(&["--public-key", foreign_keys.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("position 1: signed by unknown key"));

    // An export edited by one byte fails, naming the position.
    let text = std::fs::read_to_string(&export).unwrap().replacen("\"unit-tests\"", "\"unit-tezts\"", 1);
    std::fs::write(&export, text).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["audit", "verify", "--file", export.to_str().unwrap(), "--public-key", keys.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("position 2"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Still valid JSON, so only the hash can tell: the receipt at position 5
/// claims another action.
const TAMPER: &str = "UPDATE events SET data = replace(data, '\"package\"', '\"packagf\"') WHERE position = 5";

#[tokio::test]
async fn a_changed_byte_in_the_stored_log_fails_verify_naming_the_position() {
    let app = populated().await;
    let stopped = app.stop().await;
    match &stopped.database_url {
        None => {
            let db = stopped.data_dir.path().join("tollgate.db");
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
            // The triggers refuse the edit...
            assert!(conn.execute(TAMPER).await.is_err());
            // ...so an attacker drops them first.
            conn.execute("DROP TRIGGER events_no_update").await.unwrap();
            assert_eq!(conn.execute(TAMPER).await.unwrap().rows_affected(), 1);
            conn.close().await.unwrap();
        }
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            assert!(conn.execute(TAMPER).await.is_err());
            conn.execute("ALTER TABLE events DISABLE TRIGGER USER").await.unwrap();
            assert_eq!(conn.execute(TAMPER).await.unwrap().rows_affected(), 1);
            conn.close().await.unwrap();
        }
    }
    let out = stopped.verify();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("position 5: hash does not match"), "{stderr}");
}
