//! Latency histograms kept in memory with atomics and rendered as
//! Prometheus text: the read models' commit-to-read-model latency and the
//! HTTP API's request durations share one shape.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (ms) of every latency histogram.
const BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 30000];

/// Counts of durations per bucket, their sum and their number.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Counts per bucket (not cumulative), then +Inf.
    buckets: [AtomicU64; BUCKETS_MS.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl LatencyHistogram {
    /// Counts one duration.
    pub fn observe(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let slot = BUCKETS_MS.iter().position(|b| ms <= *b).unwrap_or(BUCKETS_MS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The `q` quantile (0..=1), as the upper bound of its bucket; `None`
    /// before anything was counted.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_millis(BUCKETS_MS.get(i).copied().unwrap_or(u64::MAX)));
            }
        }
        None
    }

    /// The `_bucket`, `_sum` and `_count` lines of metric `name`, each with
    /// `labels` (`key="value",...`, or empty) before the bucket's `le`.
    pub fn render_series(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in BUCKETS_MS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{}\"}} {cumulative}", *bound as f64 / 1000.0);
        }
        cumulative += self.buckets[BUCKETS_MS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}");
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {}", self.count.load(Ordering::Relaxed));
    }
}

/// The `# HELP` and `# TYPE` lines of a histogram.
pub fn histogram_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let h = LatencyHistogram::default();
        assert_eq!(h.quantile(0.99), None);
        for _ in 0..98 {
            h.observe(Duration::from_millis(3));
        }
        h.observe(Duration::from_millis(150));
        h.observe(Duration::from_secs(60));
        assert_eq!(h.quantile(0.5), Some(Duration::from_millis(5)));
        assert_eq!(h.quantile(0.99), Some(Duration::from_millis(200)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_millis(u64::MAX)));
    }

    #[test]
    fn series_are_cumulative_and_labelled() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(40));
        let mut text = String::new();
        h.render_series(&mut text, "x_seconds", "route=\"POST /v1/receipts\"");
        assert!(text.contains("x_seconds_bucket{route=\"POST /v1/receipts\",le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{route=\"POST /v1/receipts\",le=\"0.05\"} 2\n"), "{text}");
        assert!(text.contains("x_seconds_count{route=\"POST /v1/receipts\"} 2\n"), "{text}");
        let mut bare = String::new();
        h.render_series(&mut bare, "y_seconds", "");
        assert!(bare.contains("y_seconds_bucket{le=\"+Inf\"} 2\n") && bare.contains("y_seconds_count 2\n"), "{bare}");
    }
}
