//! Input guardrails, one test per attack: each gets its exact status and a
//! problem+json body, and leaves the log exactly as it was. The attacking
//! receipts are otherwise valid, so a guard that let one through would
//! show up as a 201 and a changed log.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;

use base64::Engine;
use flate2::write::GzEncoder;
use flate2::Compression;
use helpers::*;
use reqwest::{Method, Response};
use serde_json::{json, Value};
use std::io::Write;

const MIB: usize = 1024 * 1024;

/// Asserts the status and the problem body; returns the body.
async fn assert_problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], status);
    assert!(problem["type"].as_str().unwrap().starts_with("urn:tollgate:problem:"), "{problem}");
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{problem}");
    problem
}

fn detail(problem: &Value) -> &str {
    problem["detail"].as_str().unwrap()
}

/// A receipt the server would record, with `custom` as its custom section.
fn receipt(custom: Value) -> Value {
    json!({"unit": UNIT, "gate": "build", "action": "compile", "multipass": true, "custom": custom})
}

/// A server with gates defined, and its log as it stands.
async fn app_and_log(serve_args: Vec<String>) -> (TestApp, String) {
    let app = spawn_app_with(serve_args).await;
    app.define_release().await;
    let log = app.audit_log().await;
    (app, log)
}

async fn send(app: &TestApp, body: Vec<u8>, headers: &[(&str, &str)]) -> Response {
    let mut request =
        app.request(Method::POST, "/v1/receipts", &app.submitter).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(body).send().await.unwrap()
}

