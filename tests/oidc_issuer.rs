//! A small real OIDC issuer for the tests: a discovery document and a
//! JWKS served over HTTP, whose keys can be rotated and which can be taken
//! down; tokens are minted with the `jsonwebtoken` library, not with
//! Tollgate's code.

#![allow(dead_code)]

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
pub const RSA_KID: &str = "rsa-1";
pub const ED_KID: &str = "ed-1";

/// What the issuer serves, and how often its keys were fetched.
pub struct Published {
    pub keys: Vec<Value>,
    pub up: bool,
    pub jwks_fetches: usize,
}

pub struct Issuer {
    pub url: String,
    pub published: Arc<Mutex<Published>>,
    rsa_private: Vec<u8>,
    ed: SigningKey,
}

impl Issuer {
    /// Serves the RSA fixture key and an Ed25519 key.
    pub async fn start() -> Issuer {
        let ed = SigningKey::from_bytes(&[42u8; 32]);
        let rsa_private = std::fs::read(Path::new(FIXTURES).join("oidc-rsa-private.der")).unwrap();
        let published = Arc::new(Mutex::new(Published { keys: vec![], up: true, jwks_fetches: 0 }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state((url.clone(), published.clone()));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let issuer = Issuer { url, published, rsa_private, ed };
        issuer.publish(&[RSA_KID, ED_KID]);
        issuer
    }

    /// Replaces the published key set with the keys named.
    pub fn publish(&self, kids: &[&str]) {
        let keys = kids
            .iter()
            .map(|kid| match *kid {
                RSA_KID => serde_json::from_str(&fixture("oidc-rsa-public.jwk.json")).unwrap(),
                ED_KID => json!({"kty": "OKP", "crv": "Ed25519", "kid": ED_KID, "use": "sig",
                                 "x": URL_SAFE_NO_PAD.encode(self.ed.verifying_key().as_bytes())}),
                other => panic!("no key {other}"),
            })
            .collect();
        self.published.lock().unwrap().keys = keys;
    }

    pub fn set_up(&self, up: bool) {
        self.published.lock().unwrap().up = up;
    }

    pub fn jwks_fetches(&self) -> usize {
        self.published.lock().unwrap().jwks_fetches
    }

    /// Claims for `subject` in `groups`, valid now for an hour.
    pub fn claims(&self, subject: &str, groups: &[&str]) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({"iss": self.url, "sub": subject, "aud": "tollgate", "iat": now, "nbf": now, "exp": now + 3600,
               "groups": groups, "jti": ulid::Ulid::new().to_string()})
    }

    /// An RS256 token with the RSA key.
    pub fn rs256(&self, claims: &Value) -> String {
        self.sign(Algorithm::RS256, RSA_KID, claims, &EncodingKey::from_rsa_der(&self.rsa_private))
    }

    /// An EdDSA token with the Ed25519 key.
    pub fn eddsa(&self, claims: &Value) -> String {
        let der = self.ed.to_pkcs8_der().unwrap();
        self.sign(Algorithm::EdDSA, ED_KID, claims, &EncodingKey::from_ed_der(der.as_bytes()))
    }

    pub fn sign(&self, alg: Algorithm, kid: &str, claims: &Value, key: &EncodingKey) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    /// A token of `subject` in `groups`, signed with the RSA key.
    pub fn token(&self, subject: &str, groups: &[&str]) -> String {
        self.rs256(&self.claims(subject, groups))
    }
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap()
}

/// `header.payload.` with any header: the `alg: none` forgery.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.", part(header), part(claims))
}

type IssuerState = (String, Arc<Mutex<Published>>);

async fn discovery(State((url, _)): State<IssuerState>) -> Json<Value> {
    Json(
        json!({"issuer": url, "jwks_uri": format!("{url}/jwks"), "id_token_signing_alg_values_supported": ["RS256", "EdDSA"]}),
    )
}

async fn jwks(State((_, published)): State<IssuerState>) -> Result<Json<Value>, StatusCode> {
    let mut published = published.lock().unwrap();
    published.jwks_fetches += 1;
    if !published.up {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(Json(json!({"keys": published.keys})))
}

/// A server trusting `issuer` with the grants of [`access_file`]; the
/// folder holding the file lives as long as the server is needed.
pub async fn app_trusting(issuer: &Issuer) -> (crate::helpers::TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let access = access_file(dir.path(), &issuer.url);
    (crate::helpers::spawn_app_with(vec!["--access".into(), access]).await, dir)
}

/// An access file trusting `issuer_url`, with the grants the tests use.
pub fn access_file(dir: &Path, issuer_url: &str) -> String {
    let text = format!(
        r#"
[[issuer]]
url = "{issuer_url}"
audience = "tollgate"
algorithms = ["RS256", "EdDSA"]
refresh_cooldown_secs = 1

[[grant]]
group = "platform"
role = "admin"

[[grant]]
group = "auditors"
role = "auditor"

[[grant]]
group = "dashboards"
role = "reader"

[[grant]]
group = "openssl-ci"
role = "submitter"
units = ["openssl", "openssl-*"]

[[grant]]
group = "zlib-ci"
role = "submitter"
units = ["zlib"]
gates = ["build"]

[[grant]]
group = "security-team"
role = "gate-owner"
owner = "security"

[[grant]]
group = "qa-team"
role = "gate-owner"
owner = "qa"
"#
    );
    let path = dir.join("access.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}
