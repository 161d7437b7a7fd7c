//! How far behind the log the read models are: the head, each projection's
//! position, and how long events took from commit to read model.

use crate::projection::Projection;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tollgate_metrics::{histogram_header, LatencyHistogram};

/// Live counters of one process's projector.
#[derive(Debug, Default)]
pub struct ProjectorMetrics {
    head: AtomicU64,
    positions: [AtomicU64; 4],
    /// From an event's commit to every read model holding it.
    latency: LatencyHistogram,
}

impl ProjectorMetrics {
    pub(crate) fn set_head(&self, head: u64) {
        self.head.fetch_max(head, Ordering::Relaxed);
    }

    pub(crate) fn set_position(&self, projection: Projection, position: u64) {
        self.positions[index(projection)].store(position, Ordering::Relaxed);
        self.set_head(position);
    }

    /// One event reached every read model `latency` after it was recorded.
    pub(crate) fn observe(&self, latency: Duration) {
        self.latency.observe(latency);
    }

    /// The log position the projector last saw.
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Relaxed)
    }

    /// A projection's serving position.
    pub fn position(&self, projection: Projection) -> u64 {
        self.positions[index(projection)].load(Ordering::Relaxed)
    }

    /// Events `projection` is behind the head.
    pub fn lag(&self, projection: Projection) -> u64 {
        self.head().saturating_sub(self.position(projection))
    }

    /// The `q` quantile (0..=1) of commit-to-read-model latency, as the
    /// upper bound of its bucket; `None` before any event.
    pub fn latency_quantile(&self, q: f64) -> Option<Duration> {
        self.latency.quantile(q)
    }

    /// Prometheus text exposition of these metrics.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP tollgate_log_head_position Last log position the projector has seen.");
        let _ = writeln!(out, "# TYPE tollgate_log_head_position gauge");
        let _ = writeln!(out, "tollgate_log_head_position {}", self.head());
        let _ = writeln!(out, "# HELP tollgate_projection_position Last log position folded into a read model.");
        let _ = writeln!(out, "# TYPE tollgate_projection_position gauge");
        for p in Projection::ALL {
            let _ = writeln!(out, "tollgate_projection_position{{projection=\"{p}\"}} {}", self.position(p));
        }
        let _ = writeln!(out, "# HELP tollgate_projection_lag_events Events a read model is behind the log.");
        let _ = writeln!(out, "# TYPE tollgate_projection_lag_events gauge");
        for p in Projection::ALL {
            let _ = writeln!(out, "tollgate_projection_lag_events{{projection=\"{p}\"}} {}", self.lag(p));
        }
        let name = "tollgate_projection_latency_seconds";
        histogram_header(out, name, "From an event's commit to every read model holding it.");
        self.latency.render_series(out, name, "");
    }
}

fn index(projection: Projection) -> usize {
    match projection {
        Projection::Units => 0,
        Projection::Receipts => 1,
        Projection::Definitions => 2,
        Projection::Timeline => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let m = ProjectorMetrics::default();
        assert_eq!(m.latency_quantile(0.99), None);
        for _ in 0..98 {
            m.observe(Duration::from_millis(3));
        }
        m.observe(Duration::from_millis(150));
        m.observe(Duration::from_secs(60));
        assert_eq!(m.latency_quantile(0.5), Some(Duration::from_millis(5)));
        assert_eq!(m.latency_quantile(0.99), Some(Duration::from_millis(200)));
        assert_eq!(m.latency_quantile(1.0), Some(Duration::from_millis(u64::MAX)));
        let mut text = String::new();
        m.render(&mut text);
        assert!(text.contains("tollgate_projection_latency_seconds_bucket{le=\"0.005\"} 98"), "{text}");
        assert!(text.contains("tollgate_projection_latency_seconds_count 100"), "{text}");
    }

    #[test]
    fn lag_is_head_minus_position() {
        let m = ProjectorMetrics::default();
        m.set_head(10);
        m.set_position(Projection::Receipts, 7);
        assert_eq!((m.lag(Projection::Receipts), m.lag(Projection::Units)), (3, 10));
    }
}
