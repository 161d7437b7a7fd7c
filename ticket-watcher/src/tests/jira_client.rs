//! The Jira client against the stand-in: the three calls, the auth
//! header, and how Jira's errors are classified.

use super::stand_in::JiraStandIn;
use super::*;
use crate::jira::{error_detail, JiraClient, JiraError};
use tollgate_watchers::HandlerError;

fn client(url: &str, auth: Value) -> JiraClient {
    let dir = tempfile::tempdir().unwrap();
    JiraClient::new(&config(url, auth, dir.path()).jira).unwrap()
}

#[tokio::test]
async fn creates_reads_and_comments_with_basic_auth() {
    let (auth, header) = basic_auth("jira-bot", "api-token-1");
    let jira = JiraStandIn::start(&header).await;
    let client = client(&jira.url, auth);

    let key = client.create_issue("scan failed for a@1-1/x/rpm", "details").await.unwrap();
    assert_eq!(key, "SEC-1");
    let issue = &jira.issues()[0];
    assert_eq!((issue.project.as_str(), issue.issue_type.as_str()), ("SEC", "Bug"));
    assert_eq!(issue.summary, "scan failed for a@1-1/x/rpm");
    assert_eq!(issue.description, "details");

    assert_eq!(client.status("SEC-1").await.unwrap(), "Open");
    jira.set_status("SEC-1", "Approved");
    assert_eq!(client.status("SEC-1").await.unwrap(), "Approved");

    client.comment("SEC-1", "looked at it").await.unwrap();
    assert_eq!(jira.issues()[0].comments, ["looked at it"]);
    assert_eq!(client.browse_url("SEC-1"), format!("{}/browse/SEC-1", jira.url));
}

#[tokio::test]
async fn a_bearer_token_is_sent_and_a_wrong_one_is_refused_without_being_echoed() {
    let token = env_var("pat-right-0042");
    let jira = JiraStandIn::start("Bearer pat-right-0042").await;
    let good = client(&jira.url, json!({"token_env": token}));
    assert_eq!(good.create_issue("s", "d").await.unwrap(), "SEC-1");

    let wrong = client(&jira.url, json!({"token_env": env_var("pat-wrong-0043")}));
    let error = wrong.status("SEC-1").await.unwrap_err();
    assert!(!error.is_retryable());
    let message = error.to_string();
    assert!(message.contains("(401): You are not authenticated."), "{message}");
    assert!(!message.contains("pat-wrong-0043"), "{message}");
    let debug = format!("{wrong:?}");
    assert!(!debug.contains("pat-wrong-0043"), "{debug}");
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retryable_refusals_are_permanent() {
    let (auth, header) = basic_auth("jira-bot", "api-token-2");
    let jira = JiraStandIn::start(&header).await;
    let client = client(&jira.url, auth);

    jira.fail_next(503, json!({"errorMessages": ["maintenance"], "errors": {}}));
    let error = client.create_issue("s", "d").await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(matches!(HandlerError::from(error), HandlerError::Retryable(_)));

    jira.fail_next(429, json!({}));
    assert!(client.create_issue("s", "d").await.unwrap_err().is_retryable());

    jira.fail_next(
        400,
        json!({"errorMessages": ["Field 'labels' cannot be set."], "errors": {"issuetype": "The issue type selected is invalid."}}),
    );
    let error = client.create_issue("s", "d").await.unwrap_err();
    assert!(!error.is_retryable());
    let message = error.to_string();
    assert!(
        message.ends_with("(400): Field 'labels' cannot be set.; issuetype: The issue type selected is invalid."),
        "{message}"
    );
    assert!(matches!(HandlerError::from(error), HandlerError::Permanent(_)));

    let missing = client.status("SEC-99").await.unwrap_err();
    assert!(!missing.is_retryable());
    assert!(missing.to_string().contains("Issue Does Not Exist"), "{missing}");
    assert!(jira.issues().is_empty(), "no refused create left an issue behind");
}

#[tokio::test]
async fn an_unreachable_jira_is_retryable_and_a_malformed_key_is_never_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (auth, _) = basic_auth("jira-bot", "api-token-3");
    let client = client(&url, auth);
    let error = client.status("SEC-1").await.unwrap_err();
    assert!(matches!(error, JiraError::Transport { .. }), "{error}");
    assert!(error.is_retryable());

    let bad = client.comment("SEC-1/../../admin", "x").await.unwrap_err();
    assert!(matches!(bad, JiraError::BadKey { .. }), "{bad}");
    assert!(!bad.is_retryable());
}

#[test]
fn error_details_join_messages_and_field_errors_or_fall_back_to_the_body() {
    let body = r#"{"errorMessages":["a","b"],"errors":{"summary":"required"}}"#;
    assert_eq!(error_detail(body), "a; b; summary: required");
    assert_eq!(error_detail("<html>proxy error</html>"), "<html>proxy error</html>");
    assert_eq!(error_detail(r#"{"errorMessages":[],"errors":{}}"#), r#"{"errorMessages":[],"errors":{}}"#);
}
