//! The SSRF guard end to end: refused destinations get no request.
//! Only loopback addresses are ever targeted here; the other internal
//! ranges are covered by `address_allowed` without any traffic.
#![allow(clippy::unwrap_used)]

mod receiver;

use receiver::stage_passed;
use tollgate_watchers::{HandlerError, Watcher};
use tollgate_webhook_watcher::{address_allowed, Config, Rule, WebhookWatcher};

fn config(url: String, allow_private: bool) -> Config {
    let mut config = Config::new(vec![Rule::new(url)]);
    config.allow_http = true;
    config.allow_private = allow_private;
    config
}

async fn send(url: String, allow_private: bool) -> Result<(), HandlerError> {
    let watcher = WebhookWatcher::new("guarded", config(url, allow_private)).unwrap();
    watcher.handle(&stage_passed("01HZX0000000000000000000K1")).await
}

fn assert_refused(result: Result<(), HandlerError>, host: &str) {
    let err = result.unwrap_err();
    assert!(matches!(err, HandlerError::Permanent(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("rules[0]") && text.contains(host) && text.contains("loopback"), "{text}");
}

#[tokio::test]
async fn loopback_is_refused_unless_private_addresses_are_allowed() {
    let receiver = receiver::start().await;
    assert_refused(send(receiver.url("/hook"), false).await, "127.0.0.1");
    assert!(receiver.requests().is_empty());

    send(receiver.url("/hook"), true).await.unwrap();
    assert_eq!(receiver.paths(), ["/hook"]);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused() {
    let receiver = receiver::start().await;
    let url = format!("http://localhost:{}/by-name", receiver.port);
    assert_refused(send(url.clone(), false).await, "localhost");
    assert!(receiver.requests().is_empty());

    send(url, true).await.unwrap();
    assert_eq!(receiver.paths(), ["/by-name"]);
}

#[tokio::test]
async fn ipv6_loopback_forms_are_refused() {
    let receiver = receiver::start().await;
    for host in ["[::1]", "[::ffff:127.0.0.1]", "[::127.0.0.1]"] {
        let url = format!("http://{host}:{}/v6", receiver.port);
        let err = send(url, false).await.unwrap_err();
        assert!(matches!(err, HandlerError::Permanent(_)), "{host}: {err}");
        assert!(err.to_string().contains("refused"), "{host}: {err}");
    }
    assert!(receiver.requests().is_empty());
}

#[tokio::test]
async fn a_rendered_host_is_checked_too() {
    let receiver = receiver::start().await;
    let config = config(format!("http://{{{{ data.host }}}}:{}/rendered", receiver.port), false);
    let watcher = WebhookWatcher::new("guarded", config).unwrap();
    let mut event = stage_passed("01HZX0000000000000000000K2");
    event.data["host"] = "127.0.0.1".into();
    let err = watcher.handle(&event).await.unwrap_err();
    assert!(matches!(err, HandlerError::Permanent(_)), "{err}");
    assert!(receiver.requests().is_empty());
}

#[test]
fn internal_ranges_are_refused() {
    for ip in
        ["10.1.2.3", "172.20.0.1", "192.168.0.10", "169.254.169.254", "100.100.100.200", "::1", "fd00::1", "fe80::1"]
    {
        assert!(!address_allowed(ip.parse().unwrap(), false), "{ip}");
    }
    assert!(!address_allowed("::ffff:127.0.0.1".parse().unwrap(), false));
    assert!(address_allowed("93.184.216.34".parse().unwrap(), false));
}
