//! The rules' templates and what they see of an event.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{json, Value};
use tollgate_watchers::TollgateEvent;

/// The compiled templates of every rule, each named by its field path
/// (`rules[0].url`, `rules[0].headers.X-Unit`, `rules[0].body`), so an
/// error names the field.
#[derive(Debug)]
pub(crate) struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub(crate) fn new() -> Templates {
        let mut env = Environment::new();
        // A typo must fail loudly rather than send an empty value.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Bodies are JSON or text, not HTML: never escape implicitly.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.add_filter("urlencode_component", urlencode_component);
        Templates { env }
    }

    /// Compiles `source` under `field`; the error is the parser's message.
    pub(crate) fn add(&mut self, field: &str, source: &str) -> Result<(), String> {
        self.env.add_template_owned(field.to_owned(), source.to_owned()).map_err(|e| e.to_string())
    }

    /// Renders the template compiled under `field`.
    pub(crate) fn render(&self, field: &str, context: &Value) -> Result<String, String> {
        let template = self.env.get_template(field).map_err(|e| e.to_string())?;
        template.render(context).map_err(|e| e.to_string())
    }
}

/// Percent-encodes everything but unreserved characters, `/` included,
/// for a value placed in one path segment (the builtin `urlencode` keeps
/// `/`, which suits query values).
fn urlencode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// What a template sees: the event's attributes under readable names,
/// plus the unit key, stage and gates lifted out of the data.
pub fn template_context(event: &TollgateEvent) -> Value {
    json!({
        "id": event.id,
        "source": event.source,
        "type": event.ce_type,
        "event_type": event.event_type,
        "subject": event.subject,
        "time": event.time,
        "position": event.position,
        "stream": event.stream,
        "stream_version": event.stream_version,
        "schema_version": event.schema_version,
        "unit_key": event.unit_key(),
        "stage": event.stage(),
        "gates": event.gates().collect::<Vec<_>>(),
        "data": event.data,
        "hash": event.hash,
        "traceparent": event.traceparent,
    })
}

/// The default body: the event as the structured CloudEvent the relay
/// published, so a receiver can re-check its hash and signature.
pub fn event_json(event: &TollgateEvent) -> Value {
    let mut cloud_event = json!({
        "specversion": "1.0",
        "id": event.id,
        "source": event.source,
        "type": event.ce_type,
        "subject": event.subject,
        "time": event.time,
        "datacontenttype": "application/json",
        "data": event.data,
        "eventtype": event.event_type,
        "schemaversion": event.schema_version,
        "position": event.position,
        "stream": event.stream,
        "streamversion": event.stream_version,
        "metadata": event.metadata,
        "prevhash": event.prev_hash,
        "hash": event.hash,
        "keyid": event.key_id,
        "signature": event.signature,
    });
    if let (Some(traceparent), Some(object)) = (&event.traceparent, cloud_event.as_object_mut()) {
        object.insert("traceparent".to_owned(), json!(traceparent));
    }
    cloud_event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates(source: &str) -> Templates {
        let mut t = Templates::new();
        t.add("rules[0].body", source).unwrap();
        t
    }

    #[test]
    fn filters_are_available() {
        let context = json!({"unit_key": "openssl@3.0.13-1/x86_64/rpm", "data": {"gates": ["a", "b"]}});
        let out = templates("{{ unit_key | urlencode }} {{ unit_key | urlencode_component }} {{ data | tojson }}")
            .render("rules[0].body", &context)
            .unwrap();
        assert_eq!(out, r#"openssl%403.0.13-1/x86_64/rpm openssl%403.0.13-1%2Fx86_64%2Frpm {"gates":["a","b"]}"#);
    }

    #[test]
    fn undefined_values_fail_and_name_the_template() {
        let err = templates("{{ data.nope }}").render("rules[0].body", &json!({"data": {}})).unwrap_err();
        assert!(err.contains("undefined"), "{err}");
        assert!(err.contains("rules[0].body"), "{err}");
    }

    #[test]
    fn nothing_is_html_escaped() {
        let out = templates("{{ x }}").render("rules[0].body", &json!({"x": "<a&b>\""})).unwrap();
        assert_eq!(out, "<a&b>\"");
    }

    #[test]
    fn syntax_errors_surface_at_compile_time() {
        assert!(Templates::new().add("rules[0].url", "https://x/{{ id ").is_err());
    }
}
