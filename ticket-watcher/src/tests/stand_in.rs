//! A small, real Jira stand-in: the three REST v2 endpoints the watcher
//! uses, over HTTP on 127.0.0.1, with issues in memory. It checks the
//! `Authorization` header and answers with Jira's error body shape.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One issue as the stand-in keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub key: String,
    pub project: String,
    pub issue_type: String,
    pub summary: String,
    pub description: String,
    pub status: String,
    pub comments: Vec<String>,
}

#[derive(Default)]
struct Inner {
    issues: Vec<Issue>,
    /// Answered once, instead of the real answer, by the next request.
    fail_next: Option<(u16, Value)>,
}

#[derive(Clone)]
struct Shared {
    authorization: String,
    inner: Arc<Mutex<Inner>>,
}

/// A running stand-in; it stops with the test's runtime.
pub struct JiraStandIn {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl JiraStandIn {
    /// Starts a stand-in accepting only `authorization` (the whole header).
    pub async fn start(authorization: &str) -> JiraStandIn {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let shared = Shared { authorization: authorization.to_owned(), inner: inner.clone() };
        let app = Router::new()
            .route("/rest/api/2/issue", post(create))
            .route("/rest/api/2/issue/{key}", get(status))
            .route("/rest/api/2/issue/{key}/comment", post(comment))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        JiraStandIn { url, inner }
    }

    pub fn issues(&self) -> Vec<Issue> {
        self.inner.lock().unwrap().issues.clone()
    }

    pub fn set_status(&self, key: &str, status: &str) {
        let mut inner = self.inner.lock().unwrap();
        let issue = inner.issues.iter_mut().find(|i| i.key == key).unwrap();
        issue.status = status.to_owned();
    }

    /// The next request gets `status` with `body` instead of its answer.
    pub fn fail_next(&self, status: u16, body: Value) {
        self.inner.lock().unwrap().fail_next = Some((status, body));
    }
}

type Answer = (StatusCode, Json<Value>);

fn jira_error(status: StatusCode, messages: &[&str], errors: Value) -> Answer {
    (status, Json(json!({"errorMessages": messages, "errors": errors})))
}

/// Authentication first, then any injected failure.
fn gate(shared: &Shared, headers: &HeaderMap) -> Result<(), Answer> {
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    if given != Some(shared.authorization.as_str()) {
        return Err(jira_error(StatusCode::UNAUTHORIZED, &["You are not authenticated."], json!({})));
    }
    if let Some((status, body)) = shared.inner.lock().unwrap().fail_next.take() {
        return Err((StatusCode::from_u16(status).unwrap(), Json(body)));
    }
    Ok(())
}

async fn create(State(shared): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Answer {
    if let Err(answer) = gate(&shared, &headers) {
        return answer;
    }
    let fields = &body["fields"];
    let text = |pointer: &str| fields.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
    let (Some(project), Some(issue_type), Some(summary)) =
        (text("/project/key"), text("/issuetype/name"), text("/summary"))
    else {
        return jira_error(StatusCode::BAD_REQUEST, &[], json!({"project": "project is required"}));
    };
    let mut inner = shared.inner.lock().unwrap();
    let key = format!("{project}-{}", inner.issues.len() + 1);
    let description = text("/description").unwrap_or_default();
    let issue =
        Issue { key: key.clone(), project, issue_type, summary, description, status: "Open".into(), comments: vec![] };
    inner.issues.push(issue);
    (StatusCode::CREATED, Json(json!({"id": "10001", "key": key, "self": "stand-in"})))
}

async fn status(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer {
    if let Err(answer) = gate(&shared, &headers) {
        return answer;
    }
    assert_eq!(query.get("fields").map(String::as_str), Some("status"), "only the status is asked for");
    let inner = shared.inner.lock().unwrap();
    match inner.issues.iter().find(|i| i.key == key) {
        Some(issue) => (StatusCode::OK, Json(json!({"key": key, "fields": {"status": {"name": issue.status}}}))),
        None => jira_error(StatusCode::NOT_FOUND, &["Issue Does Not Exist"], json!({})),
    }
}

async fn comment(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Json(body): Json<Value>,
) -> Answer {
    if let Err(answer) = gate(&shared, &headers) {
        return answer;
    }
    let mut inner = shared.inner.lock().unwrap();
    let Some(issue) = inner.issues.iter_mut().find(|i| i.key == key) else {
        return jira_error(StatusCode::NOT_FOUND, &["Issue Does Not Exist"], json!({}));
    };
    let Some(text) = body["body"].as_str() else {
        return jira_error(StatusCode::BAD_REQUEST, &[], json!({"comment": "Comment body can not be empty!"}));
    };
    issue.comments.push(text.to_owned());
    (StatusCode::CREATED, Json(json!({"id": "20001", "body": text})))
}
