//! GraphQL at `/graphql`: a unit with everything about it, units and
//! receipts filtered and paged by cursor, gates, stages and raw events,
//! the limits, the roles, one query per kind of list however many units
//! (no N+1), and the self-contained explorer page.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;

use helpers::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn gql(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let response = app.post("/graphql", token, &json!({"query": query, "variables": variables})).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The data of `query` once `done` holds on it: the projector fills the
/// read models after the log commits, so the test asks until a deadline.
async fn eventually(app: &TestApp, query: &str, variables: Value, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = gql(app, &app.reader, query, variables.clone()).await;
        assert!(answer.get("errors").is_none(), "{answer}");
        if done(&answer["data"]) {
            return answer["data"].clone();
        }
        assert!(Instant::now() < deadline, "read models never showed what was expected: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first error message of an answer.
fn error(answer: &Value) -> String {
    answer["errors"][0]["message"].as_str().unwrap_or_else(|| panic!("an error in {answer}")).to_owned()
}

fn len(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

async fn submit_for(app: &TestApp, unit: &str, gate: &str, action: &str, pass: bool) {
    let body = json!({"unit": unit, "gate": gate, "action": action, "multipass": pass});
    assert_eq!(app.post("/v1/receipts", &app.submitter, &body).await.status(), 201, "{body}");
}

const UNIT_QUERY: &str = "query($key: String!, $after: String) { unit(key: $key) {
    key name version release platform package
    stages { name passed position updatedAt } gates { name passed }
    receipts(first: 2, after: $after) { edges { cursor node { gate action multipass producer custom revoked } }
                                        pageInfo { hasNextPage endCursor } }
    timeline { position eventType summary } } }";

#[tokio::test]
async fn a_unit_shows_its_stages_gates_receipts_and_timeline() {
    let app = spawn_app().await;
    app.define_release().await;
    app.submit("build", "compile", true).await;
    app.submit("build", "package", true).await;
    app.submit("test", "unit-tests", true).await;

    // By package URL: the same unit as its canonical key.
    let vars = json!({"key": "pkg:rpm/acme/openssl@3.0.13-1?arch=x86_64"});
    let data = eventually(&app, UNIT_QUERY, vars.clone(), |d| {
        d["unit"]["stages"][0]["passed"] == true
            && d["unit"]["timeline"].as_array().is_some_and(|t| t.iter().any(|e| e["eventType"] == "StagePassed"))
    })
    .await;
    let unit = &data["unit"];
    assert_eq!(unit["key"], UNIT);
    let parts = [&unit["name"], &unit["version"], &unit["release"], &unit["platform"], &unit["package"]];
    assert_eq!(parts, ["openssl", "3.0.13", "1", "x86_64", "rpm"]);
    assert_eq!(unit["stages"][0]["name"], "release");
    assert_eq!(unit["gates"], json!([{"name": "build", "passed": true}, {"name": "test", "passed": true}]));
    let types: Vec<&str> =
        unit["timeline"].as_array().unwrap().iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    let expected =
        ["ReceiptSubmitted", "ReceiptSubmitted", "GatePassed", "ReceiptSubmitted", "GatePassed", "StagePassed"];
    assert_eq!(types, expected);

    // The unit's receipts, two per page.
    let page = &unit["receipts"];
    let node = &page["edges"][0]["node"];
    assert_eq!(
        (&node["gate"], &node["action"], &node["producer"]),
        (&json!("build"), &json!("compile"), &json!("ci-build"))
    );
    assert_eq!((len(&page["edges"]), &page["pageInfo"]["hasNextPage"]), (2, &json!(true)));
    let vars = json!({"key": UNIT, "after": page["pageInfo"]["endCursor"]});
    let rest = gql(&app, &app.reader, UNIT_QUERY, vars).await;
    let rest = &rest["data"]["unit"]["receipts"];
    assert_eq!((len(&rest["edges"]), &rest["pageInfo"]["hasNextPage"]), (1, &json!(false)));
    assert_eq!(rest["edges"][0]["node"]["action"], "unit-tests");

    let unknown = gql(&app, &app.reader, UNIT_QUERY, json!({"key": "zlib@1.3-1/x86_64/rpm"})).await;
    assert_eq!(unknown["data"]["unit"], Value::Null);
    let malformed = gql(&app, &app.reader, UNIT_QUERY, json!({"key": "no-version"})).await;
    assert!(error(&malformed).starts_with("argument `key`:"), "{malformed}");
}

fn lib(i: usize) -> String {
    format!("lib{i}@1.{i}-1/x86_64/rpm")
}

/// Every key (or position) of a connection, walked `first` at a time.
async fn walk(app: &TestApp, field: &str, args: &str, first: usize, select: &str) -> (Vec<Value>, usize) {
    let query = format!(
        "query($after: String) {{ {field}({args} first: {first}, after: $after) {{
            edges {{ node {{ {select} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    );
    let (mut items, mut pages, mut after) = (Vec::new(), 0, Value::Null);
    loop {
        let answer = gql(app, &app.reader, &query, json!({"after": after})).await;
        let connection = &answer["data"][field];
        assert!(len(&connection["edges"]) <= first, "{answer}");
        items.extend(connection["edges"].as_array().unwrap().iter().map(|e| e["node"][select].clone()));
        pages += 1;
        if connection["pageInfo"]["hasNextPage"] != true {
            return (items, pages);
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn units_and_receipts_are_filtered_and_paged_by_cursor() {
    let app = spawn_app().await;
    app.define_release().await;
    for i in 0..5 {
        submit_for(&app, &lib(i), "build", "compile", true).await;
    }
    for i in 0..2 {
        submit_for(&app, &lib(i), "build", "package", true).await;
        submit_for(&app, &lib(i), "test", "unit-tests", true).await;
    }
    submit_for(&app, &lib(4), "test", "unit-tests", false).await;
    let all = "{ units(first: 100) { edges { node { key } } }
                 released: units(filter: {stagePassed: \"release\"}, first: 100) { edges { node { key } } }
                 receipts(first: 100) { edges { node { position } } } }";
    let data = eventually(&app, all, json!({}), |d| {
        len(&d["units"]["edges"]) == 5 && len(&d["released"]["edges"]) == 2 && len(&d["receipts"]["edges"]) == 10
    })
    .await;
    let released: Vec<&Value> =
        data["released"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]["key"]).collect();
    assert_eq!(released, [&json!(lib(0)), &json!(lib(1))]);

    let (keys, pages) = walk(&app, "units", "", 2, "key").await;
    assert_eq!((keys, pages), ((0..5).map(|i| json!(lib(i))).collect(), 3));
    let (positions, pages) = walk(&app, "receipts", "filter: {gate: \"build\"},", 3, "position").await;
    assert_eq!((positions.len(), pages), (7, 3));
    assert!(positions.windows(2).all(|w| w[0].as_u64() < w[1].as_u64()), "{positions:?}");

    let count = |filter: &'static str| {
        let app = &app;
        async move {
            let query = format!("{{ receipts(filter: {filter}, first: 100) {{ edges {{ node {{ unitKey }} }} }} }}");
            let answer = gql(app, &app.reader, &query, json!({})).await;
            assert!(answer.get("errors").is_none(), "{answer}");
            len(&answer["data"]["receipts"]["edges"])
        }
    };
    assert_eq!(count("{multipass: false, unit: \"lib4@1.4-1/x86_64/rpm\", action: \"unit-tests\"}").await, 1);
    assert_eq!(count("{unit: \"lib2@1.2-1/x86_64/rpm\"}").await, 1);
    assert_eq!(count("{producer: \"ci-build\", revoked: false}").await, 10);
    assert_eq!(count("{submittedFrom: \"2999-01-01T00:00:00Z\"}").await, 0);
    assert_eq!(
        count("{submittedFrom: \"2000-01-01T02:00:00+02:00\", submittedBefore: \"2999-01-01T00:00:00Z\"}").await,
        10
    );
    let named =
        gql(&app, &app.reader, "{ units(filter: {name: \"lib3\"}) { edges { node { key } } } }", json!({})).await;
    assert_eq!(named["data"]["units"]["edges"][0]["node"]["key"], lib(3));

    let bad = gql(&app, &app.reader, "{ units(after: \"garbage\") { edges { cursor } } }", json!({})).await;
    assert_eq!(error(&bad), "argument `after`: not a cursor this list gave out");
    // A receipt's cursor is no unit cursor.
    let query = "query($after: String) { units(after: $after) { edges { cursor } } }";
    let first = gql(&app, &app.reader, "{ receipts(first: 1) { pageInfo { endCursor } } }", json!({})).await;
    let mixed =
        gql(&app, &app.reader, query, json!({"after": first["data"]["receipts"]["pageInfo"]["endCursor"]})).await;
    assert!(error(&mixed).starts_with("argument `after`"), "{mixed}");
    let when =
        gql(&app, &app.reader, "{ receipts(filter: {submittedFrom: \"yesterday\"}) { edges { cursor } } }", json!({}))
            .await;
    assert_eq!(error(&when), "argument `filter.submittedFrom` must be an RFC 3339 date-time");
}

#[tokio::test]
async fn gates_stages_and_events_by_position() {
    let app = spawn_app().await;
    app.define_release().await;
    let query = "{ gates { name enabled definition } stages { name enabled definition position } }";
    let data = eventually(&app, query, json!({}), |d| len(&d["gates"]) == 2 && len(&d["stages"]) == 1).await;
    assert_eq!((&data["gates"][0]["name"], &data["gates"][1]["name"]), (&json!("build"), &json!("test")));
    assert_eq!(data["gates"][0]["enabled"], true);
    assert_eq!(data["gates"][0]["definition"]["required_actions"], json!(["compile", "package"]));
    assert_eq!((&data["stages"][0]["name"], &data["stages"][0]["position"]), (&json!("release"), &json!(3)));
    assert_eq!(data["stages"][0]["definition"]["gates"], json!(["build", "test"]));

    let events = "query($from: Int!, $to: Int!) { events(from: $from, to: $to) {
        position stream type schemaVersion data metadata recordedAt prevHash hash keyId signature } }";
    // Raw events are the auditor's, as the audit stream is.
    let refused = gql(&app, &app.reader, events, json!({"from": 1, "to": 3})).await;
    assert!(error(&refused).contains("needs the auditor role"), "{refused}");
    let answer = gql(&app, &app.auditor, events, json!({"from": 1, "to": 3})).await;
    let list = answer["data"]["events"].as_array().unwrap();
    let types: Vec<&Value> = list.iter().map(|e| &e["type"]).collect();
    assert_eq!(types, [&json!("GateDefined"), &json!("GateDefined"), &json!("StageDefined")]);
    assert_eq!(list[0]["prevHash"], "0".repeat(64));
    assert_eq!(list[1]["prevHash"], list[0]["hash"]);
    assert_eq!(list[2]["data"]["gates"], json!(["build", "test"]));
    assert!(list.iter().all(|e| e["signature"].as_str().is_some_and(|s| !s.is_empty()) && e["keyId"].is_string()));

    // A range past the head holds what exists; the widest range is 1000.
    let answer = gql(&app, &app.auditor, events, json!({"from": 2, "to": 1001})).await;
    assert_eq!(len(&answer["data"]["events"]), 2, "{answer}");
    for (from, to) in [(0, 5), (5, 4), (1, 1001)] {
        let refused = gql(&app, &app.auditor, events, json!({"from": from, "to": to})).await;
        let message = error(&refused);
        assert!(message.contains("1 <= from <= to < from + 1000"), "{message}");
    }
}

#[tokio::test]
async fn depth_complexity_and_page_size_are_limited() {
    let app = spawn_app().await;
    let nested = |levels: usize| {
        format!(
            "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
            "ofType {".repeat(levels),
            "}".repeat(levels)
        )
    };
    // Depth 12 (what standard introspection needs) passes, 13 does not.
    let deepest = gql(&app, &app.reader, &nested(7), json!({})).await;
    assert!(deepest.get("errors").is_none(), "{deepest}");
    let too_deep = gql(&app, &app.reader, &nested(8), json!({})).await;
    assert_eq!((error(&too_deep), &too_deep["data"]), ("Query is nested too deep.".into(), &Value::Null));

    let costly = "{ units(first: 100) { edges { node { receipts(first: 100) { edges { node { gate } } } } } } }";
    let refused = gql(&app, &app.reader, costly, json!({})).await;
    assert_eq!(error(&refused), "Query is too complex.");
    let affordable = "{ units(first: 10) { edges { node { receipts(first: 10) { edges { node { gate } } } } } } }";
    assert!(gql(&app, &app.reader, affordable, json!({})).await.get("errors").is_none());

    let oversized = gql(&app, &app.reader, "{ receipts(first: 101) { edges { cursor } } }", json!({})).await;
    assert_eq!(error(&oversized), "argument `first` must be between 1 and 100, not 101");
}

#[tokio::test]
async fn every_field_needs_the_reader_role_and_every_request_a_token() {
    let app = spawn_app().await;
    let body = json!({"query": "{ gates { name } }"});
    let anonymous = app.http.post(format!("{}/graphql", app.url)).json(&body).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["content-type"], "application/problem+json");
    assert_eq!(app.post("/graphql", "not-a-token", &body).await.status(), 401);

    let submitter = gql(&app, &app.submitter, "{ gates { name } unit(key: \"a@1-1/x/rpm\") { key } }", json!({})).await;
    assert_eq!(submitter["data"], Value::Null);
    let errors = submitter["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    for e in errors {
        assert_eq!(e["message"], "forbidden: this field needs the reader role");
        assert_eq!(e["extensions"]["code"], "FORBIDDEN");
    }

    for token in [&app.reader, &app.admin] {
        let answer = gql(&app, token, "{ gates { name } }", json!({})).await;
        assert_eq!(answer, json!({"data": {"gates": []}}));
    }
}

/// `tollgate_readmodel_queries_total` from `/metrics`.
async fn queries_run(app: &TestApp) -> u64 {
    let text = app.get("/metrics", &app.reader).await.text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("tollgate_readmodel_queries_total ")).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

const EVERYTHING: &str = "query($first: Int!) { units(first: $first) { edges { node {
    key stages { name passed } gates { name passed }
    receipts(first: 5) { edges { node { gate action } } } timeline { eventType } } } } }";

#[tokio::test]
async fn a_page_of_units_costs_one_query_per_kind_of_list() {
    let app = spawn_app().await;
    let gate = json!({"name": "scan", "required_actions": ["cve"]});
    assert_eq!(app.post("/v1/gates", &app.admin, &gate).await.status(), 201);
    let stage = json!({"name": "ship", "gates": ["scan"]});
    assert_eq!(app.post("/v1/stages", &app.admin, &stage).await.status(), 201);
    for i in 0..20 {
        submit_for(&app, &lib(i), "scan", "cve", true).await;
    }
    // Every unit complete: one stage, one gate, one receipt, three events.
    let complete = |u: &Value| {
        len(&u["node"]["stages"]) == 1
            && len(&u["node"]["gates"]) == 1
            && len(&u["node"]["receipts"]["edges"]) == 1
            && len(&u["node"]["timeline"]) == 3
    };
    eventually(&app, EVERYTHING, json!({"first": 20}), |d| {
        d["units"]["edges"].as_array().is_some_and(|units| units.len() == 20 && units.iter().all(complete))
    })
    .await;

    // One query for the units, one per loader (stages, gates, receipts,
    // timeline): five for 5 units as for 20. A loader's batch may be split
    // once by a busy machine's scheduling (its window is 1 ms), never into
    // one query per unit (which would be 21 for 5 units, 81 for 20).
    for first in [5, 20] {
        let before = queries_run(&app).await;
        let answer = gql(&app, &app.reader, EVERYTHING, json!({"first": first})).await;
        let spent = queries_run(&app).await - before;
        let units = answer["data"]["units"]["edges"].as_array().unwrap();
        assert_eq!(units.len(), first);
        assert!(units.iter().all(complete), "{answer}");
        assert!((5..=9).contains(&spent), "{first} units cost {spent} queries");
    }
}

#[tokio::test]
async fn the_explorer_page_is_self_contained_and_its_schema_query_is_allowed() {
    let app = spawn_app().await;
    let page = app.http.get(format!("{}/graphql", app.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
    let html = page.text().await.unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "the page must load nothing from elsewhere");
    for part in ["id=\"token\"", "sessionStorage", "id=\"query\"", "id=\"variables\"", "id=\"run\"", "id=\"schema\""] {
        assert!(html.contains(part), "{part} missing from the explorer");
    }

    // The schema browser's introspection query fits the limits.
    let introspection = html.split("const INTROSPECTION = `").nth(1).unwrap().split('`').next().unwrap();
    let answer = gql(&app, &app.reader, introspection, json!({})).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let types = answer["data"]["__schema"]["types"].as_array().unwrap();
    for name in ["Query", "Unit", "Receipt", "ReceiptConnection", "Event", "ReceiptsFilter"] {
        assert!(types.iter().any(|t| t["name"] == name), "{name} missing from the schema");
    }
}