/// A receipt serialized to exactly `len` bytes, padded in its custom
/// section; `gate` decides whether the server would record it.
fn receipt_of_len(len: usize, gate: &str) -> Vec<u8> {
    let mut body = receipt(json!({"notes": ""}));
    body["gate"] = json!(gate);
    let bare = body.to_string().len();
    body["custom"]["notes"] = json!("x".repeat(len - bare));
    let bytes = body.to_string().into_bytes();
    assert_eq!(bytes.len(), len);
    bytes
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn one_byte_over_a_mebibyte_is_refused() {
    let (app, log) = app_and_log(Vec::new()).await;
    let problem = assert_problem(send(&app, receipt_of_len(MIB + 1, "build"), &[]).await, 413).await;
    assert!(detail(&problem).contains("1048576"), "{problem}");
    // Exactly 1 MiB is read and judged on its content (an unknown gate).
    assert_problem(send(&app, receipt_of_len(MIB, "deploy"), &[]).await, 422).await;
    assert_eq!(app.audit_log().await, log);
}

#[tokio::test]
async fn a_chunked_body_over_a_mebibyte_is_refused() {
    let (app, log) = app_and_log(Vec::new()).await;
    let streamed = |body: Vec<u8>| {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
        let stream = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
        app.request(Method::POST, "/v1/receipts", &app.submitter)
            .header("content-type", "application/json")
            .body(stream)
            .send()
    };
    // No Content-Length: the limit has to hold while the chunks arrive.
    let response = streamed(receipt_of_len(MIB + 64 * 1024, "build")).await.unwrap();
    assert_problem(response, 413).await;
    // A small chunked body is read whole and judged on its content.
    let response = streamed(receipt_of_len(4 * 1024, "deploy")).await.unwrap();
    assert_problem(response, 422).await;
    assert_eq!(app.audit_log().await, log);
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_and_other_encodings_too() {
    let (app, log) = app_and_log(Vec::new()).await;
    // 10 MB of JSON whitespace before a valid receipt: inflated whole it
    // would be recorded, so only the inflation limit can refuse it.
    let mut inflated = vec![b' '; 10 * 1000 * 1000];
    inflated.extend(receipt(json!({})).to_string().into_bytes());
    let bomb = gzip(&inflated);
    assert!(bomb.len() < 32 * 1024, "the bomb is {} bytes", bomb.len());
    assert_problem(send(&app, bomb, &[("content-encoding", "gzip")]).await, 413).await;

    let not_gzip = receipt(json!({})).to_string().into_bytes();
    let problem = assert_problem(send(&app, not_gzip.clone(), &[("content-encoding", "gzip")]).await, 400).await;
    assert!(detail(&problem).contains("gzip"), "{problem}");

    let response = send(&app, not_gzip, &[("content-encoding", "br")]).await;
    assert_eq!(response.headers()["accept-encoding"], "gzip");
    let problem = assert_problem(response, 415).await;
    assert!(detail(&problem).contains("\"br\""), "{problem}");

    // A gzip body within the limit is inflated and judged on its content.
    let unknown_gate = json!({"unit": UNIT, "gate": "deploy", "action": "compile", "multipass": true});
    let response = send(&app, gzip(unknown_gate.to_string().as_bytes()), &[("content-encoding", "gzip")]).await;
    let problem = assert_problem(response, 422).await;
    assert_eq!(problem["errors"][0]["field"], "/gate");
    assert_eq!(app.audit_log().await, log);
}

#[tokio::test]
async fn a_gzip_receipt_is_recorded_like_a_plain_one() {
    let (app, log) = app_and_log(Vec::new()).await;
    let body = gzip(receipt(json!({"tests": 3})).to_string().as_bytes());
    let response = send(&app, body, &[("content-encoding", "gzip")]).await;
    assert_eq!(response.status(), 201);
    let after = app.audit_log().await;
    assert_eq!(after.lines().count(), log.lines().count() + 1);
    assert!(after.lines().last().unwrap().contains(r#""tests":3"#), "{after}");
}

#[tokio::test]
async fn json_nested_200_levels_deep_is_refused_before_parsing() {
    let (app, log) = app_and_log(Vec::new()).await;
    let nested = |levels: usize| format!("{}0{}", "[".repeat(levels), "]".repeat(levels));
    let deep = format!(
        r#"{{"unit":"{UNIT}","gate":"build","action":"compile","multipass":true,"custom":{{"deep":{}}}}}"#,
        nested(200)
    );
    let problem = assert_problem(send(&app, deep.into_bytes(), &[]).await, 400).await;
    assert!(detail(&problem).contains("nested deeper than 32 levels"), "{problem}");
    // 32 levels in all (the receipt, its custom section and 30 arrays) are
    // parsed and judged on their content.
    let deepest = format!(
        r#"{{"unit":"{UNIT}","gate":"deploy","action":"compile","multipass":true,"custom":{{"deep":{}}}}}"#,
        nested(30)
    );
    assert_problem(send(&app, deepest.into_bytes(), &[]).await, 422).await;
    assert_eq!(app.audit_log().await, log);
}

#[tokio::test]
async fn lone_surrogates_are_refused() {
    let (app, log) = app_and_log(Vec::new()).await;
    // A receipt whose custom note (or key) holds `text` as it is written.
    let with_note = |key: &str, text: &[u8]| {
        let head = format!(r#"{{"unit":"{UNIT}","gate":"build","action":"compile","multipass":true,"custom":{{"#);
        let mut body = head.into_bytes();
        body.extend(format!(r#""{key}":""#).into_bytes());
        body.extend(text);
        body.extend(br#""}}"#);
        body
    };
    // Escaped: a leading surrogate alone, before a letter or before a
    // non-surrogate escape; a trailing one alone.
    for escape in [r"\ud800", r"a\ud800b", r"\ud800\u0041", r"\udc00"] {
        let problem = assert_problem(send(&app, with_note("note", escape.as_bytes()), &[]).await, 400).await;
        assert_eq!(problem["type"], "urn:tollgate:problem:malformed-json", "{escape}: {problem}");
    }
    // In a key too.
    let body = with_note(r"\ud800", b"x");
    assert_problem(send(&app, body, &[]).await, 400).await;
    // A surrogate encoded straight into the bytes (CESU-8) is not UTF-8.
    let problem = assert_problem(send(&app, with_note("note", &[b'a', 0xED, 0xA0, 0x80]), &[]).await, 400).await;
    assert_eq!(problem["type"], "urn:tollgate:problem:malformed-json", "{problem}");
    assert_eq!(app.audit_log().await, log);
}

#[tokio::test]
async fn a_key_named_twice_in_one_object_is_refused_naming_the_key() {
    let (app, log) = app_and_log(Vec::new()).await;
    // The server's JSON reader keeps the last of repeated keys, other readers
    // the first: "test" would be recorded while a reader of the request saw
    // "build".
    let top = format!(r#"{{"unit":"{UNIT}","gate":"build","action":"compile","multipass":true,"gate":"test"}}"#);
    let nested = format!(
        r#"{{"unit":"{UNIT}","gate":"build","action":"compile","multipass":true,"custom":{{"ok":true,"ok":false}}}}"#
    );
    for (body, key) in [(top, "gate"), (nested, "ok")] {
        let problem = assert_problem(send(&app, body.into_bytes(), &[]).await, 400).await;
        assert_eq!(problem["type"], "urn:tollgate:problem:malformed-json", "{problem}");
        assert!(detail(&problem).contains(&format!("the key \"{key}\" appears twice")), "{problem}");
    }
    assert_eq!(app.audit_log().await, log);
    // The same key in two sibling objects is no repetition.
    let fine = receipt(json!({"steps": [{"ok": true}, {"ok": false}]}));
    assert_eq!(send(&app, fine.to_string().into_bytes(), &[]).await.status().as_u16(), 201);
}

/// `len` characters of base64 encoding pseudo-random bytes, like a file.
fn base64_blob(len: usize) -> String {
    let mut state: u32 = 0x2545_f491;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)[..len].to_owned()
}

#[tokio::test]
async fn a_base64_blob_split_over_fields_is_refused_naming_its_container() {
    let (app, log) = app_and_log(Vec::new()).await;
    let blob = base64_blob(800);
    let parts: serde_json::Map<String, Value> =
        (0..8).map(|i| (format!("part{i}"), json!(blob[i * 100..(i + 1) * 100]))).collect();
    let lines: Vec<&str> = (0..20).map(|i| &blob[i * 40..(i + 1) * 40]).collect();
    for (custom, field) in
        [(json!({"attachment": parts}), "/custom/attachment"), (json!({"lines": lines}), "/custom/lines")]
    {
        let problem = assert_problem(app.post("/v1/receipts", &app.submitter, &receipt(custom)).await, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        assert!(detail(&problem).contains("split"), "{problem}");
    }
    assert_eq!(app.audit_log().await, log);
}

#[tokio::test]
async fn a_graphql_batch_is_refused() {
    let app = spawn_app().await;
    let one = json!({"query": "{ gates { name } }"});
    assert_eq!(app.post("/graphql", &app.reader, &one).await.status(), 200);
    let batch = json!([one, one]);
    let problem = assert_problem(app.post("/graphql", &app.reader, &batch).await, 400).await;
    assert!(detail(&problem).contains("batched GraphQL requests are not accepted"), "{problem}");
}

#[tokio::test]
async fn a_burst_of_graphql_operations_hits_the_rate_limit() {
    let app = spawn_app_with(vec!["--rate-limit".into(), "5".into()]).await;
    // A caller of its own, with a full bucket: a burst of twice the rate
    // passes, one operation per request, then it must wait. (Tokens
    // refill while the burst runs, so a few more may pass.)
    let dashboard = mint(app.data_dir.path(), "grafana", "reader");
    let query = json!({"query": "{ gates { name } }"});
    let mut passed = 0;
    let refused = loop {
        let response = app.post("/graphql", &dashboard, &query).await;
        if response.status() != 200 {
            break response;
        }
        passed += 1;
        assert!(passed < 30, "the rate limit never applied");
    };
    assert!(passed >= 10, "only {passed} operations passed before the limit");
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    assert_problem(refused, 429).await;
}
