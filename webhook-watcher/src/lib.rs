//! Webhook watcher: templated, HMAC-signed HTTP calls on events, behind an SSRF guard.
