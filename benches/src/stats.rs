//! Latency samples and their percentiles.

use std::time::Duration;

/// Latencies of one measurement, and how long it ran.
#[derive(Debug, Default)]
pub struct Samples {
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
    pub errors: u64,
}

impl Samples {
    pub fn merge(&mut self, mut other: Samples) {
        self.latencies.append(&mut other.latencies);
        self.errors += other.errors;
    }

    /// Counts one request that began at `began`: its latency when it
    /// succeeded, an error otherwise.
    pub fn record(&mut self, ok: bool, began: std::time::Instant) {
        if ok {
            self.latencies.push(began.elapsed());
        } else {
            self.errors += 1;
        }
    }

    /// Starts `request(seq)` at `rate` per second for `duration`, whatever
    /// the answers' latency (open loop); each latency counts from the
    /// request's scheduled time, so a stall shows up in the percentiles. A
    /// request's future answers whether it succeeded.
    pub async fn at_rate<F, Fut>(rate: f64, duration: Duration, mut request: F) -> Samples
    where
        F: FnMut(u64) -> Fut,
        Fut: std::future::Future<Output = bool> + Send + 'static,
    {
        let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
        let total = (duration.as_secs_f64() * rate) as u64;
        let start = std::time::Instant::now();
        let mut tasks = Vec::with_capacity(total as usize);
        for seq in 0..total {
            let scheduled = start + interval.mul_f64(seq as f64);
            tokio::time::sleep_until(scheduled.into()).await;
            let answer = request(seq);
            tasks.push(tokio::spawn(async move { answer.await.then(|| scheduled.elapsed()) }));
        }
        let mut samples = Samples::default();
        for task in tasks {
            match task.await {
                Ok(Some(latency)) => samples.latencies.push(latency),
                _ => samples.errors += 1,
            }
        }
        samples.elapsed = start.elapsed();
        samples
    }

    /// Merges the samples of client tasks that ran since `start`.
    pub async fn gather(tasks: Vec<tokio::task::JoinHandle<Samples>>, start: std::time::Instant) -> Samples {
        let mut all = Samples::default();
        for task in tasks {
            if let Ok(samples) = task.await {
                all.merge(samples);
            }
        }
        all.elapsed = start.elapsed();
        all
    }

    pub fn count(&self) -> usize {
        self.latencies.len()
    }

    /// Completed operations per second.
    pub fn rate(&self) -> f64 {
        self.count() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// The `p`th percentile (0..=100) in milliseconds, nearest rank.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.sort_unstable();
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies.len()) - 1;
        self.latencies[index].as_secs_f64() * 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples {
            latencies: (1..=100).map(Duration::from_millis).collect(),
            elapsed: Duration::from_secs(2),
            errors: 0,
        };
        assert_eq!(s.percentile_ms(50.0), 50.0);
        assert_eq!(s.percentile_ms(99.0), 99.0);
        assert_eq!(s.rate(), 50.0);
    }
}
