//! An OIDC issuer's keys, fetched from its discovery document and JWKS,
//! kept in memory, fetched again when a token names an unknown `kid`
//! (key rotation) or the set grows old, never more often than the
//! cooldown, and kept when the issuer cannot be reached.

use crate::keys::{from_jwks, KeySet, VerifyKey};
use crate::IssuerConfig;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Discovery documents and key sets larger than this are refused.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The keys of one issuer and when they were fetched.
pub struct RemoteKeys {
    config: IssuerConfig,
    http: reqwest::Client,
    keys: RwLock<KeySet>,
    /// Serializes fetches, and remembers the last attempt and success.
    fetches: tokio::sync::Mutex<Fetches>,
}

#[derive(Default)]
struct Fetches {
    attempted: Option<Instant>,
    succeeded: Option<Instant>,
}

impl RemoteKeys {
    pub fn new(config: IssuerConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { config, http, keys: RwLock::new(KeySet::new()), fetches: Default::default() }
    }

    pub fn get(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).get(kid).cloned()
    }

    /// Fetches the key set again if it is older than `keys_max_age` (or
    /// was never fetched), unless a fetch is running already: requests
    /// with known keys never wait for a slow issuer.
    pub async fn refresh_if_stale(&self) {
        let Ok(mut fetches) = self.fetches.try_lock() else { return };
        if fetches.succeeded.is_none_or(|at| at.elapsed() > self.config.keys_max_age) {
            self.fetch_under(&mut fetches).await;
        }
    }

    /// Fetches the key set again (waiting for a fetch that is running)
    /// unless a fetch was tried less than the cooldown ago. A failed fetch
    /// keeps the keys already held.
    pub async fn refresh(&self) {
        let mut fetches = self.fetches.lock().await;
        self.fetch_under(&mut fetches).await;
    }

    async fn fetch_under(&self, fetches: &mut Fetches) {
        if fetches.attempted.is_some_and(|at| at.elapsed() < self.config.refresh_cooldown) {
            return;
        }
        fetches.attempted = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(issuer = %self.config.url, keys = keys.len(), "fetched the issuer's signing keys");
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
                fetches.succeeded = Some(Instant::now());
            }
            Err(error) => {
                tracing::warn!(issuer = %self.config.url, %error, "could not fetch the issuer's signing keys; keeping the ones held");
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let discovery_url = format!("{}/.well-known/openid-configuration", self.config.url);
        let discovery = self.get_json(&discovery_url).await?;
        // OIDC Discovery 1.0 §4.3: the document must name the issuer it
        // was fetched for, or it speaks for someone else.
        if discovery.get("issuer").and_then(|i| i.as_str()).map(|i| i.trim_end_matches('/')) != Some(&self.config.url) {
            return Err(format!("the discovery document at {discovery_url} names another issuer"));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(|u| u.as_str())
            .ok_or_else(|| format!("the discovery document at {discovery_url} has no jwks_uri"))?;
        let jwks = self.get_json(jwks_uri).await?;
        Ok(from_jwks(&jwks, &self.config.algorithms))
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        let mut response = self.http.get(url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
    }
}
