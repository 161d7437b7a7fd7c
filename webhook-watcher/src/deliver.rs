//! Sends one rule's request and judges the answer.

use crate::error::DeliveryError;
use crate::guard::{check_literal_host, AddressRefused};
use crate::rules::CompiledRule;
use crate::sign::{sign, EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::template::{event_json, Templates};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Client, Response, Url};
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};
use tollgate_watchers::TollgateEvent;

/// How much of an error response's body goes into the message.
const DETAIL_CHARS: usize = 200;

/// The HMAC key; never printed.
pub(crate) struct Secret(pub(crate) Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The client and the settings every request shares.
#[derive(Debug)]
pub(crate) struct Sender {
    pub(crate) client: Client,
    pub(crate) allow_http: bool,
    pub(crate) allow_private: bool,
    pub(crate) max_response_bytes: usize,
    pub(crate) secret: Option<Secret>,
}

impl Sender {
    /// Renders `rule` for `event`, sends it and judges the answer.
    pub(crate) async fn deliver(
        &self,
        label: &str,
        rule: &CompiledRule,
        templates: &Templates,
        event: &TollgateEvent,
        context: &Value,
    ) -> Result<(), DeliveryError> {
        let template_error = |reason: String| DeliveryError::Template { rule: label.to_owned(), reason };
        let rendered = templates.render(&rule.url_field(), context).map_err(template_error)?;
        let url = Url::parse(rendered.trim()).map_err(|e| DeliveryError::Invalid {
            rule: label.to_owned(),
            host: "?".to_owned(),
            reason: format!("{} renders to no URL: {e}", rule.url_field()),
        })?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let invalid = |reason: String| DeliveryError::Invalid { rule: label.to_owned(), host: host.clone(), reason };
        self.check_destination(&url).map_err(&invalid)?;
        check_literal_host(&host, self.allow_private)
            .map_err(|source| DeliveryError::Refused { rule: label.to_owned(), source })?;

        let body = match rule.has_body {
            true => templates.render(&rule.body_field(), context).map_err(template_error)?.into_bytes(),
            false => event_json(event).to_string().into_bytes(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, field) in &rule.headers {
            let value = templates.render(field, context).map_err(template_error)?;
            let value = HeaderValue::from_str(&value)
                .map_err(|_| invalid(format!("{field} renders to an invalid header value")))?;
            headers.insert(name.clone(), value);
        }
        self.add_tollgate_headers(&mut headers, event, &body).map_err(invalid)?;

        let request = self.client.request(rule.method.clone(), url).headers(headers).body(body);
        let response = request.send().await.map_err(|e| transport_error(label, &host, e))?;
        judge(label, &host, response, self.max_response_bytes).await
    }

    fn check_destination(&self, url: &Url) -> Result<(), String> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            other => return Err(format!("scheme {other} is refused")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("the URL has no host".to_owned());
        }
        Ok(())
    }

    fn add_tollgate_headers(&self, headers: &mut HeaderMap, event: &TollgateEvent, body: &[u8]) -> Result<(), String> {
        let value = |text: &str, what: &str| {
            HeaderValue::from_str(text).map_err(|_| format!("the event's {what} is not a header value"))
        };
        headers.insert(EVENT_ID_HEADER, value(&event.id, "id")?);
        headers.insert(EVENT_TYPE_HEADER, value(&event.event_type, "event type")?);
        // A malformed trace context is dropped rather than failing the call.
        if let Some(traceparent) = event.traceparent.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
            headers.insert("traceparent", traceparent);
        }
        if let Some(secret) = &self.secret {
            let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
            headers.insert(TIMESTAMP_HEADER, HeaderValue::from(timestamp));
            headers.insert(SIGNATURE_HEADER, value(&sign(&secret.0, timestamp, body), "signature")?);
        }
        Ok(())
    }
}

/// 2xx passes; anything else becomes a [`DeliveryError::Status`].
async fn judge(label: &str, host: &str, response: Response, cap: usize) -> Result<(), DeliveryError> {
    let status = response.status();
    let body = read_capped(response, cap).await;
    if status.is_success() {
        // The receiver has accepted; a body cut short changes nothing.
        if let Err(e) = body {
            tracing::debug!(host, error = %chain(e), "reading the accepted response failed");
        }
        return Ok(());
    }
    let detail = match body {
        Ok(bytes) if !bytes.is_empty() => format!(": {}", snippet(&bytes)),
        _ => String::new(),
    };
    Err(DeliveryError::Status { rule: label.to_owned(), host: host.to_owned(), status: status.as_u16(), detail })
}

/// At most `cap` bytes of the body; the rest is never read (the
/// connection is dropped with it), so a huge answer costs nothing.
pub(crate) async fn read_capped(mut response: Response, cap: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The start of a response body, on one line.
fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(DETAIL_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Maps a client error; a refusal from the resolver stays a refusal.
fn transport_error(label: &str, host: &str, error: reqwest::Error) -> DeliveryError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<AddressRefused>() {
            return DeliveryError::Refused { rule: label.to_owned(), source: refused.clone() };
        }
        source = e.source();
    }
    let builder = error.is_builder();
    let reason = if error.is_timeout() { "timed out".to_owned() } else { chain(error) };
    if builder {
        return DeliveryError::Invalid { rule: label.to_owned(), host: host.to_owned(), reason };
    }
    DeliveryError::Transport { rule: label.to_owned(), host: host.to_owned(), reason }
}

/// The error and its causes, without the URL (which may hold a token).
fn chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
