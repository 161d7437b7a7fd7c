//! Progress of a long command on stderr: a redrawn bar with rate and ETA
//! on a terminal, a plain line at most once a second otherwise (a log file
//! or a CI job).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Draws progress towards a total.
pub struct ProgressLine {
    label: String,
    terminal: bool,
    last_plain: Option<Instant>,
}

impl ProgressLine {
    pub fn new(label: impl Into<String>) -> ProgressLine {
        ProgressLine { label: label.into(), terminal: std::io::stderr().is_terminal(), last_plain: None }
    }

    /// `done` of `total` after `elapsed`.
    pub fn update(&mut self, done: u64, total: u64, elapsed: Duration) {
        let line = render(&self.label, done, total, elapsed, self.terminal);
        if self.terminal {
            eprint!("\r{line}");
        } else if self.last_plain.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            self.last_plain = Some(Instant::now());
            eprintln!("{line}");
        }
    }

    /// Ends the bar's line.
    pub fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

/// `label [#####.....]  50%  500/1000 events  250/s  ETA 2s` (the bar only
/// on a terminal).
fn render(label: &str, done: u64, total: u64, elapsed: Duration, bar: bool) -> String {
    let fraction = if total == 0 { 1.0 } else { (done as f64 / total as f64).min(1.0) };
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
    let eta = if rate > 0.0 { format!("{:.0}s", total.saturating_sub(done) as f64 / rate) } else { "?".into() };
    let mut line = format!("{label} ");
    if bar {
        let filled = (fraction * 30.0).round() as usize;
        line += &format!("[{}{}] ", "#".repeat(filled), ".".repeat(30 - filled));
    }
    line + &format!("{:3.0}%  {done}/{total} events  {rate:.0}/s  ETA {eta}", fraction * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_share_rate_and_eta() {
        let line = render("units", 500, 1000, Duration::from_secs(2), true);
        assert_eq!(line, format!("units [{}{}]  50%  500/1000 events  250/s  ETA 2s", "#".repeat(15), ".".repeat(15)));
        assert_eq!(render("units", 0, 0, Duration::ZERO, false), "units 100%  0/0 events  0/s  ETA ?");
    }
}
