//! How long the agent waits before connecting again.

use std::time::Duration;

use rand::Rng;

/// The ceiling of the first retry's delay; it doubles with every failed attempt.
pub const RECONNECT_BASE: Duration = Duration::from_millis(500);

/// The largest delay between two attempts.
pub const RECONNECT_CAP: Duration = Duration::from_secs(30);

/// The delay before reconnect attempt `attempt` (0 for the first retry after a connection
/// ended): exponential backoff with full jitter, a uniform draw from zero to
/// `min(RECONNECT_CAP, RECONNECT_BASE * 2^attempt)`, in whole milliseconds. The jitter
/// spreads the agents of a fleet that lost their daemon at the same moment, so they do not
/// all reconnect at once. The agent resets `attempt` to 0 once a connection is welcomed.
pub fn reconnect_delay<R: Rng + ?Sized>(attempt: u32, random: &mut R) -> Duration {
    let ceiling = RECONNECT_BASE.saturating_mul(2u32.saturating_pow(attempt)).min(RECONNECT_CAP);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(random.random_range(0..=ceiling_ms))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn delays_stay_under_a_doubling_ceiling_and_the_cap() {
        let mut random = StdRng::seed_from_u64(7);
        for attempt in [0u32, 1, 2, 5, 6, 7, 20, 31, 32, 1000, u32::MAX] {
            let ceiling = (RECONNECT_BASE * 2u32.saturating_pow(attempt.min(31))).min(RECONNECT_CAP);
            let delays: Vec<Duration> = (0..200).map(|_| reconnect_delay(attempt, &mut random)).collect();
            assert!(delays.iter().all(|d| *d <= ceiling), "attempt {attempt}");
            assert!(delays.iter().any(|d| *d > ceiling / 2), "attempt {attempt}: jitter covers the range");
        }
    }

    #[test]
    fn first_retry_is_at_most_half_a_second_and_later_ones_reach_the_cap() {
        let mut random = StdRng::seed_from_u64(1);
        assert!((0..500).all(|_| reconnect_delay(0, &mut random) <= Duration::from_millis(500)));
        let late: Vec<Duration> = (0..500).map(|_| reconnect_delay(40, &mut random)).collect();
        assert!(late.iter().all(|d| *d <= RECONNECT_CAP));
        assert!(late.iter().any(|d| *d > Duration::from_secs(25)));
    }
}
