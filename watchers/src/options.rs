//! How a runtime retries, paces and remembers.

use std::time::Duration;
use tokio::time::Instant;

/// The runtime's knobs. `Default` suits production; tests shorten the
/// backoff.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeOptions {
    /// First retry's backoff ceiling; doubles per attempt.
    pub backoff_base: Duration,
    /// Largest backoff ceiling.
    pub backoff_cap: Duration,
    /// Attempts (the first call included) before dead-lettering a
    /// retryable failure.
    pub max_attempts: u32,
    /// Events per second handed to the handler (token bucket, burst of one
    /// second's worth), so a backlog replays at a bounded rate. `None`:
    /// unbounded.
    pub max_rate: Option<u32>,
    /// How many recently handled event ids are remembered for dedupe.
    pub dedupe_capacity: usize,
    /// The consumer's `session.timeout.ms`.
    pub session_timeout: Duration,
    /// Replication factor of the dead-letter topic when it is created.
    pub dlq_replication_factor: i32,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(30),
            max_attempts: 5,
            max_rate: Some(500),
            dedupe_capacity: 10_000,
            session_timeout: Duration::from_secs(10),
            dlq_replication_factor: 1,
        }
    }
}

impl RuntimeOptions {
    /// The backoff before retry number `retry` (1-based): "full jitter",
    /// uniform in `[0, min(cap, base * 2^(retry-1))]`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let ceiling = self.backoff_base.saturating_mul(factor).min(self.backoff_cap);
        ceiling.mul_f64(random_unit())
    }
}

/// A uniform number in `[0, 1]` from the OS; `1` (no jitter) if it fails.
fn random_unit() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 1.0,
    }
}

/// A token bucket: `rate` tokens per second, holding at most `rate`.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u32) -> TokenBucket {
        let rate = f64::from(rate.max(1));
        TokenBucket { rate, tokens: rate, last: Instant::now() }
    }

    /// Waits until a token is there and takes it.
    pub(crate) async fn acquire(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate);
        self.last = now;
        self.tokens -= 1.0;
        if self.tokens < 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(-self.tokens / self.rate)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_under_an_exponential_capped_ceiling() {
        let options = RuntimeOptions {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(350),
            ..RuntimeOptions::default()
        };
        for _ in 0..100 {
            assert!(options.backoff(1) <= Duration::from_millis(100));
            assert!(options.backoff(2) <= Duration::from_millis(200));
            assert!(options.backoff(3) <= Duration::from_millis(350));
            assert!(options.backoff(40) <= Duration::from_millis(350));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_holds_the_rate_after_a_burst() {
        let mut bucket = TokenBucket::new(10);
        let start = Instant::now();
        for _ in 0..30 {
            bucket.acquire().await;
        }
        // 10 at once, then 20 more at 10/s.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1990) && elapsed <= Duration::from_millis(2100), "{elapsed:?}");
    }
}
