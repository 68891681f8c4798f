//! Exponential backoff with jitter, for retries and reconnections.
//!
//! The n-th wait in a row is drawn uniformly from the upper half of
//! `min(max, initial × 2ⁿ)`: it grows quickly to the cap, and many
//! forwarders that lost the same receiver do not come back in lockstep.
//! A success resets it.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// The configured bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BackoffSettings {
    /// The first wait.
    pub(crate) initial: Duration,
    /// The largest wait.
    pub(crate) max: Duration,
}

/// The state of one retry loop.
#[derive(Debug)]
pub(crate) struct Backoff {
    settings: BackoffSettings,
    failures: u32,
    rng: StdRng,
}

impl Backoff {
    pub(crate) fn new(settings: BackoffSettings) -> Backoff {
        Backoff {
            settings,
            failures: 0,
            rng: StdRng::seed_from_u64(crate::forwarder::random_seed()),
        }
    }

    /// The wait before the next attempt, after one more failure.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let ceiling_ms = u64::try_from(ceiling.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let low = ceiling_ms / 2;
        Duration::from_millis(self.rng.random_range(low..=ceiling_ms))
    }

    /// The attempt worked: the next failure waits `initial` again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.settings
            .initial
            .saturating_mul(factor)
            .min(self.settings.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut backoff = Backoff::new(BackoffSettings {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1_000),
        });
        let delays: Vec<u128> = (0..8).map(|_| backoff.next_delay().as_millis()).collect();
        assert!((50..=100).contains(&delays[0]), "{delays:?}");
        assert!((100..=200).contains(&delays[1]), "{delays:?}");
        assert!((200..=400).contains(&delays[2]), "{delays:?}");
        for delay in &delays[4..] {
            assert!((500..=1_000).contains(delay), "{delays:?}");
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut backoff = Backoff::new(BackoffSettings {
            initial: Duration::from_millis(1),
            max: Duration::from_secs(3_600),
        });
        for _ in 0..100 {
            assert!(backoff.next_delay() <= Duration::from_secs(3_600));
        }
    }
}
