//! Latencies as the server itself measures them, from the histograms of
//! `GET /metrics` read before and after a measurement, so that only that
//! measurement counts: the projection lag
//! (`tollgate_projection_latency_seconds`, commit to every read model) and
//! the time to answer receipts (`tollgate_http_request_duration_seconds`
//! of `POST /v1/receipts`, arrival to response).

use anyhow::Context;

/// Cumulative bucket counts by upper bound in seconds (`+Inf` as infinity).
pub type Histogram = Vec<(f64, u64)>;

/// The projection-lag histogram's buckets.
pub const PROJECTION_LAG: &str = "tollgate_projection_latency_seconds_bucket{";
/// The buckets of the time the server took to answer `POST /v1/receipts`.
pub const RECEIPTS_ANSWERED: &str = "tollgate_http_request_duration_seconds_bucket{route=\"POST /v1/receipts\",";

/// The histogram whose bucket lines start with `buckets` (up to the `le`
/// label), from the server's `/metrics`.
pub async fn scrape(base: &str, token: &str, buckets: &str) -> anyhow::Result<Histogram> {
    let text = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    parse(&text, buckets)
}

fn parse(text: &str, buckets: &str) -> anyhow::Result<Histogram> {
    let prefix = format!("{buckets}le=\"");
    let mut out = Vec::new();
    for rest in text.lines().filter_map(|l| l.strip_prefix(prefix.as_str())) {
        let (bound, count) = rest.split_once("\"} ").context("a bucket line")?;
        let bound = if bound == "+Inf" { f64::INFINITY } else { bound.parse()? };
        out.push((bound, count.trim().parse()?));
    }
    Ok(out)
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
    fn buckets_are_read_by_their_series() {
        let text = "x_bucket{le=\"0.001\"} 4\nx_bucket{le=\"+Inf\"} 5\n\
            y_bucket{route=\"POST /v1/receipts\",le=\"0.01\"} 7\ny_bucket{route=\"GET /\",le=\"0.01\"} 9\n";
        assert_eq!(parse(text, "x_bucket{").unwrap(), vec![(0.001, 4), (f64::INFINITY, 5)]);
        assert_eq!(parse(text, "y_bucket{route=\"POST /v1/receipts\",").unwrap(), vec![(0.01, 7)]);
    }

    #[test]
    fn quantiles_count_only_the_interval() {
        let before = vec![(0.01, 100), (0.1, 100), (f64::INFINITY, 100)];
        let after = vec![(0.01, 190), (0.1, 200), (f64::INFINITY, 200)];
        assert_eq!(quantile_ms(&before, &after, 0.5), Some((10.0, 100)));
        assert_eq!(quantile_ms(&before, &after, 0.99), Some((100.0, 100)));
        assert_eq!(quantile_ms(&after, &after, 0.99), None);
    }
}
