//! Per-principal rate limits: one caller (a runaway CI job, a watcher
//! replaying a backlog) cannot take the service from everyone else.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Callers remembered before the table is reset (a reset only refills
/// buckets, it never blocks anyone).
const MAX_CALLERS: usize = 100_000;

/// A token bucket per caller: `per_second` sustained, twice that in a burst.
pub struct RateLimiter {
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_second = 0` lets every request through.
    pub fn new(per_second: u32) -> Self {
        Self { per_second: f64::from(per_second), buckets: Mutex::new(HashMap::new()) }
    }

    fn burst(&self) -> f64 {
        (self.per_second * 2.0).max(1.0)
    }

    /// Takes one request from `caller`'s bucket, or says how long until
    /// one is available.
    pub fn check(&self, caller: &str) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(caller) {
            buckets.clear();
        }
        let burst = self.burst();
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket { tokens: burst, at: now });
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_caller_waits_and_others_do_not() {
        let limiter = RateLimiter::new(5);
        for _ in 0..10 {
            assert!(limiter.check("ci").is_ok());
        }
        let wait = limiter.check("ci").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(200));
        assert!(limiter.check("someone-else").is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = RateLimiter::new(0);
        assert!((0..10_000).all(|_| limiter.check("ci").is_ok()));
    }
}
