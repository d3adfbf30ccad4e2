//! Large outputs kept apart from the run they belong to.
//!
//! sled rewrites a whole leaf when it consolidates or splits it, and a
//! leaf holds its neighbours' records too. A list step's output (every
//! token of a 200,000-grant tenant, 3 MB) stored inside its run shared a
//! leaf with the fan-out's own run, written at every admitted window: each
//! consolidation rewrote the 3 MB as one of sled's blob files, 164 of them
//! (500 MB) for one `bench table S200k`. Kept apart, under the same key
//! in `outputs`, the output is written once and nothing rewrites it.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value as Json;

use super::{ItemRun, StepRun};

/// An output whose JSON is longer than this is kept apart. Small enough to
/// catch a listing of a few hundred entries; an item's usual output (null,
/// a few fields) stays inline, so a fan-out writes one record per item.
pub(super) const APART_BYTES: usize = 8 << 10;

/// How a stored record kept apart ends: the flag is the run's last field
/// (see `StepRun::output_apart`), so its stored bytes end with it, and no
/// key of a nested output can come last.
pub(super) const MARK: &[u8] = b",\"output_apart\":true}";

/// A run with an output that may be kept apart.
pub(super) trait Run: Serialize + DeserializeOwned {
    fn output(&self) -> &Json;
    /// The run without its output, marked as kept apart. Built field by
    /// field, so a field added to the run must be added here too.
    fn marked(&self) -> Self;
    fn is_marked(&self) -> bool;
    fn rejoin(&mut self, output: Json);
}

/// The record to store under the run's key and, when kept apart, the
/// output to store under the same key in `outputs`.
pub(super) fn encode<R: Run>(run: &R) -> (Vec<u8>, Option<Vec<u8>>) {
    // A record this short cannot hold a long output: the usual case costs
    // one serialization, as it did before outputs were kept apart.
    let record = super::enc(run);
    if record.len() <= APART_BYTES {
        return (record, None);
    }
    let output = super::enc(run.output());
    if output.len() <= APART_BYTES {
        return (record, None);
    }
    (super::enc(&run.marked()), Some(output))
}

/// Whether stored bytes are a record whose output is kept apart.
pub(super) fn is_marked(record: &[u8]) -> bool {
    record.ends_with(MARK)
}

/// The accessors both runs share: they keep `output` and `output_apart`
/// under the same names.
macro_rules! output_fields {
    () => {
        fn output(&self) -> &Json {
            &self.output
        }
        fn is_marked(&self) -> bool {
            self.output_apart
        }
        fn rejoin(&mut self, output: Json) {
            self.output = output;
            self.output_apart = false;
        }
    };
}

impl Run for StepRun {
    output_fields!();
    fn marked(&self) -> Self {
        let StepRun {
            status,
            attempts,
            items,
            started_at,
            finished_at,
            output: _,
            error,
            wake_at,
            started_below,
            output_apart: _,
        } = self;
        StepRun {
            status: *status,
            attempts: *attempts,
            items: *items,
            started_at: *started_at,
            finished_at: *finished_at,
            output: Json::Null,
            error: error.clone(),
            wake_at: *wake_at,
            started_below: *started_below,
            output_apart: true,
        }
    }
}

impl Run for ItemRun {
    output_fields!();
    fn marked(&self) -> Self {
        let ItemRun {
            status,
            attempts,
            idempotency_key,
            output: _,
            error,
            already_done,
            started_at,
            finished_at,
            output_apart: _,
        } = self;
        ItemRun {
            status: *status,
            attempts: *attempts,
            idempotency_key: idempotency_key.clone(),
            output: Json::Null,
            error: error.clone(),
            already_done: *already_done,
            started_at: *started_at,
            finished_at: *finished_at,
            output_apart: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StepStatus;
    use serde_json::json;

    fn long_list(n: usize) -> Json {
        Json::Array((0..n).map(|i| json!({"id": format!("g{i}")})).collect())
    }

    #[test]
    fn a_small_output_stays_in_its_record() {
        let run = ItemRun {
            output: json!({"id": "g1", "deleted": true}),
            ..ItemRun::pending("k".into())
        };
        let (record, apart) = encode(&run);
        assert!(apart.is_none());
        assert!(!is_marked(&record));
        let back: ItemRun = serde_json::from_slice(&record).unwrap();
        assert_eq!(back.output, run.output);
    }

    #[test]
    fn a_long_output_is_kept_apart_and_the_record_says_so_at_its_end() {
        let run = StepRun {
            status: StepStatus::Succeeded,
            attempts: 2,
            items: Some(3),
            error: Some("a note".into()),
            started_below: Some(3),
            output: long_list(2_000),
            ..StepRun::default()
        };
        let (record, apart) = encode(&run);
        let apart = apart.expect("kept apart");
        assert!(is_marked(&record), "{}", String::from_utf8_lossy(&record));
        assert!(
            record.len() < 300,
            "the record is small: {} bytes",
            record.len()
        );
        let mut back: StepRun = serde_json::from_slice(&record).unwrap();
        assert!(back.is_marked() && back.output.is_null());
        back.rejoin(serde_json::from_slice(&apart).unwrap());
        assert_eq!(
            serde_json::to_vec(&back).unwrap(),
            serde_json::to_vec(&run).unwrap()
        );
    }

    #[test]
    fn an_item_kept_apart_keeps_every_other_field() {
        let run = ItemRun {
            status: StepStatus::Succeeded,
            attempts: 3,
            already_done: true,
            error: Some("e".into()),
            output: long_list(1_000),
            ..ItemRun::pending("quench-INC-1-list-0".into())
        };
        let (record, apart) = encode(&run);
        assert!(is_marked(&record));
        let mut back: ItemRun = serde_json::from_slice(&record).unwrap();
        back.rejoin(serde_json::from_slice(&apart.unwrap()).unwrap());
        assert_eq!(
            serde_json::to_vec(&back).unwrap(),
            serde_json::to_vec(&run).unwrap()
        );
    }

    #[test]
    fn a_long_record_with_a_short_output_stays_whole() {
        let run = ItemRun {
            error: Some("x".repeat(APART_BYTES * 2)),
            output: json!({"id": "g1"}),
            ..ItemRun::pending("k".into())
        };
        let (record, apart) = encode(&run);
        assert!(apart.is_none() && !is_marked(&record));
        let back: ItemRun = serde_json::from_slice(&record).unwrap();
        assert_eq!(back.output, run.output);
    }

    #[test]
    fn a_nested_key_named_like_the_flag_does_not_mark_a_record() {
        let mut output = long_list(10);
        output[0]["output_apart"] = json!(true);
        let run = ItemRun {
            output,
            ..ItemRun::pending("k".into())
        };
        let (record, apart) = encode(&run);
        assert!(apart.is_none() && !is_marked(&record));
    }
}
