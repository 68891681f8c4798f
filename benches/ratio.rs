//! Paired ratios for group `normalize`: the baselines and keytrail's
//! transforms timed in turn, round after round, so that every ratio
//! compares passes run moments apart.
//!
//! Criterion measures each bench of a group over several seconds, one
//! after the other. On a shared machine whose speed drifts by a fifth or
//! more within minutes, a ratio of two such figures carries that drift.
//! Here each round runs one pass of each workload (the order rotated from
//! round to round), and the figure reported is the median of the rounds'
//! own ratios, with their quartiles and how many rounds reach the target.
//!
//! `cargo bench -p keytrail-benches --bench ratio`; the corpus is
//! `keytrail_benches::corpus`. Environment: `KEYTRAIL_RATIO_ROUNDS`
//! (default 41). A filter argument that does not name this bench skips it.

use std::time::Instant;

use keytrail_benches::Transforms;

/// Rounds when `KEYTRAIL_RATIO_ROUNDS` is not set; odd, so the median is
/// one round's figure.
const DEFAULT_ROUNDS: usize = 41;
/// Unmeasured rounds first: caches, allocator pools, CPU frequency.
const WARMUP_ROUNDS: usize = 3;
/// The target of the issue: the transforms at least this many times as
/// fast as the `serde_json::Value` parse of the same bytes.
const TARGET_RATIO: f64 = 2.0;

/// The workloads, in the order they are reported.
const NAMES: [&str; 3] = [
    "serde_json Value parse",
    "sonic-rs Value parse",
    "keytrail transforms",
];
const VALUE: usize = 0;
const SONIC: usize = 1;
const KEYTRAIL: usize = 2;

fn main() {
    if !keytrail_benches::selected("ratio") {
        return;
    }
    let rounds = std::env::var("KEYTRAIL_RATIO_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(DEFAULT_ROUNDS);
    let lines = keytrail_benches::corpus();
    let transforms = Transforms::new();
    let run = |workload: usize| match workload {
        VALUE => keytrail_benches::value_parse_pass(&lines),
        SONIC => keytrail_benches::sonic_parse_pass(&lines),
        _ => transforms.pass(&lines),
    };

    let mut seconds = Vec::with_capacity(rounds);
    for round in 0..WARMUP_ROUNDS + rounds {
        let mut times = [0.0; 3];
        for step in 0..NAMES.len() {
            let workload = (round + step) % NAMES.len();
            let start = Instant::now();
            run(workload);
            times[workload] = start.elapsed().as_secs_f64();
        }
        if round >= WARMUP_ROUNDS {
            seconds.push(times);
        }
    }

    println!(
        "ratio: {rounds} rounds of {} lines, one pass of each workload per round (order rotated)",
        lines.len()
    );
    for (workload, name) in NAMES.iter().enumerate() {
        let ms = Spread::of(seconds.iter().map(|t| t[workload] * 1e3));
        let per_second = lines.len() as f64 / (ms.median / 1e3);
        println!(
            "ratio: {name:<24} {} ms per pass; {:.0} k lines/s at the median",
            ms.show(1),
            per_second / 1e3
        );
    }
    let ratios = |baseline: usize| -> Vec<f64> {
        seconds.iter().map(|t| t[baseline] / t[KEYTRAIL]).collect()
    };
    let value = ratios(VALUE);
    let reached = value.iter().filter(|&&r| r >= TARGET_RATIO).count();
    println!(
        "ratio: serde_json Value parse / keytrail transforms: {}; at least {TARGET_RATIO} in {reached} of {rounds} rounds",
        Spread::of(value.iter().copied()).show(2)
    );
    println!(
        "ratio: sonic-rs Value parse / keytrail transforms: {}",
        Spread::of(ratios(SONIC).into_iter()).show(2)
    );
}

/// Median, quartiles and extremes of a sample.
struct Spread {
    min: f64,
    lower: f64,
    median: f64,
    upper: f64,
    max: f64,
}

impl Spread {
    /// The spread of `values`, which holds at least one value.
    fn of(values: impl Iterator<Item = f64>) -> Spread {
        let mut sorted: Vec<f64> = values.collect();
        sorted.sort_by(f64::total_cmp);
        let at = |share: f64| {
            let index = (share * (sorted.len() - 1) as f64).round() as usize;
            sorted.get(index).copied().unwrap_or(f64::NAN)
        };
        Spread {
            min: at(0.0),
            lower: at(0.25),
            median: at(0.5),
            upper: at(0.75),
            max: at(1.0),
        }
    }

    fn show(&self, decimals: usize) -> String {
        format!(
            "median {:.*} (quartiles {:.*}-{:.*}, range {:.*}-{:.*})",
            decimals,
            self.median,
            decimals,
            self.lower,
            decimals,
            self.upper,
            decimals,
            self.min,
            decimals,
            self.max
        )
    }
}
