//! Projection lag as the server itself measures it: the
//! `tollgate_projection_latency_seconds` histogram of `GET /metrics`
//! (commit to every read model), read before and after a measurement so
//! that only that measurement's events count.

use anyhow::Context;

/// Cumulative bucket counts by upper bound in seconds (`+Inf` as infinity).
pub type Histogram = Vec<(f64, u64)>;

pub async fn scrape(base: &str, token: &str) -> anyhow::Result<Histogram> {
    let text = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let mut buckets = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("tollgate_projection_latency_seconds_bucket{le=\"")) {
        let rest = &line["tollgate_projection_latency_seconds_bucket{le=\"".len()..];
        let (bound, count) = rest.split_once("\"} ").context("a bucket line")?;
        let bound = if bound == "+Inf" { f64::INFINITY } else { bound.parse()? };
        buckets.push((bound, count.trim().parse()?));
    }
    Ok(buckets)
}

/// The `q` quantile (0..1) of the events counted between two scrapes, as
/// the upper bound of its bucket in milliseconds, and how many events.
pub fn quantile_ms(before: &Histogram, after: &Histogram, q: f64) -> Option<(f64, u64)> {
    let delta: Vec<(f64, u64)> = after
        .iter()
        .map(|(bound, count)| {
            let old = before.iter().find(|(b, _)| b == bound).map_or(0, |(_, c)| *c);
            (*bound, count.saturating_sub(old))
        })
        .collect();
    let total = delta.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil() as u64;
    delta.iter().find(|(_, cumulative)| *cumulative >= rank).map(|(bound, _)| (bound * 1000.0, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_count_only_the_interval() {
        let before = vec![(0.01, 100), (0.1, 100), (f64::INFINITY, 100)];
        let after = vec![(0.01, 190), (0.1, 200), (f64::INFINITY, 200)];
        assert_eq!(quantile_ms(&before, &after, 0.5), Some((10.0, 100)));
        assert_eq!(quantile_ms(&before, &after, 0.99), Some((100.0, 100)));
        assert_eq!(quantile_ms(&after, &after, 0.99), None);
    }
}
