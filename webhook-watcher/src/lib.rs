//! Webhook watcher: templated, HMAC-signed HTTP calls on events, behind an SSRF guard.
//!
//! Each rule maps a [`Filter`] to one HTTP request whose URL, header
//! values and body are [minijinja](https://docs.rs/minijinja) templates
//! over the event. Every matching rule sends one request per event.
//!
//! ```toml
//! [watchers.notify]
//! kind = "webhook"
//! secret_env = "WEBHOOK_SECRET"     # the HMAC key's environment variable
//! timeout_ms = 10000
//!
//! [[watchers.notify.rules]]
//! filter = { types = ["StagePassed"], stage = "release" }
//! url = "https://hooks.example.com/released?unit={{ unit_key | urlencode }}"
//! headers = { "X-Stage" = "{{ stage }}" }
//! body = '{"text": {{ ("released " ~ unit_key) | tojson }}, "gates": {{ gates | tojson }}}'
//!
//! [[watchers.notify.rules]]          # no body: the whole event as JSON
//! method = "PUT"
//! url = "https://audit.example.com/events/{{ id }}"
//! ```
//!
//! # Templates
//! They see `id`, `source`, `type` (CloudEvents type), `event_type`
//! (`StagePassed`), `subject`, `time`, `position`, `stream`,
//! `stream_version`, `schema_version`, `unit_key`, `stage`, `gates`,
//! `data`, `hash` and `traceparent` (absent values are `none`). Filters:
//! minijinja's builtins plus `tojson`, `urlencode` (for query values;
//! keeps `/`) and `urlencode_component` (for a path segment; encodes
//! `/`). Undefined values are errors, so a typo fails the delivery
//! (permanently, naming the rule and template) instead of sending blanks.
//! Nothing is HTML-escaped. The URL's scheme must be written out.
//!
//! # Requests
//! Headers: `Content-Type: application/json` (unless the rule sets one),
//! `X-Tollgate-Event-Id`, `X-Tollgate-Event-Type`, `traceparent` when the
//! event has one, and with a secret `X-Tollgate-Timestamp` (unix seconds)
//! and `X-Tollgate-Signature: sha256=<hex>`. Redirects are not followed
//! (a 3xx fails). At most `max_response_bytes` of an answer is read.
//! 2xx succeeds; timeouts, connection failures, 429 and 5xx are retried;
//! other answers, refused destinations and template errors go to the
//! dead-letter topic.
//!
//! Delivery is at least once: an event can be sent again after a restart
//! or a retry, so receivers dedupe on `X-Tollgate-Event-Id`.
//!
//! # Verifying a request (receiver side)
//! 1. Take `t = X-Tollgate-Timestamp` and the raw body bytes, unparsed.
//! 2. Compute `hex(HMAC-SHA256(key = secret, message = t + "." + body))`.
//! 3. Compare it with `X-Tollgate-Signature` minus its `sha256=` prefix,
//!    in constant time; reject on mismatch.
//! 4. Reject when `t` is more than five minutes from your clock: the
//!    timestamp is inside the MAC, so an old request cannot be replayed
//!    with a new one.
//! 5. Dedupe on `X-Tollgate-Event-Id`.
//!
//! [`sign`] is that computation.
//!
//! # SSRF guard
//! Only https unless `allow_http`. Every host is resolved and EVERY
//! address checked; loopback, private, link-local, CGNAT, unique-local
//! (and their IPv4-mapped, compatible, NAT64 and 6to4 forms) are refused
//! unless `allow_private`; unspecified, multicast, broadcast and reserved
//! addresses always. The client then connects only to the addresses it
//! checked, never through a proxy from the environment.

mod config;
mod deliver;
mod delivered;
mod error;
mod guard;
mod rules;
mod sign;
mod template;

pub use config::{Config, Rule};
pub use error::DeliveryError;
pub use guard::{address_allowed, AddressRefused};
pub use sign::{sign, EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
pub use template::{event_json, template_context};

use deliver::{Secret, Sender};
use delivered::Delivered;
use guard::GuardedResolver;
use rules::CompiledRule;
use std::sync::Arc;
use std::time::Duration;
use template::Templates;
use tollgate_watchers::{async_trait, secret_from_env, ConfigError, Filter, HandlerError, TollgateEvent, Watcher};

/// Sends the configured requests for each event.
#[derive(Debug)]
pub struct WebhookWatcher {
    name: String,
    filter: Filter,
    rules: Vec<CompiledRule>,
    templates: Templates,
    sender: Sender,
    delivered: Delivered,
}

impl WebhookWatcher {
    /// Checks `config`, compiles its templates and reads the secret from
    /// the environment variable `secret_env` names.
    pub fn new(name: &str, config: Config) -> Result<WebhookWatcher, ConfigError> {
        let mut templates = Templates::new();
        let rules = rules::compile(&config, &mut templates)?;
        let secret = match &config.secret_env {
            Some(var) => Some(Secret(secret_from_env("secret_env", var)?.into_bytes())),
            None => None,
        };
        let timeout = Duration::from_millis(config.timeout_ms);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_private: config.allow_private }))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve and connect for us, past the guard.
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("tollgate-webhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::new("timeout_ms", format!("cannot build the HTTP client: {e}")))?;
        let sender = Sender {
            client,
            allow_http: config.allow_http,
            allow_private: config.allow_private,
            max_response_bytes: config.max_response_bytes,
            secret,
        };
        Ok(WebhookWatcher {
            name: name.to_owned(),
            filter: Filter::all(),
            rules,
            templates,
            sender,
            delivered: Delivered::default(),
        })
    }
}

#[async_trait]
impl Watcher for WebhookWatcher {
    fn name(&self) -> &str {
        &self.name
    }

    /// Everything: each rule filters for itself.
    fn filter(&self) -> &Filter {
        &self.filter
    }

    #[tracing::instrument(skip_all, fields(watcher = %self.name, event_id = %event.id))]
    async fn handle(&self, event: &TollgateEvent) -> Result<(), HandlerError> {
        let context = template_context(event);
        let mut failures = Vec::new();
        for rule in self.rules.iter().filter(|rule| rule.filter.matches(event)) {
            if self.delivered.contains(&event.id, rule.index) {
                continue;
            }
            let label = format!("webhook {} {}", self.name, rule.path());
            match self.sender.deliver(&label, rule, &self.templates, event, &context).await {
                Ok(()) => self.delivered.insert(&event.id, rule.index),
                Err(e) => {
                    tracing::warn!(error = %e, retryable = e.is_retryable(), "webhook delivery failed");
                    failures.push(e);
                }
            }
        }
        // Retry if any failure may pass later; the rules that succeeded are
        // remembered and not called again.
        match failures.iter().position(DeliveryError::is_retryable) {
            Some(i) => Err(HandlerError::retryable(failures.swap_remove(i))),
            None if !failures.is_empty() => Err(HandlerError::permanent(failures.swap_remove(0))),
            None => Ok(()),
        }
    }
}
