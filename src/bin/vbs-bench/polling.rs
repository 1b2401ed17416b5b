//! Polling cost: how many GETs a backup costs and how late its end is seen.
//!
//! Each strategy is the agent's own [`Cadence`] (the waits its poll loop
//! sleeps between two GETs of a backup) played on a simulated clock, so an
//! hour-long backup takes microseconds and the figures do not depend on the
//! machine. A backup's true duration varies by ±`spread` around the nominal
//! one; the agent's history holds the durations of the volume's five earlier
//! backups, drawn the same way.

use std::time::Duration;

use serde::Serialize;
use vbs_agent::config::{PollSettings, DEFAULT_POLL};
use vbs_agent::engine::poll::{Cadence, Expected};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Nominal backup durations to measure.
    #[arg(long, value_delimiter = ',', default_value = "1m,10m,1h,6h", value_parser = humantime::parse_duration)]
    durations: Vec<Duration>,
    /// Backups per duration and strategy.
    #[arg(long, default_value_t = 1001)]
    backups: usize,
    /// Relative variation of a backup's duration around the nominal one.
    #[arg(long, default_value_t = 0.05)]
    spread: f64,
    /// Seed of the random durations.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Earlier backups of the volume the agent's history knows.
const HISTORY: usize = 5;

#[derive(Debug, Clone, Copy)]
enum Strategy {
    /// The agent with the volume's history.
    Agent,
    /// The agent on a volume's first backup: no history.
    AgentFirst,
    /// A fixed-interval `wait_for_status`-style loop.
    Fixed(u64),
}

impl Strategy {
    fn label(self) -> String {
        match self {
            Strategy::Agent => "vbs-agent (with history)".into(),
            Strategy::AgentFirst => "vbs-agent (first backup, no history)".into(),
            Strategy::Fixed(s) => format!("fixed {s} s polling"),
        }
    }

    fn cadence(self, history: &[Duration]) -> Cadence {
        match self {
            Strategy::Agent => match Expected::from_history(history) {
                Some(e) => Cadence::expecting(&DEFAULT_POLL, e, Duration::ZERO),
                None => Cadence::new(&DEFAULT_POLL),
            },
            Strategy::AgentFirst => Cadence::new(&DEFAULT_POLL),
            Strategy::Fixed(s) => Cadence::new(&PollSettings {
                initial: Duration::from_secs(s),
                max: Duration::from_secs(s),
                factor: 1.0,
            }),
        }
    }
}

/// One row of the result.
#[derive(Debug, Serialize)]
struct Row {
    bench: &'static str,
    duration_s: u64,
    strategy: String,
    backups: usize,
    gets_per_backup: f64,
    delay_median_s: f64,
    delay_p95_s: f64,
    delay_max_s: f64,
}

/// GETs until the backup is seen, and how late.
fn play(mut cadence: Cadence, took: Duration) -> (u32, Duration) {
    let mut now = Duration::ZERO;
    let mut gets = 0;
    loop {
        now += cadence.next_wait();
        gets += 1;
        if now >= took {
            return (gets, now - took);
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64()
}

/// Runs the benchmark, prints its JSON lines and returns its Markdown table.
pub fn run(args: &Args) -> Result<String, String> {
    if args.backups == 0 {
        return Err("--backups must be at least 1".into());
    }
    let strategies = [
        Strategy::Agent,
        Strategy::AgentFirst,
        Strategy::Fixed(2),
        Strategy::Fixed(10),
    ];
    let mut rows = Vec::new();
    for &nominal in &args.durations {
        for strategy in strategies {
            let mut rng = fastrand::Rng::with_seed(args.seed);
            let mut draw = || nominal.mul_f64(1.0 + args.spread * (2.0 * rng.f64() - 1.0));
            let mut gets = 0u64;
            let mut delays = Vec::with_capacity(args.backups);
            for _ in 0..args.backups {
                let history: Vec<Duration> = (0..HISTORY).map(|_| draw()).collect();
                let (g, late) = play(strategy.cadence(&history), draw());
                gets += u64::from(g);
                delays.push(late);
            }
            delays.sort();
            rows.push(Row {
                bench: "polling",
                duration_s: nominal.as_secs(),
                strategy: strategy.label(),
                backups: args.backups,
                gets_per_backup: gets as f64 / args.backups as f64,
                delay_median_s: percentile(&delays, 0.5),
                delay_p95_s: percentile(&delays, 0.95),
                delay_max_s: percentile(&delays, 1.0),
            });
        }
    }
    for row in &rows {
        println!("{}", serde_json::to_string(row).map_err(|e| e.to_string())?);
    }
    Ok(table(&rows))
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| backup takes | strategy | GETs per backup | ×fewer than 2 s polling | detection delay median / p95 / max |\n\
         | --- | --- | ---: | ---: | --- |\n",
    );
    for row in rows {
        let two_s = rows
            .iter()
            .find(|r| r.duration_s == row.duration_s && r.strategy == Strategy::Fixed(2).label())
            .map_or(f64::NAN, |r| r.gets_per_backup);
        out += &format!(
            "| {} | {} | {:.1} | {:.0}× | {:.0} s / {:.0} s / {:.0} s |\n",
            humantime::format_duration(Duration::from_secs(row.duration_s)),
            row.strategy,
            row.gets_per_backup,
            two_s / row.gets_per_backup,
            row.delay_median_s,
            row.delay_p95_s,
            row.delay_max_s,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_loop_looks_once_per_interval_and_sees_the_end_at_the_next_look() {
        let (gets, late) = play(Strategy::Fixed(2).cadence(&[]), Duration::from_secs(61));
        assert_eq!((gets, late), (31, Duration::from_secs(1)));
    }

    #[test]
    fn the_agent_with_history_beats_two_second_polling_on_an_hour() {
        let hour = Duration::from_secs(3600);
        let (agent, late) = play(Strategy::Agent.cadence(&[hour; HISTORY]), hour);
        let (fixed, _) = play(Strategy::Fixed(2).cadence(&[]), hour);
        assert!(agent * 50 <= fixed, "{agent} GETs against {fixed}");
        assert!(late <= Duration::from_secs(30), "seen {late:?} late");
    }
}
