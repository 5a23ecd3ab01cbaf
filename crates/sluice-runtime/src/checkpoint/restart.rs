//! [`RestartStrategy`]: whether and when a failed job restarts from its latest completed
//! checkpoint (Flink's `restart-strategy.*`).

use std::time::Duration;

/// What happens when a task fails.
#[derive(Debug, Clone, PartialEq)]
pub enum RestartStrategy {
    /// The job fails.
    None,
    /// Restart after `delay`, at most `attempts` times in a row (a completed checkpoint
    /// resets the count).
    FixedDelay {
        /// Restarts allowed without progress in between.
        attempts: u32,
        /// Wait before each restart.
        delay: Duration,
    },
    /// Restart after a delay that starts at `initial` and is multiplied by `multiplier`
    /// after each failure, up to `max`; reset after a completed checkpoint.
    ExponentialBackoff {
        /// First delay.
        initial: Duration,
        /// Longest delay.
        max: Duration,
        /// Growth factor per failure.
        multiplier: f64,
    },
    /// Restart after `delay` unless more than `max_failures` happened within `interval`.
    FailureRate {
        /// Failures allowed per interval.
        max_failures: u32,
        /// The interval.
        interval: Duration,
        /// Wait before each restart.
        delay: Duration,
    },
}

/// The failure history a strategy decides on.
#[derive(Debug, Default, Clone)]
pub struct FailureHistory {
    /// Failures since the last completed checkpoint.
    pub since_progress: u32,
    /// Times (ms, monotonic) of recent failures.
    pub recent_ms: Vec<u64>,
}

impl RestartStrategy {
    /// The delay before restarting after the latest failure in `history` at `now_ms`,
    /// or `None` if the job must fail.
    pub fn next_delay(&self, history: &FailureHistory, now_ms: u64) -> Option<Duration> {
        match *self {
            RestartStrategy::None => None,
            RestartStrategy::FixedDelay { attempts, delay } => {
                (history.since_progress <= attempts).then_some(delay)
            }
            RestartStrategy::ExponentialBackoff {
                initial,
                max,
                multiplier,
            } => {
                let exponent = history.since_progress.saturating_sub(1).min(64) as i32;
                let secs = initial.as_secs_f64() * multiplier.max(1.0).powi(exponent);
                Some(Duration::from_secs_f64(secs.min(max.as_secs_f64())))
            }
            RestartStrategy::FailureRate {
                max_failures,
                interval,
                delay,
            } => {
                let window = interval.as_millis() as u64;
                let recent = history
                    .recent_ms
                    .iter()
                    .filter(|&&t| now_ms.saturating_sub(t) <= window)
                    .count();
                (recent as u32 <= max_failures).then_some(delay)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(n: u32, times: &[u64]) -> FailureHistory {
        FailureHistory {
            since_progress: n,
            recent_ms: times.to_vec(),
        }
    }

    #[test]
    fn strategies_decide_as_documented() {
        let fixed = RestartStrategy::FixedDelay {
            attempts: 2,
            delay: Duration::from_millis(5),
        };
        assert_eq!(
            fixed.next_delay(&history(2, &[]), 0),
            Some(Duration::from_millis(5))
        );
        assert_eq!(fixed.next_delay(&history(3, &[]), 0), None);
        let backoff = RestartStrategy::ExponentialBackoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(35),
            multiplier: 2.0,
        };
        assert_eq!(
            backoff.next_delay(&history(1, &[]), 0),
            Some(Duration::from_millis(10))
        );
        assert_eq!(
            backoff.next_delay(&history(2, &[]), 0),
            Some(Duration::from_millis(20))
        );
        assert_eq!(
            backoff.next_delay(&history(5, &[]), 0),
            Some(Duration::from_millis(35))
        );
        let rate = RestartStrategy::FailureRate {
            max_failures: 2,
            interval: Duration::from_secs(1),
            delay: Duration::ZERO,
        };
        assert!(rate.next_delay(&history(9, &[100, 900]), 1_000).is_some());
        assert!(rate
            .next_delay(&history(9, &[100, 500, 900]), 1_000)
            .is_none());
        assert!(rate
            .next_delay(&history(9, &[1, 500, 900]), 2_000)
            .is_some());
        assert_eq!(RestartStrategy::None.next_delay(&history(1, &[]), 0), None);
    }
}
