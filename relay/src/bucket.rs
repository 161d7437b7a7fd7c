//! A token bucket: the relay's bounded drain rate.

use std::time::Duration;
use tokio::time::Instant;

/// Refills at `rate` tokens per second up to `capacity`; taking more than
/// is there waits for the difference.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. A burst of `capacity` passes at once; after that the
    /// long-run rate is `rate`.
    pub fn new(rate: u32, capacity: u32) -> TokenBucket {
        let capacity = f64::from(capacity.max(1));
        TokenBucket { rate: f64::from(rate.max(1)), capacity, tokens: capacity, last: Instant::now() }
    }

    /// How long to wait before `n` tokens are there; takes them (the bucket
    /// may go below zero, which the next callers wait out).
    pub fn take(&mut self, n: u32) -> Duration {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.tokens -= f64::from(n);
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_passes_a_burst_then_holds_the_rate() {
        let mut bucket = TokenBucket::new(100, 50);
        assert_eq!(bucket.take(50), Duration::ZERO);
        // Empty: 50 more need half a second at 100/s.
        assert_eq!(bucket.take(50), Duration::from_millis(500));
        tokio::time::advance(Duration::from_millis(500)).await;
        // The debt is paid; the next 10 need 100 ms.
        assert_eq!(bucket.take(10), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_fills_only_to_its_capacity() {
        let mut bucket = TokenBucket::new(10, 5);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(bucket.take(5), Duration::ZERO);
        assert_eq!(bucket.take(1), Duration::from_millis(100));
    }
}
