//! The one retry policy: exponential backoff with jitter, resumable from a
//! stored attempt count, honouring the vendor's `Retry-After`.

use std::time::Duration;

use crate::runbook::RetryPolicy;

/// Delay before attempt `next` (2-based: the first retry is attempt 2).
///
/// Exponential from `backoff`, capped at `max_backoff`, with "equal jitter"
/// (half fixed, half random) so many items failing together spread out but
/// never retry sooner than half the nominal delay. A `Retry-After` from the
/// vendor is a floor up to the step's `max_backoff`: a breach cannot wait
/// out a vendor asking for hours, so the step's cap wins (and the timeline
/// says so, see [`capped`]).
pub fn delay(
    policy: &RetryPolicy,
    next: u32,
    retry_after: Option<Duration>,
    rand01: f64,
) -> Duration {
    let exp = next.saturating_sub(2).min(30);
    let nominal = policy
        .backoff
        .saturating_mul(1u32 << exp)
        .min(policy.max_backoff.max(policy.backoff));
    let half = nominal / 2;
    let jittered = half + half.mul_f64(rand01.clamp(0.0, 1.0));
    match retry_after {
        Some(ra) => jittered.max(ra.min(cap(policy))),
        None => jittered,
    }
}

/// The vendor asked for a longer wait than the step allows.
pub fn capped(policy: &RetryPolicy, retry_after: Option<Duration>) -> bool {
    retry_after.is_some_and(|ra| ra > cap(policy))
}

fn cap(policy: &RetryPolicy) -> Duration {
    policy.max_backoff.max(policy.backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> RetryPolicy {
        RetryPolicy {
            attempts: 6,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(2),
        }
    }

    #[test]
    fn grows_caps_and_jitters() {
        assert_eq!(delay(&p(), 2, None, 1.0), Duration::from_millis(500));
        assert_eq!(delay(&p(), 3, None, 1.0), Duration::from_secs(1));
        assert_eq!(delay(&p(), 4, None, 1.0), Duration::from_secs(2));
        assert_eq!(delay(&p(), 9, None, 1.0), Duration::from_secs(2));
        assert_eq!(delay(&p(), 3, None, 0.0), Duration::from_millis(500));
    }

    #[test]
    fn retry_after_is_a_floor_up_to_the_steps_cap() {
        assert_eq!(
            delay(&p(), 2, Some(Duration::from_millis(1500)), 0.5),
            Duration::from_millis(1500)
        );
        assert!(!capped(&p(), Some(Duration::from_secs(2))));
        assert_eq!(
            delay(&p(), 2, Some(Duration::from_secs(999_999)), 0.5),
            Duration::from_secs(2)
        );
        assert!(capped(&p(), Some(Duration::from_secs(999_999))));
    }
}
