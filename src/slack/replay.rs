//! Slack signs a request over its timestamp and body, and a signature
//! verifies for five minutes: within that window a captured request
//! verifies again, byte for byte. A signature seen before is therefore a
//! replay; it is answered without acting, so a slash command or a button
//! runs once however often it arrives.

use std::collections::{BTreeSet, HashSet};

/// How long a signature stays acceptable: the verifier's five minutes
/// either side of its timestamp, and a minute for clock skew.
const WINDOW_S: i64 = 6 * 60;

/// At most this many signatures are remembered. Only Slack can make a
/// valid one, so reaching it takes more than 300 signed requests a second
/// for the whole window; the ones evicted first are those closest to
/// expiring on their own.
const CAP: usize = 100_000;

#[derive(Default)]
pub(super) struct Replays {
    seen: HashSet<String>,
    /// (expiry, signature), soonest first.
    by_expiry: BTreeSet<(i64, String)>,
}

impl Replays {
    /// True the first time `signature` (signed at `ts`, Unix seconds) is
    /// seen at `now`; false for a replay.
    pub(super) fn first_time(&mut self, signature: &str, ts: i64, now: i64) -> bool {
        while let Some((expiry, sig)) = self.by_expiry.first().cloned() {
            if expiry >= now && self.by_expiry.len() < CAP {
                break;
            }
            self.by_expiry.pop_first();
            self.seen.remove(&sig);
        }
        if !self.seen.insert(signature.to_string()) {
            return false;
        }
        self.by_expiry
            .insert((ts.max(now) + WINDOW_S, signature.to_string()));
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_counts_once_within_its_window_and_is_forgotten_after() {
        let mut r = Replays::default();
        let t = 1_764_406_800;
        assert!(r.first_time("v0=aa", t, t));
        assert!(
            !r.first_time("v0=aa", t, t + 299),
            "replayed inside the window"
        );
        assert!(r.first_time("v0=bb", t, t + 1), "another request");
        // Past the window the verifier refuses it anyway, so it is dropped.
        assert!(r.first_time("v0=cc", t + 400, t + 400));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood() {
        let mut r = Replays::default();
        let t = 1_764_406_800;
        for i in 0..(CAP + 10) {
            assert!(r.first_time(&format!("v0={i}"), t, t));
        }
        assert!(r.len() <= CAP);
    }
}
