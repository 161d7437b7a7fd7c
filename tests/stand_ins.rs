//! Small real HTTP servers standing in for the third parties watchers
//! talk to: a Jira (REST API v2: create, status, comment) and a webhook
//! receiver that records every request.

#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

pub const AUTH: &str = "Bearer jira-pat-for-tests";

#[derive(Debug, Clone)]
pub struct Issue {
    pub key: String,
    pub summary: String,
    pub status: String,
    pub comments: Vec<String>,
}

/// Issues in memory, plus one injected failure for the next request.
#[derive(Default)]
pub struct Jira {
    pub issues: Vec<Issue>,
    pub fail_next: Option<StatusCode>,
}

pub type Shared = Arc<Mutex<Jira>>;
pub type Answer = (StatusCode, Json<Value>);

/// The Jira REST v2 stand-in: create, status, comment; Bearer auth checked.
pub async fn start_jira() -> (String, Shared) {
    let shared = Shared::default();
    let app = Router::new()
        .route("/rest/api/2/issue", post(create))
        .route("/rest/api/2/issue/{key}", get(status))
        .route("/rest/api/2/issue/{key}/comment", post(comment))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, shared)
}

pub fn check(jira: &mut Jira, headers: &HeaderMap) -> Result<(), Answer> {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(AUTH) {
        return Err((StatusCode::UNAUTHORIZED, Json(json!({"errorMessages": ["not authenticated"], "errors": {}}))));
    }
    match jira.fail_next.take() {
        Some(status) => Err((status, Json(json!({"errorMessages": ["injected"], "errors": {}})))),
        None => Ok(()),
    }
}

pub async fn create(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Answer {
    let mut jira = s.lock().unwrap();
    if let Err(answer) = check(&mut jira, &headers) {
        return answer;
    }
    let key = format!("{}-{}", body["fields"]["project"]["key"].as_str().unwrap(), jira.issues.len() + 1);
    let summary = body["fields"]["summary"].as_str().unwrap().to_owned();
    jira.issues.push(Issue { key: key.clone(), summary, status: "Open".into(), comments: vec![] });
    (StatusCode::CREATED, Json(json!({"id": "1", "key": key})))
}

pub async fn status(State(s): State<Shared>, headers: HeaderMap, Path(key): Path<String>) -> Answer {
    let mut jira = s.lock().unwrap();
    if let Err(answer) = check(&mut jira, &headers) {
        return answer;
    }
    let issue = jira.issues.iter().find(|i| i.key == key).unwrap();
    (StatusCode::OK, Json(json!({"key": key, "fields": {"status": {"name": issue.status}}})))
}

pub async fn comment(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Json(b): Json<Value>,
) -> Answer {
    let mut jira = s.lock().unwrap();
    if let Err(answer) = check(&mut jira, &headers) {
        return answer;
    }
    let issue = jira.issues.iter_mut().find(|i| i.key == key).unwrap();
    issue.comments.push(b["body"].as_str().unwrap().to_owned());
    (StatusCode::CREATED, Json(json!({"id": "2"})))
}

pub fn jira_issues(jira: &Shared) -> Vec<Issue> {
    jira.lock().unwrap().issues.clone()
}

pub fn set_status(jira: &Shared, key: &str, status: &str) {
    jira.lock().unwrap().issues.iter_mut().find(|i| i.key == key).unwrap().status = status.to_owned();
}

pub type Received = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

/// Records every request and answers 204.
pub async fn start_receiver() -> (u16, Received) {
    let received = Received::default();
    let seen = received.clone();
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push((uri.to_string(), headers, body));
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, received)
}
