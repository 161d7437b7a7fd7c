//! An OIDC issuer's keys, fetched from its discovery document and JWKS,
//! kept in memory, fetched again when a token names an unknown `kid`
//! (key rotation) or the set grows old, never more often than the
//! cooldown, and kept when the issuer cannot be reached.

use crate::config::check_issuer_url;
use crate::keys::{from_jwks, KeySet, VerifyKey};
use crate::{AuthError, IssuerConfig};
use std::sync::{Arc, Mutex, RwLock};
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
    /// When fetches were last tried and last succeeded, readable without
    /// waiting for a fetch.
    times: Mutex<FetchTimes>,
    /// Held for the length of a fetch: fetches run one at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default, Clone, Copy)]
struct FetchTimes {
    attempted: Option<Instant>,
    succeeded: Option<Instant>,
}

impl RemoteKeys {
    pub fn new(config: IssuerConfig) -> Result<Self, AuthError> {
        // A client without the timeout could hold the fetch for good, so
        // failing to build one is an error, not a fallback.
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthError::Key(format!("no HTTP client for {}: {e}", config.url)))?;
        Ok(Self {
            config,
            http,
            keys: RwLock::new(KeySet::new()),
            times: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    pub fn get(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).get(kid).cloned()
    }

    fn times(&self) -> FetchTimes {
        *self.times.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the keys are older than `keys_max_age` (or were never
    /// fetched) and the cooldown allows a fetch: then the caller starts
    /// [`RemoteKeys::refresh`] in the background, so requests with known
    /// keys never wait for a slow issuer.
    pub fn wants_refresh(&self) -> bool {
        let times = self.times();
        times.succeeded.is_none_or(|at| at.elapsed() > self.config.keys_max_age) && self.cooled_down(times)
    }

    fn cooled_down(&self, times: FetchTimes) -> bool {
        times.attempted.is_none_or(|at| at.elapsed() >= self.config.refresh_cooldown)
    }

    /// Fetches the key set again (after a fetch that is running) unless a
    /// fetch was tried less than the cooldown ago. A failed fetch keeps
    /// the keys already held.
    pub async fn refresh(&self) {
        let _one_at_a_time = self.fetching.lock().await;
        if !self.cooled_down(self.times()) {
            return;
        }
        self.times.lock().unwrap_or_else(|p| p.into_inner()).attempted = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(issuer = %self.config.url, keys = keys.len(), "fetched the issuer's signing keys");
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
                self.times.lock().unwrap_or_else(|p| p.into_inner()).succeeded = Some(Instant::now());
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
        // Held to the issuer URL's rule: a discovery document must not send
        // the key fetch over plain HTTP or through user information.
        check_issuer_url(jwks_uri).map_err(|rule| format!("the jwks_uri {jwks_uri:?} {rule}"))?;
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
